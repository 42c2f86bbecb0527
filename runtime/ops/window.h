// SAM window partition / unpartition (kernels/window.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [B,H,W,C] -> win [B*nh*nw, ws, ws, C] with nh = ceil(H/ws), nw = ceil(W/ws); zero padding.
void window_partition(Runtime& rt, const Tensor& x, int ws, Tensor& win);
// x [B,H,W,C] += the windows cropped back to H x W.
void window_unpartition_add(Runtime& rt, const Tensor& win, int ws, Tensor& x);

}  // namespace dsocr::ops
