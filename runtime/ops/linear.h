// linear: y[..., out] = x[..., in] * W[out, in]^T (+ bias), and the SwiGLU down projection.
// Up to 4 rows (decode) run our matrix-vector kernel (kernels/linear.cl), which reads fp16, bf16
// and group-quantised (q8, q4: runtime/quant.h) weights directly. More rows run CLBlast's SGEMM
// (runtime/gemm.h) after widening fp16/bf16 weights into a scratch fp32 buffer (CLBlast's HGEMM
// needs cl_khr_fp16 arithmetic, which the portable path may not assume; it has no bf16 at all);
// quantised weights instead go through our tiled GEMM (linear_gemm_f32), which dequantises as it
// loads its tiles, so no widened copy of them ever exists. The bias is added by our own epilogue.
#pragma once
#include <cstddef>

#include "runtime/runtime.h"

namespace dsocr {

// y = x W^T + bias. x: [..., in] f32; w: [out, in] f32, f16, bf16, q8 or q4 (in % 32 == 0); bias: [out] f32 or undefined;
// y: [..., out] f32.
// Up to 4 rows (decode) go through our matrix-vector kernel (kernels/linear.cl), more through
// CLBlast (quantised weights: linear_gemm_f32); DSOCR_GEMV=0 sends every non-quantised linear to
// CLBlast (for benchmark comparisons).
// path gemv: the matrix-vector kernel for any number of rows (a batch of sequences decoded
// together: each row then gets exactly the result it would get alone).
enum class LinearPath { automatic, gemv };
void linear(Runtime& rt, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y,
            LinearPath path = LinearPath::automatic);

// y [rows, out] = (silu(gu[:, :in]) * gu[:, in:]) w^T: the down projection of a SwiGLU MLP with
// the activation fused into the matrix-vector kernel for up to 4 rows (decode); more rows run
// the activation kernel, then linear(). gu [rows, 2*in] f32; w [out, in] f32, f16, bf16, q8 or q4.
void linear_swiglu(Runtime& rt, const Tensor& gu, const Tensor& w, Tensor& y, LinearPath path = LinearPath::automatic);

// y[r, c] += bias[c] for r < rows, c < cols (row stride ld).
void add_bias(Runtime& rt, Tensor& y, const Tensor& bias, size_t rows, size_t cols, size_t ld, size_t y_off = 0);

}  // namespace dsocr
