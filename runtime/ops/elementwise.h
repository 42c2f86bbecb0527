// Elementwise arithmetic (kernels/elementwise.cl).
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// y = a + b, all of the same size (y may alias a or b).
void add(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y);
// y = a + b broadcast: b's elements repeat over a's leading dimensions (a.numel() % b.numel() == 0).
void add_broadcast(Runtime& rt, const Tensor& a, const Tensor& b, Tensor& y);

// y[y_off + r*y_ld + c] = x[x_off + r*x_ld + c] for r < rows, c < cols (elements; a strided block
// copy, e.g. K/V heads of a fused projection into a KV cache). Bounds are checked.
void copy_rows(Runtime& rt, const Tensor& x, int64_t x_off, int64_t x_ld, Tensor& y, int64_t y_off, int64_t y_ld,
               int64_t rows, int64_t cols);

}  // namespace dsocr::ops
