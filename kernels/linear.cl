// The linear op (runtime/ops/linear.h): matrix-vector products for a few rows (decode: M = 1..4,
// or a batch of sequences decoded together: any M, in chunks of 4 rows),
// fp32 arithmetic, and the bias epilogue of the CLBlast path:
//   y[r, o] = sum_k x[r, k] * w[o, k]        x [R, K], w [N, K], y [R, N]
// w is f32, or 16-bit or quantised storage widened on load (kernels/weights.cl: f16, bf16, q8, q4).
// CLBlast's GEMM reaches only a fraction of the memory bandwidth at M = 1; here every weight row
// is read once, coalesced, for all R rows together.
// Index mapping: one work-group of WG work-items per output feature o; work-item l accumulates
// k = l, l + WG, ... for up to 4 rows, then work-group tree reductions (reduce.cl); more rows
// repeat that per chunk of 4 (the weight row is read again, from cache).
// X_SWIGLU (defined): the input row is the SwiGLU product of a fused gate|up row, x [R, 2K]:
//   x'[r, k] = silu(x[r, k]) * x[r, K + k]   (the expression of activation.cl's swiglu_f32)
// so that an MLP's down projection in decode needs no separate activation launch.
// Tunables: WG (power of two, default 128), WEIGHT_* (defined: weight storage, weights.cl).
#ifndef WG
#define WG 128
#endif
#include "reduce.cl"

#include "weights.cl"

#ifdef X_SWIGLU
inline float swiglu_in(__global const float* x, int K, int r, int k) {
  float g = x[(size_t)r * 2 * K + k];
  return g * (1.0f / (1.0f + exp(-g))) * x[(size_t)r * 2 * K + K + k];
}
#define LOADX(r, k) swiglu_in(x, K, (r), (k))
#else
#define LOADX(r, k) x[(r) * K + (k)]
#endif

__kernel void gemv_f32(__global const float* xall, __global const wtype* w, __global float* yall, int Rall, int K,
                       int N) {
  __local float scratch[WG];
  const int o = get_group_id(0), l = get_local_id(0);
  const size_t wo = (size_t)o * K;  // flat element index of row o (blocked formats: no pointer offset)
#ifdef X_SWIGLU
  const size_t xrow = (size_t)2 * K;
#else
  const size_t xrow = (size_t)K;
#endif
  // Rows in chunks of 4 (uniform over the work-group); a row's arithmetic is the same in every
  // chunk position and for every Rall, so a batch of rows gives each row's single-row result.
  for (int r0 = 0; r0 < Rall; r0 += 4) {
  __global const float* x = xall + (size_t)r0 * xrow;
  __global float* y = yall + (size_t)r0 * N;
  const int R = min(4, Rall - r0);
  float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#ifdef QBLOCK
  if ((K & 31) == 0) {  // rows of whole blocks (uniform): block by block, one load each
    for (int bi = l; bi < (K >> 5); bi += WG) {
      float q[32], s, b;
      q_block(w, wo / 32 + bi, q, &s, &b);
      const int k0 = bi << 5;
      float q0 = 0.0f, x0 = 0.0f, q1 = 0.0f, x1 = 0.0f, q2 = 0.0f, x2 = 0.0f, q3 = 0.0f, x3 = 0.0f;
      for (int j = 0; j < 32; ++j) {
        float xv = LOADX(0, k0 + j);
        q0 += q[j] * xv;
        x0 += xv;
        if (R > 1) {
          xv = LOADX(1, k0 + j);
          q1 += q[j] * xv;
          x1 += xv;
        }
        if (R > 2) {
          xv = LOADX(2, k0 + j);
          q2 += q[j] * xv;
          x2 += xv;
        }
        if (R > 3) {
          xv = LOADX(3, k0 + j);
          q3 += q[j] * xv;
          x3 += xv;
        }
      }
      a0 += s * q0 + b * x0;
      a1 += s * q1 + b * x1;
      a2 += s * q2 + b * x2;
      a3 += s * q3 + b * x3;
    }
  } else
#endif
  for (int k = l; k < K; k += WG) {
    float wv = LOADW(w, wo + k);
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
}

// add_bias_f32: y[r*ld + c + off] += bias[c]; global (cols rounded up to 64, rows).
__kernel void add_bias_f32(__global float* y, __global const float* bias, int rows, int cols, int ld, int off) {
  int c = get_global_id(0), r = get_global_id(1);
  if (c >= cols || r >= rows) return;
  y[off + (size_t)r * ld + c] += bias[c];
}

// linear_gemm_f32: y [M, N] = x [M, K] w [N, K]^T for many rows, reading w in its storage format
// (used for quantised weights, which CLBlast cannot read and which are never widened to a copy).
// Work-group 16x16 per 64x64 tile of y; work-item (tx, ty) owns rows ty + 16i and columns
// tx + 16j (i, j < 4: the named float4 accumulators c0..c3, no private arrays). K is walked in
// steps of GEMM_BK through local tiles xs and ws [GEMM_BK][65] (8.3 KB), each of the 256
// work-items loading 4 elements of each per step. Grid (ceil(N/64) * 16, ceil(M/64) * 16).
#define GEMM_BK 16
#define GEMM_LD 65
#define GEMM_FMA(ci, av) ci += (av) * b;
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void linear_gemm_f32(__global const float* x,
                                                                             __global const wtype* w,
                                                                             __global float* y, int M, int K,
                                                                             int N) {
  __local float xs[GEMM_BK * GEMM_LD], ws[GEMM_BK * GEMM_LD];
  const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * 16 + tx;
  const int n0 = get_group_id(0) * 64, m0 = get_group_id(1) * 64;
  float4 c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
  for (int k0 = 0; k0 < K; k0 += GEMM_BK) {
    for (int q = 0; q < 4; ++q) {
      int e = lid + 256 * q, r = e / GEMM_BK, kk = e % GEMM_BK, k = k0 + kk;
      int m = m0 + r, n = n0 + r;
      xs[kk * GEMM_LD + r] = (m < M && k < K) ? x[(size_t)m * K + k] : 0.0f;
      ws[kk * GEMM_LD + r] = (n < N && k < K) ? LOADW(w, (size_t)n * K + k) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kk = 0; kk < GEMM_BK; ++kk) {
      __local const float* xr = xs + kk * GEMM_LD + ty;
      __local const float* wr = ws + kk * GEMM_LD + tx;
      float4 b = (float4)(wr[0], wr[16], wr[32], wr[48]);
      GEMM_FMA(c0, xr[0])
      GEMM_FMA(c1, xr[16])
      GEMM_FMA(c2, xr[32])
      GEMM_FMA(c3, xr[48])
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#define GEMM_STORE(ci, i)                                         \
  {                                                               \
    int m = m0 + ty + 16 * (i);                                   \
    if (m < M) {                                                  \
      __global float* yr = y + (size_t)m * N;                     \
      if (n0 + tx < N) yr[n0 + tx] = ci.s0;                       \
      if (n0 + tx + 16 < N) yr[n0 + tx + 16] = ci.s1;             \
      if (n0 + tx + 32 < N) yr[n0 + tx + 32] = ci.s2;             \
      if (n0 + tx + 48 < N) yr[n0 + tx + 48] = ci.s3;             \
    }                                                             \
  }
  GEMM_STORE(c0, 0)
  GEMM_STORE(c1, 1)
  GEMM_STORE(c2, 2)
  GEMM_STORE(c3, 3)
#undef GEMM_STORE
}
