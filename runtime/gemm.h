// Dense GEMMs through CLBlast (row-major), with CLBlast status codes turned into exceptions.
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C      (offsets and leading dims in elements)
//
// linear():  y[..., out] = x[..., in] * W[out, in]^T (+ bias), the bias added by our own epilogue
// kernel (kernels/gemm_epilogue.cl). fp16 and bf16 weights are widened into a scratch fp32 buffer
// first on the CLBlast path (CLBlast's HGEMM needs cl_khr_fp16 arithmetic, which the portable path
// may not assume; it has no bf16 at all); the matrix-vector kernel reads them directly.
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

// y = x W^T + bias. x: [..., in] f32; w: [out, in] f32, f16 or bf16; bias: [out] f32 or undefined;
// y: [..., out] f32.
// Up to 4 rows (decode) go through our matrix-vector kernel (kernels/gemv.cl), more through
// CLBlast; DSOCR_GEMV=0 sends everything to CLBlast (for benchmark comparisons).
void linear(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y);

// y [rows, out] = (silu(gu[:, :in]) * gu[:, in:]) w^T: the down projection of a SwiGLU MLP with
// the activation fused into the matrix-vector kernel for up to 4 rows (decode); more rows run
// the activation kernel, then linear(). gu [rows, 2*in] f32; w [out, in] f32, f16 or bf16.
void linear_swiglu(Runtime& rt, const Tensor& gu, const Tensor& w, Tensor& y);

// y[r, c] += bias[c] for r < rows, c < cols (row stride ld).
void add_bias(Runtime& rt, Tensor& y, const Tensor& bias, size_t rows, size_t cols, size_t ld, size_t y_off = 0);

// dst (f32) = src (f16, bf16 or f32) widened, exactly; as many elements (shapes may differ).
void widen_to_f32(Runtime& rt, const Tensor& src, Tensor& dst);

// dst (bf16 bits) = src (f32) rounded to nearest, ties to even; overflow gives ±inf, NaN stays NaN
// (quiet), -0 stays -0. As many elements. Makes weights bf16 on the device.
void narrow_to_bf16(Runtime& rt, const Tensor& src_f32, Tensor& dst_bf16);

}  // namespace dsocr
