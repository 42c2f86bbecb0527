// The MoE block for a few tokens (decode; runtime/ops/moe_decode.h), and the decode path of
// moe_experts (runtime/ops/moe.h), fp32 arithmetic, reading only the chosen experts' weights:
//   moe_route_x_f32:        router logits x[t] . Wr[e] and the routing (moe_route.cl) in one
//                           work-group per token: ids [T,k], weights [T,k].
//   moe_decode_gate_up_f32: per (entry, DFEATS rows j): both dot products of length H,
//                           h[entry, j] = silu(g) * u. With shared experts (Is > 0) the grid has T
//                           more entries, one per token, for the shared MLP's rows j < Is:
//                           hs[t, j] = g * (1 / (1 + exp(-g))) * u (linear.cl's X_SWIGLU).
//   moe_decode_down_f32:    per (token, DFEATS columns n): each slot's dot product h[entry].Wd[e,n]
//                           (and, with shared experts, hs[t] . Wsd[n] as one more slot), each
//                           reduced on its own, then y[t, n] = sum over the slots in order of
//                           weight * dot, plus the shared dot last.
// Shapes: x [T,H]; Wr [E,H]; w (gate_up) [E,2I,H]; down [E,H,I]; ws [2Is,H]; wsd [H,Is];
// h [T*k,I]; hs [T,Is]; entry = t*k + s. Entries whose id is outside [0,E) contribute nothing.
//
// Index mapping: a work-group of DWG work-items computes DFEATS = DWG / LANES outputs; lane group
// f owns output o = group * DFEATS + f and its lane l accumulates (row_dot) the 8-element pieces
// l, l + LANES, ... of the row (16-bit and f32 weights, row length % 8 == 0: one vector load
// each), the 32-element blocks l, l + LANES, ... (quantised), or else the elements l, l + LANES,
// ...; then a tree over the LANES lanes in local memory (reduce.cl LANE_TREE). This is linear.cl's
// gemv_f32 arithmetic with the same LANES (a router logit or a shared-expert output is linear()'s
// in decode, up to how a compiler rounds each program), and an output never depends on the number
// of tokens. The entry (token) is the grid's first dimension, the fastest-varying in dispatch
// order: all entries' work on weight row j (n) runs at about the same time, so an expert that
// several tokens chose is read once into the cache.
//
// Weights: every matrix of one program has the storage named by WEIGHT_* (weights.cl): the router
// kernel is built with the router's, the expert kernels with the experts' (the shared experts must
// share it). Tunables: DWG and LANES (powers of two, defaults 128 and 32; the host's grid uses
// DFEATS). Core OpenCL, no extension; llvmpipe's loop limit: row_dot runs H/LANES iterations at most.
#ifndef DWG
#define DWG 128
#endif
#ifndef LANES
#define LANES 32
#endif
#define DFEATS (DWG / LANES)
#define WG DWG
#include "moe_route.cl"
#include "weights.cl"

// This work-item's share (lane) of row . v for the weight row at flat element index wo and the
// fp32 vector v, both of length n.
inline float row_dot(__global const wtype* w, size_t wo, __global const float* v, int n, int lane) {
  float acc = 0.0f;
#ifdef QBLOCK
  if ((n & 31) == 0) {
    for (int bi = lane; bi < (n >> 5); bi += LANES) {
      float q[32], sc, of, dq = 0.0f, sx = 0.0f;
      q_block(w, wo / 32 + bi, q, &sc, &of);
      __global const float* vb = v + (bi << 5);
      for (int c = 0; c < 32; ++c) {
        dq += q[c] * vb[c];
        sx += vb[c];
      }
      acc += sc * dq + of * sx;
    }
    return acc;
  }
#endif
#ifdef WIDE8
  if ((n & 7) == 0) {
    for (int c = lane; c < (n >> 3); c += LANES) {
      float4 wa, wb;
      LOADW8(w, wo + (c << 3), wa, wb);
      acc += dot(wa, vload4(0, v + (c << 3))) + dot(wb, vload4(0, v + (c << 3) + 4));
    }
    return acc;
  }
#endif
  for (int c = lane; c < n; c += LANES) acc += LOADW(w, wo + c) * v[c];
  return acc;
}

// x [T,H], w [E,H] -> ids, weights [T,k]. Grid (DWG*T). p: local E floats; sel: local k floats.
// X_NORM (defined): the block's RMSNorm first, in the same work-group (one launch fewer): the
// residual row res[t] += a[t] (nadd 1) or a[t] + b[t] (nadd 2), written back, then
// x[t] = res[t] * rsqrt(mean(res[t]^2) + eps) * nw, written to x for the expert launches and
// routed from there (norm.cl's add_rms_norm_wide_f32 arithmetic with a work-group of DWG).
__kernel __attribute__((reqd_work_group_size(DWG, 1, 1))) void moe_route_x_f32(
#ifdef X_NORM
    __global float* res, __global const float* a, __global const float* b, int nadd, __global const float* nw,
    float eps, __global float* x,
#else
    __global const float* x,
#endif
    __global const wtype* w, __global int* ids, __global float* weights, int H, int E, int k, int norm, float scale,
    __local float* p, __local float* sel) {
  __local float scratch[DWG];
  const size_t t = get_group_id(0);
  const int l = get_local_id(0), lane = l % LANES;
#ifdef X_NORM
  {
    __global float* rr = res + t * H;
    float s = 0.0f;
    for (int c = l; c < H; c += DWG) {
      float v = rr[c];
      if (nadd > 0) {
        v += nadd > 1 ? a[t * H + c] + b[t * H + c] : a[t * H + c];
        rr[c] = v;
      }
      s += v * v;
    }
    const float r = rsqrt(wg_reduce_sum(s, scratch) / H + eps);
    for (int c = l; c < H; c += DWG) x[t * H + c] = rr[c] * r * nw[c];
    barrier(CLK_GLOBAL_MEM_FENCE);  // the row is read by every lane group below
  }
#endif
  __global const float* xr = x + t * H;
  for (int e0 = 0; e0 < E; e0 += DFEATS) {
    const int e = e0 + l / LANES;
    scratch[l] = e < E ? row_dot(w, (size_t)e * H, xr, H, lane) : 0.0f;
    LANE_TREE(scratch, l, lane)
    if (e < E && lane == 0) p[e] = scratch[l];
    barrier(CLK_LOCAL_MEM_FENCE);  // p published, scratch free
  }
  route_topk(p, E, k, norm, scale, ids + t * k, weights + t * k, sel, scratch);
}

