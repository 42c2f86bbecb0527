// Normalisations, fp32 arithmetic.
//   layer_norm_f32:    rows of C: y = (x - mean) / sqrt(var + eps) * w + b   (biased variance)
//   rms_norm_f32:      rows of C: y = x * rsqrt(mean(x^2) + eps) * w  (the weight applied after
//                      the normalisation, as DeepSeek-V2 / Qwen2 do in fp32).
//   add_rms_norm_f32:  the residual add fused in front of rms_norm_f32: x += a (nadd 1) or
//                      x += (a + b) (nadd 2, the order of `(a + b)` then `x + ...` as separate adds
//                      would round), written back to x, and y = rms_norm(x); bit-identical to
//                      add(s) followed by rms_norm_f32 (same reduction code, same defines for a C).
//     Row kernels, one pass over memory: a row is split over TPR = 1 << tlog work-items (tlog is an
//     argument; WG/TPR rows per work-group of WG = 256); work-item t of a row holds the NV "vecs"
//     (float4 when VEC = 4, which needs C % 4 == 0; float when VEC = 1) at vec indices e = t + TPR*i,
//     i < NV, in named registers (e < C/VEC, the rest masked), so neighbouring work-items read
//     neighbouring memory. layer_norm keeps the two-pass arithmetic on the register copy: mean, then
//     the variance of the centred values. Row sums in a fixed order (row_sum): each work-item adds
//     its vecs i = 0..NV-1 (a float4 as (x+y)+(z+w)), min(TPR,8) lanes add TPR/8 consecutive
//     partials each, then every work-item adds those in order.
//   *_wide_f32: the same ops for rows longer than TPR*NV*VEC allows (C > 256*8*VEC): one work-group
//     per row looping over C (re-reading x from memory), wg_reduce_sum tree; same arguments (tlog
//     unused).
//   layer_norm_2d_f32: x [N,C,H*W], normalised over C for each (n, pixel) (SAM's LayerNorm2d);
//     work-group = LN2D_PX pixels x (WG/LN2D_PX) channel groups: work-item (px, g) handles pixel
//     p0+px, channels c = g, g+WG/LN2D_PX, ... (each channel row read as LN2D_PX contiguous
//     floats). With LN2D_TILE the values read in the first pass stay in local memory (tile
//     [C][LN2D_PX], passed by the host) for the variance and the output; without, they are re-read.
//     Per-pixel sums: each work-item's channels in order, then the groups in order. May run in
//     place (y == x): every element is read and written by the same work-item.
// Tunables: WG (work-group size, 256), NV (1..8), VEC (4 or 1),
//   LN2D_PX (power of two dividing WG), LN2D_TILE (0/1). The host picks them per shape (norm.cpp;
//   $DSOCR_NORM_NV and $DSOCR_LN2D_PX override its choice, for sweeps).
#include "reduce.cl"

#ifndef NV
#define NV 3
#endif
#ifndef VEC
#define VEC 4
#endif
#ifndef LN2D_PX
#define LN2D_PX 16
#endif
#ifndef LN2D_TILE
#define LN2D_TILE 1
#endif

#if VEC == 4
typedef float4 vec_t;
#define VLOAD(p, e) (((__global const float4*)(p))[e])
#define VSTORE(v, p, e) (((__global float4*)(p))[e] = (v))
inline float hsum(float4 v) { return (v.x + v.y) + (v.z + v.w); }
#elif VEC == 1
typedef float vec_t;
#define VLOAD(p, e) ((p)[e])
#define VSTORE(v, p, e) ((p)[e] = (v))
inline float hsum(float v) { return v; }
#else
#error VEC must be 4 or 1
#endif

// REP(M): M(0) M(1) ... M(NV-1), so that the row lives in named registers (v0, v1, ...).
#if NV == 1
#define REP(M) M(0)
#elif NV == 2
#define REP(M) M(0) M(1)
#elif NV == 3
#define REP(M) M(0) M(1) M(2)
#elif NV == 4
#define REP(M) M(0) M(1) M(2) M(3)
#elif NV == 5
#define REP(M) M(0) M(1) M(2) M(3) M(4)
#elif NV == 6
#define REP(M) M(0) M(1) M(2) M(3) M(4) M(5)
#elif NV == 7
#define REP(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6)
#elif NV == 8
#define REP(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#else
#error NV must be 1..8
#endif

