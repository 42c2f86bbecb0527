// Normalisations (kernels/norm.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [..., C] -> y [..., C]; w, b [C] f32.
void layer_norm(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, float eps);

// x [N,C,H,W] normalised over C per pixel -> y [N,C,H,W]; w, b [C] (SAM LayerNorm2d).
void layer_norm_2d(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, float eps);

// x [..., C] -> y = x * rsqrt(mean(x^2) + eps) * w; w [C] f32.
void rms_norm(Runtime& rt, const Tensor& x, const Tensor& w, Tensor& y, float eps);

// The residual add fused with the next norm: x += a (or x += (a + b) when b is given), then
// y = rms_norm(x); x updated in place. Bit-identical to ops::add then rms_norm, one launch.
void add_rms_norm(Runtime& rt, Tensor& x, const Tensor& a, const Tensor* b, const Tensor& w, Tensor& y, float eps);

}  // namespace dsocr::ops
