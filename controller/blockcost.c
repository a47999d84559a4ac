/* blockcost: MobileNet v1 per-block FLOPs, bytes and parameters. */
#include "blockcost.h"

#include <errno.h>
#include <math.h>

/* Depthwise stride and unscaled output channels of dw1..dw13. */
static const struct { int stride, out_c; } dw_layers[BLOCKCOST_BLOCKS] = {
    {1, 64}, {2, 128}, {1, 128}, {2, 256}, {1, 256}, {2, 512}, {1, 512},
    {1, 512}, {1, 512}, {1, 512}, {1, 512}, {2, 1024}, {1, 1024},
};

static uint32_t
scaled(double alpha, int c)
{
    double v = round(c * alpha);
    return v < 1 ? 1 : (uint32_t) v;
}

/* 'same' padding: ceil(in / stride). */
static uint32_t
out_side(uint32_t in, int stride)
{
    return (in + stride - 1) / stride;
}

int
blockcost_mobilenet_v1(const struct blockcost_config *cfg,
                       struct blockcost blocks[BLOCKCOST_BLOCKS])
{
    if (!(cfg->alpha > 0 && cfg->alpha <= 4) || cfg->input_size < 8
        || !cfg->in_channels || !cfg->classes || !cfg->batch) {
        return EINVAL;
    }
    uint32_t h = cfg->input_size, c = cfg->in_channels;
    for (int b = 0; b < BLOCKCOST_BLOCKS; b++) {
        struct blockcost *bc = &blocks[b];
        double flops = 0, params = 0, saved = 0;
        if (b == 0) {
            /* Stem: 3x3 stride-2 conv to 32*alpha channels, BN, ReLU6. */
            uint32_t c0 = scaled(cfg->alpha, 32);
            uint32_t ho = out_side(h, 2);
            double px = (double) ho * ho;
            flops += 2.0 * 9 * px * c * c0 + 4 * px * c0;
            params += 9.0 * c * c0 + 4.0 * c0;
            saved += (double) h * h * c + 2 * px * c0;
            h = ho;
            c = c0;
        }
        uint32_t ho = out_side(h, dw_layers[b].stride);
        uint32_t co = scaled(cfg->alpha, dw_layers[b].out_c);
        double px = (double) ho * ho;
        flops += 2.0 * 9 * px * c + 4 * px * c;          /* depthwise */
        flops += 2.0 * px * c * co + 4 * px * co;        /* pointwise */
        params += 9.0 * c + 4.0 * c + (double) c * co + 4.0 * co;
        /* Block input, depthwise pre/post BN, pointwise pre/post BN. */
        saved += (double) h * h * c + 2 * px * c + 2 * px * co;
        bc->out_h = bc->out_w = ho;
        bc->out_c = co;
        bc->fwd_flops = flops;
        bc->train_flops = 3 * flops;
        bc->out_bytes = 4.0 * px * co;
        bc->params = params;
        bc->saved_bytes = 4.0 * saved;
        bc->train_cost = bc->train_flops
                         + BLOCKCOST_BYTE_FLOPS * bc->saved_bytes;
        uint32_t p = cfg->head_pool ? cfg->head_pool : 1;
        if (p > ho) {
            p = ho;
        }
        double feat = (double) p * p * co;
        bc->head_train_flops = 3 * (px * co + 2.0 * feat * cfg->classes);
        bc->head_params = feat * cfg->classes + cfg->classes;
        h = ho;
        c = co;
    }
    return 0;
}

double
blockcost_stage_memory(const struct blockcost *blocks, uint32_t first,
                       uint32_t last, uint32_t batch,
                       double input_bytes_per_image)
{
    double params = blocks[last - 1].head_params, saved = 0;
    for (uint32_t b = first; b <= last; b++) {
        params += blocks[b - 1].params;
        saved += blocks[b - 1].saved_bytes;
    }
    return 16.0 * params + batch * (saved + 2 * input_bytes_per_image);
}
