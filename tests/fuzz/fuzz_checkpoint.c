/* libFuzzer target: the checkpoint loader (kernels/checkpoint.c). The
 * harness recomputes the trailing CRC-32 over the mutated bytes so inputs
 * get past the checksum into the header, tensor table and data parsing.
 * Both mn_checkpoint_info() and mn_stage_load_buf() on a small stage must
 * accept or refuse with a message, never crash. ET_FUZZ_SEEDS=DIR writes
 * checkpoints of that stage (with and without optimiser state), exits.
 * fuzz-sources: kernels/batchnorm.c kernels/checkpoint.c kernels/dense.c kernels/dwconv.c kernels/gemm.c kernels/model.c kernels/optim.c kernels/pool.c kernels/pwconv.c kernels/softmax_xent.c kernels/stemconv.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_seeds.h"
#include "model.h"

static struct mn_stage *fz_stage;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct mn_config c;
    char err[256];
    mn_config_default(&c);
    c.alpha = 0.25f;
    c.input_size = 8;
    c.in_channels = 1;
    c.classes = 2;
    c.batch_capacity = 2;
    fz_stage = mn_stage_create(&c, 1, 2, err, sizeof err);
    if (!fz_stage) {
        fprintf(stderr, "stage: %s\n", err);
        abort();
    }
    /* Regression (UBSan): saving a stage without optimiser state passed
     * NULL to memcpy. Save and reload once per process. */
    uint8_t *rb;
    size_t rlen;
    if (mn_stage_save_buf(fz_stage, false, &rb, &rlen)
        || mn_stage_load_buf(fz_stage, rb, rlen, err, sizeof err)) {
        abort();
    }
    free(rb);
    if (getenv("ET_FUZZ_SEEDS")) {
        for (int o = 0; o < 2; o++) {
            uint8_t *buf;
            size_t len;
            if (mn_stage_save_buf(fz_stage, o, &buf, &len)) {
                abort();
            }
            fz_seed_write(getenv("ET_FUZZ_SEEDS"), o ? "optim" : "plain",
                          buf, len);
            free(buf);
        }
        exit(0);
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (size >= 4) {
        uint32_t crc = (uint32_t) crc32(0L, buf, (uInt) (size - 4));
        for (int i = 0; i < 4; i++) {
            buf[size - 4 + i] = (uint8_t) (crc >> (8 * i));
        }
    }
    struct mn_config c;
    int first, last;
    char err[256];
    err[0] = '\0';
    if (mn_checkpoint_info(buf, size, &c, &first, &last, err, sizeof err)
        && !err[0]) {
        abort();
    }
    err[0] = '\0';
    if (mn_stage_load_buf(fz_stage, buf, size, err, sizeof err) && !err[0]) {
        abort();
    }
    free(buf);
    return 0;
}
