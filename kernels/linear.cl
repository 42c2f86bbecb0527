// The linear op (runtime/ops/linear.h): matrix-vector products for a few rows (decode: M = 1..4,
// or a batch of sequences decoded together: any M, in chunks of ROWS rows), fp32 arithmetic, and
// the bias epilogue of the CLBlast path:
//   y[r, o] = sum_k x[r, k] * w[o, k]        x [R, K], w [N, K], y [R, N]
// w is f32, or 16-bit or quantised storage widened on load (kernels/weights.cl: f16, bf16, q8, q4).
// CLBlast's GEMM reaches only a fraction of the memory bandwidth at M = 1; here every weight row
// is read once, coalesced, for all R rows together.
// Index mapping: a work-group of WG work-items computes FEATS = WG / LANES output features; lane
// group f (work-items f*LANES .. f*LANES + LANES-1) owns feature o = group * FEATS + f. Lane l of
// it accumulates, for up to ROWS rows at once (acc: a float, float4 or float8; component r = row r
// of the chunk):
//   K % 8 == 0 and 16-bit or f32 weights (unless NO_WIDE): the 8-element pieces c = l, l + LANES,
//     ... (one 16- or 32-byte load of w per piece, two float4 loads of x per row);
//   quantised weights, K % 32 == 0: the 32-element blocks b = l, l + LANES, ... (weights.cl);
//   otherwise: the elements k = l, l + LANES, ...
// then a tree over the group's LANES lanes in local memory (reduce.cl LANE_TREE, all the chunk's
// rows in each step). A row's arithmetic depends only on K, LANES, NO_WIDE and the weight storage,
// never on the row count, ROWS or the row's place in the chunk: a batch of rows gives each row its
// single-row result bit for bit.
// X_SWIGLU (defined): the input row is the SwiGLU product of a fused gate|up row, x [R, 2K]:
//   x'[r, k] = silu(x[r, k]) * x[r, K + k]   (the expression of activation.cl's swiglu_f32)
// so that an MLP's down projection in decode needs no separate activation launch.
// Tunables: WG (power of two, default 128), LANES (power of two <= WG, default 32), ROWS (below),
// NO_WIDE (defined: element loads instead of 8-element pieces; with LANES = WG and ROWS 4 this is
// the access pattern of the work-group-per-output kernel this one replaced, which a GPU keeps:
// Tuning::gemv_*_for), WEIGHT_* (defined: weight storage, weights.cl). The host's grid arithmetic
// uses FEATS.
#ifndef WG
#define WG 128
#endif
#ifndef LANES
#define LANES 32
#endif
#define FEATS (WG / LANES)
#include "reduce.cl"
#include "weights.cl"

#ifdef X_SWIGLU
inline float swiglu_in(__global const float* x, int K, int r, int k) {
  float g = x[(size_t)r * 2 * K + k];
  return g * (1.0f / (1.0f + exp(-g))) * x[(size_t)r * 2 * K + K + k];
}
inline float4 swiglu_in4(__global const float* x, int K, int r, int k) {
  float4 g = vload4(0, x + (size_t)r * 2 * K + k);
  return g * (1.0f / (1.0f + exp(-g))) * vload4(0, x + (size_t)r * 2 * K + K + k);
}
#define LOADX(r, k) swiglu_in(x, K, (r), (k))
#define LOADX4(r, k) swiglu_in4(x, K, (r), (k))
#else
#define LOADX(r, k) x[(size_t)(r) * K + (k)]
#define LOADX4(r, k) vload4(0, x + (size_t)(r) * K + (k))
#endif

