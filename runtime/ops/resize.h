// Resampling with PyTorch's exact semantics (kernels/resize.cl), fp32.
//
// resize_bicubic_aa: F.interpolate(x, (oh, ow), mode="bicubic", antialias=True, align_corners=False)
//   Separable (horizontal pass, then vertical, as ATen), Keys kernel a = -0.5; per axis with
//   scale = in/out, support = 2*max(scale,1), invscale = 1/max(scale,1), for output i:
//   center = scale*(i+0.5), taps x in [max(int(center-support+0.5),0), min(int(center+support+0.5),in)),
//   w(x) = K((x-center+0.5)*invscale) normalised to sum 1 (out-of-range taps dropped).
//   Down- and up-scaling alike (model-spec §5).
// resize_linear: F.interpolate(x, out, mode="linear", align_corners=False) over the last axis:
//   src = max((i+0.5)*L/out - 0.5, 0), i0 = floor(src), i1 = min(i0+1, L-1), lambda = src - i0.
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [N,C,H,W] -> y [N,C,oh,ow] (oh, ow taken from y's shape).
void resize_bicubic_aa(Runtime& rt, const Tensor& x, Tensor& y);

// x [N,C,L] -> y [N,C,out] (out taken from y's shape).
void resize_linear(Runtime& rt, const Tensor& x, Tensor& y);

}  // namespace dsocr::ops
