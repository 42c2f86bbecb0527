// Dense GEMMs through CLBlast (row-major), with CLBlast status codes turned into exceptions.
// Nothing else: the model's linear layers are the `linear` op (runtime/ops/linear.h).
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C      (offsets and leading dims in elements)
#pragma once
#include <cstddef>

#include "runtime/runtime.h"

namespace dsocr {

enum class Trans { N, T };

struct GemmArgs {
  Trans ta = Trans::N, tb = Trans::N;
  size_t m = 0, n = 0, k = 0;
  float alpha = 1.f, beta = 0.f;
  size_t a_off = 0, lda = 0, b_off = 0, ldb = 0, c_off = 0, ldc = 0;
};

void gemm(Runtime& rt, const GemmArgs& g, const Tensor& a, const Tensor& b, Tensor& c);

// `batch` GEMMs with A, B, C advanced by the given strides (elements) between batch members.
void gemm_strided_batched(Runtime& rt, const GemmArgs& g, const Tensor& a, size_t a_stride, const Tensor& b,
                          size_t b_stride, Tensor& c, size_t c_stride, size_t batch);

}  // namespace dsocr
