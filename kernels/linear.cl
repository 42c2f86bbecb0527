// The linear op (runtime/ops/linear.h): matrix-vector products for a few rows (decode: M = 1..4),
// fp32 arithmetic, and the bias epilogue of the CLBlast path:
//   y[r, o] = sum_k x[r, k] * w[o, k]        x [R, K], w [N, K], y [R, N]
// w is f32, or 16-bit storage widened on load: f16 (WEIGHT_F16, vload_half) or bf16 (WEIGHT_BF16:
// raw bfloat16 bits as ushort, widened exactly with as_float(bits << 16)); no extension needed.
// CLBlast's GEMM reaches only a fraction of the memory bandwidth at M = 1; here every weight row
// is read once, coalesced, for all R rows together.
// Index mapping: one work-group of WG work-items per output feature o; work-item l accumulates
// k = l, l + WG, ... for up to 4 rows, then work-group tree reductions (reduce.cl).
// X_SWIGLU (defined): the input row is the SwiGLU product of a fused gate|up row, x [R, 2K]:
//   x'[r, k] = silu(x[r, k]) * x[r, K + k]   (the expression of activation.cl's swiglu_f32)
// so that an MLP's down projection in decode needs no separate activation launch.
// Tunables: WG (power of two, default 128), WEIGHT_F16 or WEIGHT_BF16 (defined: weight storage).
#ifndef WG
#define WG 128
#endif
#include "reduce.cl"

#if defined(WEIGHT_F16) && defined(WEIGHT_BF16)
#error "WEIGHT_F16 and WEIGHT_BF16 are exclusive"
#endif
#if defined(WEIGHT_F16)
#define WTYPE half
#define LOADW(p, i) vload_half((i), (p))
#elif defined(WEIGHT_BF16)
#define WTYPE ushort
#define LOADW(p, i) as_float((uint)(p)[i] << 16)
#else
#define WTYPE float
#define LOADW(p, i) ((p)[i])
#endif

#ifdef X_SWIGLU
inline float swiglu_in(__global const float* x, int K, int r, int k) {
  float g = x[(size_t)r * 2 * K + k];
  return g * (1.0f / (1.0f + exp(-g))) * x[(size_t)r * 2 * K + K + k];
}
#define LOADX(r, k) swiglu_in(x, K, (r), (k))
#else
#define LOADX(r, k) x[(r) * K + (k)]
#endif

__kernel void gemv_f32(__global const float* x, __global const WTYPE* w, __global float* y, int R, int K, int N) {
  __local float scratch[WG];
  const int o = get_group_id(0), l = get_local_id(0);
  __global const WTYPE* wr = w + (size_t)o * K;
  float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
  for (int k = l; k < K; k += WG) {
    float wv = LOADW(wr, k);
    a0 += wv * LOADX(0, k);
    if (R > 1) a1 += wv * LOADX(1, k);
    if (R > 2) a2 += wv * LOADX(2, k);
    if (R > 3) a3 += wv * LOADX(3, k);
  }
  // R is the same for the whole work-group: the barriers inside are reached uniformly.
  a0 = wg_reduce_sum(a0, scratch);
  if (l == 0) y[o] = a0;
  if (R > 1) {
    a1 = wg_reduce_sum(a1, scratch);
    if (l == 0) y[(size_t)N + o] = a1;
  }
  if (R > 2) {
    a2 = wg_reduce_sum(a2, scratch);
    if (l == 0) y[(size_t)2 * N + o] = a2;
  }
  if (R > 3) {
    a3 = wg_reduce_sum(a3, scratch);
    if (l == 0) y[(size_t)3 * N + o] = a3;
  }
}

// add_bias_f32: y[r*ld + c + off] += bias[c]; global (cols rounded up to 64, rows).
__kernel void add_bias_f32(__global float* y, __global const float* bias, int rows, int cols, int ld, int off) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= cols || r >= rows) return;
  y[off + (size_t)r * ld + c] += bias[c];
}