// Row r of the chunk (component sr of acc), when the chunk has it (R > r: uniform). ROWS (1, 4 or
// 8, default 8) rows per chunk: the accumulator and the tree are a float, float4 or float8, and a
// row's additions are the same in each (its component's), so every ROWS gives every row the same
// result bit for bit. The host runs one row with ROWS 1 (an eighth of the registers and local
// traffic of ROWS 8); fewer rows per chunk load fewer input rows per weight piece, more rows read
// each weight piece for more rows (Tuning::gemv_rows).
#ifndef ROWS
#define ROWS 8
#endif
#if ROWS == 1
#define GEMV_ROWS(M) M(0, s0)
#define ACC(sr) acc
#define TSUM(sr) t
typedef float acc_t;
#elif ROWS == 4
#define GEMV_ROWS(M) M(0, s0) M(1, s1) M(2, s2) M(3, s3)
#define ACC(sr) acc.sr
#define TSUM(sr) t.sr
typedef float4 acc_t;
#elif ROWS == 8
#define GEMV_ROWS(M) M(0, s0) M(1, s1) M(2, s2) M(3, s3) M(4, s4) M(5, s5) M(6, s6) M(7, s7)
#define ACC(sr) acc.sr
#define TSUM(sr) t.sr
typedef float8 acc_t;
#else
#error "ROWS must be 1, 4 or 8"
#endif
#define GEMV_PIECE(r, sr) \
  if (R > r) ACC(sr) += dot(wa, LOADX4(r, k0)) + dot(wb, LOADX4(r, k0 + 4));
#define GEMV_QBLOCK(r, sr)                    \
  if (R > r) {                                \
    float dq = 0.0f, sx = 0.0f;               \
    for (int j = 0; j < 32; ++j) {            \
      float xv = LOADX(r, k0 + j);            \
      dq += q[j] * xv;                        \
      sx += xv;                               \
    }                                         \
    ACC(sr) += s * dq + b * sx;               \
  }
#define GEMV_ELEM(r, sr) \
  if (R > r) ACC(sr) += wv * LOADX(r, k);
#define GEMV_STORE(r, sr) \
  if (R > r) y[(size_t)r * N + o] = TSUM(sr);

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void gemv_f32(__global const float* xall,
                                                                       __global const wtype* w,
                                                                       __global float* yall, int Rall, int K,
                                                                       int N) {
  __local acc_t scratch[WG];
  const int l = get_local_id(0), lane = l % LANES;
  const int o = get_group_id(0) * FEATS + l / LANES;
  const bool live = o < N;  // uniform over a lane group; every work-item reaches every barrier
  const size_t wo = (size_t)(live ? o : 0) * K;  // flat element index of row o
#ifdef X_SWIGLU
  const size_t xrow = (size_t)2 * K;
#else
  const size_t xrow = (size_t)K;
#endif
  for (int r0 = 0; r0 < Rall; r0 += ROWS) {
    __global const float* x = xall + (size_t)r0 * xrow;
    __global float* y = yall + (size_t)r0 * N;
    const int R = min(ROWS, Rall - r0);
    acc_t acc = 0.0f;
    if (live) {
#ifdef QBLOCK
      if ((K & 31) == 0) {  // rows of whole blocks: block by block, one load each
        for (int bi = lane; bi < (K >> 5); bi += LANES) {
          float q[32], s, b;
          q_block(w, wo / 32 + bi, q, &s, &b);
          const int k0 = bi << 5;
          GEMV_ROWS(GEMV_QBLOCK)
        }
      } else
#endif
#if defined(WIDE8) && !defined(NO_WIDE)
      if ((K & 7) == 0) {  // rows of whole 8-element pieces: one vector load of w each
        for (int c = lane; c < (K >> 3); c += LANES) {
          const int k0 = c << 3;
          float4 wa, wb;
          LOADW8(w, wo + k0, wa, wb);
          GEMV_ROWS(GEMV_PIECE)
        }
      } else
#endif
      for (int k = lane; k < K; k += LANES) {
        const float wv = LOADW(w, wo + k);
        GEMV_ROWS(GEMV_ELEM)
      }
    }
    scratch[l] = acc;
    LANE_TREE(scratch, l, lane)
    if (live && lane == 0) {
      const acc_t t = scratch[l];
      GEMV_ROWS(GEMV_STORE)
    }
    barrier(CLK_LOCAL_MEM_FENCE);  // scratch is rewritten by the next chunk
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