inline float silu_f(float v) { return v / (1.0f + exp(-v)); }

// Grid (DWG*(T*k + (Is > 0 ? T : 0)), ceil(max(I, Is)/DFEATS)); ws, hs unused when Is == 0.
__kernel __attribute__((reqd_work_group_size(DWG, 1, 1))) void moe_decode_gate_up_f32(
    __global const float* x, __global const int* ids, __global const wtype* w, __global float* h, int H, int I,
    int k, int E, int T, __global const wtype* ws, __global float* hs, int Is) {
  __local float2 scratch[DWG];
  const size_t en = get_group_id(0);
  const int l = get_local_id(0), lane = l % LANES, j = get_group_id(1) * DFEATS + l / LANES;
  const bool shared = en >= (size_t)T * k;
  const size_t tok = shared ? en - (size_t)T * k : en / k;
  const int e = shared ? 0 : ids[en];
  if (e < 0 || e >= E) return;    // uniform over the work-group, before any barrier
  const int rows = shared ? Is : I;
  const bool live = j < rows;     // uniform over a lane group
  __global const float* xr = x + tok * H;
  __global const wtype* wm = shared ? ws : w;
  const size_t og = ((shared ? 0 : (size_t)e * 2 * rows) + (live ? j : 0)) * H, ou = og + (size_t)rows * H;
  float2 gu = 0.0f;
  if (live) gu = (float2)(row_dot(wm, og, xr, H, lane), row_dot(wm, ou, xr, H, lane));
  scratch[l] = gu;
  LANE_TREE(scratch, l, lane)
  if (live && lane == 0) {
    const float g = scratch[l].x, u = scratch[l].y;
    if (shared)
      hs[tok * Is + j] = g * (1.0f / (1.0f + exp(-g))) * u;
    else
      h[en * I + j] = silu_f(g) * u;
  }
}

// Slot c0 + i of the chunk (component si of d), when the chunk has it (S > i: uniform); slot k
// is the shared experts' when Is > 0.
#define DOWN_SLOTS(M) M(0, s0) M(1, s1) M(2, s2) M(3, s3) M(4, s4) M(5, s5) M(6, s6) M(7, s7)
#define DOWN_DOT(i, si)                                                                     \
  if (S > i) {                                                                              \
    const int s = c0 + i;                                                                   \
    const size_t en = t * k + s;                                                            \
    if (s == k)                                                                             \
      d.si = row_dot(wsd, (size_t)n * Is, hs + t * Is, Is, lane);                           \
    else if (ids[en] >= 0 && ids[en] < E)                                                   \
      d.si = row_dot(w, ((size_t)ids[en] * H + n) * I, h + en * I, I, lane);                \
  }
#define DOWN_SUM(i, si)                                  \
  if (S > i) {                                           \
    const int s = c0 + i;                                \
    const size_t en = t * k + s;                         \
    if (s == k)                                          \
      acc += r.si;                                       \
    else if (ids[en] >= 0 && ids[en] < E)                \
      acc += weights[en] * r.si;                         \
  }

// Grid (DWG*T, ceil(H/DFEATS)); hs, wsd unused when Is == 0.
__kernel __attribute__((reqd_work_group_size(DWG, 1, 1))) void moe_decode_down_f32(
    __global const float* h, __global const int* ids, __global const float* weights, __global const wtype* w,
    __global float* y, int I, int H, int k, int E, __global const float* hs, __global const wtype* wsd, int Is) {
  __local float8 scratch[DWG];
  const size_t t = get_group_id(0);
  const int l = get_local_id(0), lane = l % LANES, n = get_group_id(1) * DFEATS + l / LANES;
  const bool live = n < H;  // uniform over a lane group
  const int slots = k + (Is > 0 ? 1 : 0);
  float acc = 0.0f;
  for (int c0 = 0; c0 < slots; c0 += 8) {
    const int S = min(8, slots - c0);
    float8 d = 0.0f;
    if (live) {
      DOWN_SLOTS(DOWN_DOT)
    }
    scratch[l] = d;
    LANE_TREE(scratch, l, lane)
    if (live && lane == 0) {
      const float8 r = scratch[l];
      DOWN_SLOTS(DOWN_SUM)
    }
    barrier(CLK_LOCAL_MEM_FENCE);  // scratch is rewritten by the next chunk of slots
  }
  if (live && lane == 0) y[t * H + n] = acc;
}
