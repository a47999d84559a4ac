/* 1x1 pointwise convolution. In NHWC the batch is a (M = N*H*W, Cin)
 * matrix, so each direction is a single GEMM over the whole batch (split
 * across the threads by gemm.c). */
#include "gemm.h"
#include "layers.h"

void
pwconv_forward(float *out, const float *in, const float *w, size_t M,
               size_t Cin, size_t Cout)
{
    /* out (M,Cout) = in (M,Cin) w^T (Cin,Cout) */
    gemm_rows(true, M, Cout, Cin, in, Cin, w, Cin, 0.0f, out, Cout);
}

void
pwconv_backward(float *din, float *dw, const float *dout, const float *in,
                const float *w, size_t M, size_t Cin, size_t Cout)
{
    /* dw (Cout,Cin) = dout^T (Cout,M) in (M,Cin) */
    gemm_atb(Cout, Cin, M, dout, Cout, in, Cin, dw, Cin);
    if (din) {
        /* din (M,Cin) = dout (M,Cout) w (Cout,Cin) */
        gemm_rows(false, M, Cin, Cout, dout, Cout, w, Cin, 0.0f, din, Cin);
    }
}
