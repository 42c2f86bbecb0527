// 2-D convolution and F.unfold (kernels/conv2d.cl), fp32: im2col into a scratch column matrix,
// then one CLBlast GEMM per image (batched), plus the bias epilogue.
//
//   y[n,o,oh,ow] = bias[o] + sum_{c,ki,kj} w[o,c,ki,kj] * x[n,c,oh*s-p+ki, ow*s-p+kj]   (0 outside)
//   Ho = (H + 2p - kh)/s + 1, Wo likewise.
//
// unfold: torch F.unfold(x, kernel, stride, padding) for a square kernel:
//   y[n, (c*k + ki)*k + kj, oh*Wo + ow] = x[n, c, oh*s-p+ki, ow*s-p+kj]   (0 outside)
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [N,C,H,W]; w [O,C,kh,kw] (f32 or f16); bias [O] or nullptr; y [N,O,Ho,Wo].
void conv2d(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, int stride, int padding);

// x [N,C,H,W] -> y [N, C*k*k, Ho*Wo].
void unfold(Runtime& rt, const Tensor& x, int kernel, int stride, int padding, Tensor& y);

}  // namespace dsocr::ops
