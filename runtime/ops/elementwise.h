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

// y[i] = offset + scale * u, u uniform in [-1, 1) from a hash of (i, seed): deterministic random
// fill on the device (benchmark weights). y f32, fewer than 2^31 elements.
void fill_uniform(Runtime& rt, Tensor& y, uint32_t seed, float offset, float scale);

}  // namespace dsocr::ops
