// Elementwise arithmetic (kernels/elementwise.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// y = a + b, all of the same size (y may alias a or b).
void add(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y);
// y = a + b broadcast: b's elements repeat over a's leading dimensions (a.numel() % b.numel() == 0).
void add_broadcast(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y);

}  // namespace dsocr::ops
