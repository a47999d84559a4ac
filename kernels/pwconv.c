/* 1x1 pointwise convolution. In NHWC the batch is a (M = N*H*W, Cin)
 * matrix, so each direction is a single sgemm over the whole batch. */
#include <cblas.h>

#include "layers.h"

void
pwconv_forward(float *out, const float *in, const float *w, size_t M,
               size_t Cin, size_t Cout)
{
    /* out (M,Cout) = in (M,Cin) w^T (Cin,Cout) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) M, (int) Cout,
                (int) Cin, 1.0f, in, (int) Cin, w, (int) Cin, 0.0f, out,
                (int) Cout);
}

void
pwconv_backward(float *din, float *dw, const float *dout, const float *in,
                const float *w, size_t M, size_t Cin, size_t Cout)
{
    /* dw (Cout,Cin) = dout^T (Cout,M) in (M,Cin) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int) Cout,
                (int) Cin, (int) M, 1.0f, dout, (int) Cout, in, (int) Cin,
                0.0f, dw, (int) Cin);
    if (din) {
        /* din (M,Cin) = dout (M,Cout) w (Cout,Cin) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) M,
                    (int) Cin, (int) Cout, 1.0f, dout, (int) Cout, w,
                    (int) Cin, 0.0f, din, (int) Cin);
    }
}