// Sum of v over the TPR = 1 << tlog work-items of each row of the work-group; every work-item gets
// its row's sum, added in a fixed order: RG = min(TPR, 8) lanes add TPR/RG consecutive partials,
// then every work-item adds the RG results in order. sc, sc2: WG floats each; both may be reused
// right after return (the second barrier orders every read of sc before any later write).
inline float row_sum(float v, int tlog, __local float* sc, __local float* sc2) {
  int l = get_local_id(0), t = l & ((1 << tlog) - 1), r = l >> tlog;
  int rglog = min(tlog, 3), rg = 1 << rglog, per = 1 << (tlog - rglog);
  sc[l] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (t < rg) {
    __local const float* p = sc + (r << tlog) + t * per;
    float s = p[0];
    for (int i = 1; i < per; ++i) s += p[i];
    sc2[(r << rglog) + t] = s;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  __local const float* q = sc2 + (r << rglog);
  float s = q[0];
  for (int i = 1; i < rg; ++i) s += q[i];
  return s;
}

inline float sumsq(vec_t v) { return hsum(v * v); }

// Row setup shared by the row kernels: row index, lane, whether the row exists, C in vecs.
#define ROW_SETUP                                            \
  __local float sc[WG], sc2[WG];                             \
  int l = get_local_id(0), t = l & ((1 << tlog) - 1);        \
  size_t row = get_group_id(0) * (WG >> tlog) + (l >> tlog); \
  bool ok = row < (size_t)rows;                              \
  int Cv = C / VEC;                                          \
  size_t off = ok ? row * (size_t)C : 0;
#define IDX(i) (t + ((i) << tlog))
#define VALID(i) (ok && IDX(i) < Cv)

#define LN_LOAD(i) vec_t v##i = VALID(i) ? VLOAD(xr, IDX(i)) : (vec_t)(0.0f);
#define LN_SUM(i) s += hsum(v##i);
#define LN_VAR(i)                                     \
  {                                                   \
    vec_t d = VALID(i) ? v##i - mean : (vec_t)(0.0f); \
    q += hsum(d * d);                                 \
  }
#define LN_OUT(i) \
  if (VALID(i)) VSTORE((v##i - mean) * rstd * VLOAD(w, IDX(i)) + VLOAD(b, IDX(i)), yr, IDX(i));

__kernel void layer_norm_f32(__global const float* x, __global const float* w, __global const float* b,
                             __global float* y, int rows, int C, int tlog, float eps) {
  ROW_SETUP
  __global const float* xr = x + off;
  __global float* yr = y + off;
  REP(LN_LOAD)
  float s = 0.0f;
  REP(LN_SUM)
  float mean = row_sum(s, tlog, sc, sc2) / C;
  float q = 0.0f;
  REP(LN_VAR)
  float rstd = rsqrt(row_sum(q, tlog, sc, sc2) / C + eps);
  REP(LN_OUT)
}

#define RMS_SUMSQ(i) s += sumsq(v##i);
#define RMS_OUT(i) \
  if (VALID(i)) VSTORE(v##i* r* VLOAD(w, IDX(i)), yr, IDX(i));

__kernel void rms_norm_f32(__global const float* x, __global const float* w, __global float* y, int rows, int C,
                           int tlog, float eps) {
  ROW_SETUP
  __global const float* xr = x + off;
  __global float* yr = y + off;
  REP(LN_LOAD)
  float s = 0.0f;
  REP(RMS_SUMSQ)
  float r = rsqrt(row_sum(s, tlog, sc, sc2) / C + eps);
  REP(RMS_OUT)
}

#define ADD_LOAD(i)                                                                                    \
  vec_t v##i = (vec_t)(0.0f);                                                                          \
  if (VALID(i)) {                                                                                      \
    v##i = VLOAD(xr, IDX(i)) + (nadd > 1 ? VLOAD(ar, IDX(i)) + VLOAD(br, IDX(i)) : VLOAD(ar, IDX(i))); \
    VSTORE(v##i, xr, IDX(i));                                                                          \
  }

__kernel void add_rms_norm_f32(__global float* x, __global const float* a, __global const float* b, int nadd,
                               __global const float* w, __global float* y, int rows, int C, int tlog, float eps) {
  ROW_SETUP
  __global float* xr = x + off;
  __global const float* ar = a + off;
  __global const float* br = b + off;
  __global float* yr = y + off;
  REP(ADD_LOAD)
  float s = 0.0f;
  REP(RMS_SUMSQ)
  float r = rsqrt(row_sum(s, tlog, sc, sc2) / C + eps);
  REP(RMS_OUT)
}

// --- rows too long for registers: one work-group per row, loops over C ---------------------------

__kernel void layer_norm_wide_f32(__global const float* x, __global const float* w, __global const float* b,
                                  __global float* y, int rows, int C, int tlog, float eps) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global const float* xr = x + row * C;
  float s = 0.0f;
  for (int c = l; c < C; c += WG) s += xr[c];
  float mean = wg_reduce_sum(s, scratch) / C;
  float v = 0.0f;
  for (int c = l; c < C; c += WG) {
    float d = xr[c] - mean;
    v += d * d;
  }
  float rstd = rsqrt(wg_reduce_sum(v, scratch) / C + eps);
  __global float* yr = y + row * C;
  for (int c = l; c < C; c += WG) yr[c] = (xr[c] - mean) * rstd * w[c] + b[c];
}

__kernel void rms_norm_wide_f32(__global const float* x, __global const float* w, __global float* y, int rows, int C,
                                int tlog, float eps) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global const float* xr = x + row * C;
  float s = 0.0f;
  for (int c = l; c < C; c += WG) s += xr[c] * xr[c];
  float r = rsqrt(wg_reduce_sum(s, scratch) / C + eps);
  __global float* yr = y + row * C;
  for (int c = l; c < C; c += WG) yr[c] = xr[c] * r * w[c];
}

__kernel void add_rms_norm_wide_f32(__global float* x, __global const float* a, __global const float* b, int nadd,
                                    __global const float* w, __global float* y, int rows, int C, int tlog, float eps) {
  __local float scratch[WG];
  size_t row = get_group_id(0);
  int l = get_local_id(0);
  __global float* xr = x + row * C;
  __global const float* ar = a + row * C;
  __global const float* br = b + row * C;
  float s = 0.0f;
  for (int c = l; c < C; c += WG) {
    float v = xr[c] + (nadd > 1 ? ar[c] + br[c] : ar[c]);
    xr[c] = v;
    s += v * v;
  }
  float r = rsqrt(wg_reduce_sum(s, scratch) / C + eps);
  __global float* yr = y + row * C;
  for (int c = l; c < C; c += WG) yr[c] = xr[c] * r * w[c];
}

// --- LayerNorm2d over channels ----------------------------------------------------------------------

#define LN2D_G (WG / LN2D_PX)  // channel groups

__kernel void layer_norm_2d_f32(__global const float* x, __global const float* w, __global const float* b,
                                __global float* y, int C, int HW, float eps, __local float* tile) {
  __local float part[WG], part2[WG];
  int l = get_local_id(0), px = l % LN2D_PX, g = l / LN2D_PX;
  int p = get_group_id(0) * LN2D_PX + px, n = get_group_id(1);
  bool ok = p < HW;
  size_t base = (size_t)n * C * HW + (ok ? p : 0);
  __global const float* xp = x + base;
  float s = 0.0f;
  for (int c = g; c < C; c += LN2D_G) {
    float v = ok ? xp[(size_t)c * HW] : 0.0f;
#if LN2D_TILE
    tile[c * LN2D_PX + px] = v;
#endif
    s += v;
  }
  part[l] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  s = part[px];
  for (int k = 1; k < LN2D_G; ++k) s += part[k * LN2D_PX + px];
  float mean = s / C;
#if LN2D_TILE
#define LN2D_X(c) tile[(c)*LN2D_PX + px]
#else
#define LN2D_X(c) xp[(size_t)(c)*HW]
#endif
  float q = 0.0f;
  if (ok)
    for (int c = g; c < C; c += LN2D_G) {
      float d = LN2D_X(c) - mean;
      q += d * d;
    }
  part2[l] = q;
  barrier(CLK_LOCAL_MEM_FENCE);
  q = part2[px];
  for (int k = 1; k < LN2D_G; ++k) q += part2[k * LN2D_PX + px];
  float rstd = rsqrt(q / C + eps);
  if (!ok) return;
  __global float* yp = y + base;
  for (int c = g; c < C; c += LN2D_G) yp[(size_t)c * HW] = (LN2D_X(c) - mean) * rstd * w[c] + b[c];
}
