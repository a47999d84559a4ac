/* libFuzzer target: the frame decoder, both the contiguous-buffer path and
 * the incremental evbuffer path fed in two pieces.
 * fuzz-sources: proto/wire.c */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>

#include "wire.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct et_frame f;
    size_t used, off = 0;
    /* Whole-buffer path: decode frames until error or end. */
    while (off < size) {
        int err = et_frame_decode_buf(data + off, size - off, true, &f, &used);
        if (err || !used) {
            break;
        }
        et_frame_clear(&f);
        off += used;
    }

    /* Stream path: the input arrives in two pieces. */
    struct evbuffer *in = evbuffer_new();
    size_t half = size / 2;
    evbuffer_add(in, data, half);
    for (int pass = 0; pass < 2; pass++) {
        for (;;) {
            int err = et_frame_decode_evbuffer(in, &f);
            if (err) {
                break;
            }
            size_t plen = f.hdr.payload_len;
            if (evbuffer_get_length(in) >= plen) {
                uint8_t *dst = malloc(plen ? plen : 1);
                et_frame_take_payload(in, dst, plen);
                free(dst);
            } else {
                evbuffer_drain(in, evbuffer_get_length(in));
            }
            et_frame_clear(&f);
        }
        if (pass == 0) {
            evbuffer_add(in, data + half, size - half);
        }
    }
    evbuffer_free(in);
    return 0;
}
