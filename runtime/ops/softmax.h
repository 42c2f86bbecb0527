// Softmax over the last axis (kernels/softmax.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// x [..., N] -> y [..., N]; y may alias x.
void softmax(Runtime& rt, const Tensor& x, Tensor& y);

}  // namespace dsocr::ops
