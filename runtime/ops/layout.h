// Layout changes between channels-first and channels-last (kernels/layout.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [N,C,H,W] -> y [N,H,W,C]
void nchw_to_nhwc(Runtime& rt, const Tensor& x, Tensor& y);
// x [N,H,W,C] -> y [N,C,H,W]
void nhwc_to_nchw(Runtime& rt, const Tensor& x, Tensor& y);

}  // namespace dsocr::ops
