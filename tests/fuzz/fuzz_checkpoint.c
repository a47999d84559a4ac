/* libFuzzer target: the checkpoint loader. Each input is tried twice: as
 * is (the CRC check must refuse it unless it is a real checkpoint), and
 * with its last 4 bytes replaced by the right CRC-32, so the header, size,
 * config and tensor-table checks behind the CRC get exercised too.
 * fuzz-sources: kernels/checkpoint.c kernels/model.c kernels/optim.c kernels/gemm.c kernels/stemconv.c kernels/dwconv.c kernels/pwconv.c kernels/batchnorm.c kernels/pool.c kernels/dense.c kernels/softmax_xent.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "model.h"

static struct mn_stage *stage;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!stage) {
        /* Same stage as tests/fuzz/corpus/fuzz_checkpoint/valid. */
        struct mn_config c;
        mn_config_default(&c);
        c.alpha = 0.25f, c.input_size = 16, c.classes = 6, c.head_pool = 2;
        c.batch_capacity = 2;
        stage = mn_stage_create(&c, 2, 3, NULL, 0);
        if (!stage) {
            abort();
        }
    }
    char err[256];
    mn_stage_load_buf(stage, data, size, err, sizeof err);
    struct mn_config c;
    int first, last;
    mn_checkpoint_info(data, size, &c, &first, &last, err, sizeof err);
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        uint32_t crc = (uint32_t) crc32(0L, fixed, (uInt) (size - 4));
        for (int i = 0; i < 4; i++) {
            fixed[size - 4 + i] = (uint8_t) (crc >> (8 * i));
        }
        mn_stage_load_buf(stage, fixed, size, err, sizeof err);
        mn_checkpoint_info(fixed, size, &c, &first, &last, err, sizeof err);
        free(fixed);
    }
    return 0;
}
