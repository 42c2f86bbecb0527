// Mixture of experts (DeepSeek-V2 MoE: softmax router, greedy top-k, SwiGLU experts), fp32 arithmetic.
//
//   router:  p[t,:] = softmax(logits[t,:]) over E;  ids[t,r] = the expert of rank r in p[t,:] sorted
//            by descending probability, ties: lower id first (a stable sort), r < k;
//            weights[t,r] = p[t,ids[t,r]] * scale, or / (sum_r p + 1e-20) when NORM (k > 1).
//   experts: y[t,:] = sum_s weights[t,s] * E_{ids[t,s]}(x[t,:]),  E(x) = down(silu(gate x) * up x),
//            gate_up [E, 2I, H] (rows 0..I-1 gate, I..2I-1 up), down [E, H, I].
//            An entry is one (token t, slot s) pair, numbered t*k + s (NE = T*k entries).
//            Entries whose id is outside [0, E) contribute nothing.
//
// moe_route_f32: one work-group of WG work-items per token; the logits are copied to local memory
//   and routed there (moe_route.cl route_topk).
//
// Grouped path (many tokens): entries are sorted by expert into `perm`, each expert's segment padded
// to a multiple of BM rows (padding -1), so at most ceil(NE/BM) + E row tiles exist; the host
// launches that many and tiles with tile_expert[tile] = -1 exit at once.
//   moe_group_count_i32:   one work-group of 256 per block of 256 entries: rank[i] = number of
//                          earlier entries of the block with the same expert; blk[b*E + e] = the
//                          block's count of expert e.
//   moe_group_scan_i32:    one work-group of 256: blk becomes, per expert, the exclusive prefix over
//                          blocks; seg[e] = start of expert e's padded segment; tile_expert and the
//                          padding of perm are written.
//   moe_group_scatter_i32: one work-item per entry: perm[seg[e] + blk[b*E + e] + rank[i]] = i
//                          (segments sorted by entry index: deterministic).
//   moe_gate_up_f32:       tiled grouped GEMM, work-group 16x16 per (64 columns of I, row tile):
//                          h[entry, j] = silu(x[tok].Wg[e,j]) * (x[tok].Wu[e,j]), tok = entry / k.
//                          Work-item (tx, ty) owns rows ty, ty+16 and columns 4tx..4tx+3 of gate
//                          and of up (16 accumulators); K (= H) walked in steps of BK through local
//                          memory (x rows gathered through perm).
//   moe_down_f32:          the same tiling over 128 columns of H: o[entry, n] = h[entry].Wd[e,n]
//                          (columns 4tx..4tx+3 and 64+4tx..64+4tx+3).
//   moe_combine_f32:       y[t, n] = sum_s weights[t,s] * o[t*k+s, n] in slot order (no atomics).
// Decode path (few tokens; reads only the chosen experts' weights): kernels/moe_decode.cl.
//
// llvmpipe (gallivm's loop limiter stops a work-item after 65535 loop iterations in all): the GEMMs
// run H/BK (or I/BK) outer iterations of BK inner ones (H = 1280: ~1.4k); the grouping kernels at
// most 256 + E per work-item, the scan NB*ceil(E/256) + E + tiles (the host keeps NE within
// bounds). No private arrays: register tiles are named float4s.
//
// Weights: gate_up and down are f32, or (both alike) 16-bit or group-quantised storage widened to
// fp32 as they are loaded, in every kernel that reads them (moe_gate_up_f32, moe_down_f32,
// and moe_decode.cl's): f16, bf16, q8 or q4 (kernels/weights.cl). Core OpenCL, no extension.
//
// Tunables: WG (router work-group size, power of two, default 64); WEIGHT_* (defined: weight
// storage, see above). BM (32), BK (16) and the 16x16 GEMM work-group are fixed: the host's grid
// arithmetic depends on them.
#ifndef WG
#define WG 64
#endif
#include "reduce.cl"
#include "moe_route.cl"

#define BM 32
#define BK 16
#define GEMM_BN 64            // columns of one half of the weight tile (gate or up; down: 2 x 64)
#define LDX (BM + 1)          // local x tile [BK][LDX] (padding: fewer bank conflicts on writes)
#define LDW (2 * GEMM_BN + 4) // local weight tile [BK][LDW], float4-aligned rows
#define GROUP_WG 256          // work-group of the grouping kernels

#include "weights.cl"

inline float silu_f(float v) { return v / (1.0f + exp(-v)); }

// ---- router -----------------------------------------------------------------------------------

// logits [T,E] -> ids [T,k] i32, weights [T,k] f32. p: local E floats; sel: local k floats.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void moe_route_f32(
    __global const float* logits, __global int* ids, __global float* weights, int E, int k, int norm,
    float scale, __local float* p, __local float* sel) {
  __local float scratch[WG];
  const size_t t = get_group_id(0);
  for (int e = get_local_id(0); e < E; e += WG) p[e] = logits[t * E + e];
  barrier(CLK_LOCAL_MEM_FENCE);
  route_topk(p, E, k, norm, scale, ids + t * k, weights + t * k, sel, scratch);
}

// ---- grouping (grouped path) --------------------------------------------------------------------

__kernel __attribute__((reqd_work_group_size(GROUP_WG, 1, 1))) void moe_group_count_i32(
    __global const int* ids, __global int* rank, __global int* blk, int NE, int E) {
  __local int lid_e[GROUP_WG];
  int l = get_local_id(0);
  int b = get_group_id(0);
  int i = b * GROUP_WG + l;
  int e = -1;
  if (i < NE) {
    e = ids[i];
    if (e < 0 || e >= E) e = -1;
  }
  lid_e[l] = e;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (e >= 0) {
    int r = 0;
    for (int j = 0; j < l; ++j) r += lid_e[j] == e ? 1 : 0;
    rank[i] = r;
  }
  for (int f = l; f < E; f += GROUP_WG) {
    int c = 0;
    for (int j = 0; j < GROUP_WG; ++j) c += lid_e[j] == f ? 1 : 0;
    blk[(size_t)b * E + f] = c;
  }
}

// seg [E]: padded segment starts; tile_expert [NT]; perm [NT*BM] (only the padding written here).
// cnt: local 2*E ints (counts, then segment starts).
__kernel __attribute__((reqd_work_group_size(GROUP_WG, 1, 1))) void moe_group_scan_i32(
    __global int* blk, __global int* seg, __global int* tile_expert, __global int* perm, int E, int NB, int NT,
    __local int* cnt) {
  __local int total_tiles;
  int l = get_local_id(0);
  for (int e = l; e < E; e += GROUP_WG) {
    int run = 0;
    for (int b = 0; b < NB; ++b) {
      size_t o = (size_t)b * E + e;
      int c = blk[o];
      blk[o] = run;
      run += c;
    }
    cnt[e] = run;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (l == 0) {
    int start = 0;
    for (int e = 0; e < E; ++e) {
      cnt[E + e] = start;
      seg[e] = start;
      start += (cnt[e] + BM - 1) / BM * BM;
    }
    total_tiles = start / BM;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = l; e < E; e += GROUP_WG) {
    int c = cnt[e], s0 = cnt[E + e];
    int nt = (c + BM - 1) / BM;
    for (int q = 0; q < nt; ++q) tile_expert[s0 / BM + q] = e;
    for (int q = s0 + c; q < s0 + nt * BM; ++q) perm[q] = -1;
  }
  for (int q = total_tiles + l; q < NT; q += GROUP_WG) tile_expert[q] = -1;
}

__kernel void moe_group_scatter_i32(__global const int* ids, __global const int* rank, __global const int* blk,
                                    __global const int* seg, __global int* perm, int NE, int E) {
  int i = get_global_id(0);
  if (i >= NE) return;
  int e = ids[i];
  if (e < 0 || e >= E) return;
  int b = i / GROUP_WG;
  perm[seg[e] + blk[(size_t)b * E + e] + rank[i]] = i;
}

// ---- grouped GEMMs --------------------------------------------------------------------------------

// One BK step of the 2-row x (4+4)-column register tile: acc{0,1}{a,b} += xs[row] * ws[cols].
#define GEMM_STEP()                                            \
  for (int kk = 0; kk < BK; ++kk) {                            \
    float a0 = xs[kk * LDX + ty], a1 = xs[kk * LDX + ty + 16]; \
    float4 wa = vload4(tx, ws + kk * LDW);                     \
    float4 wb = vload4(tx, ws + kk * LDW + GEMM_BN);           \
    acc0a += a0 * wa;                                          \
    acc1a += a1 * wa;                                          \
    acc0b += a0 * wb;                                          \
    acc1b += a1 * wb;                                          \
  }

// Element offset of the weight row behind local column c of a gate_up tile starting at column j0
// (c < 64: gate row j0 + c; c >= 64: up row I + j0 + c - 64), or -1 past the matrix.
inline long gate_up_row(int e, int I, int H, int j0, int c) {
  int j = j0 + (c & (GEMM_BN - 1));
  if (j >= I) return -1;
  return (long)(((size_t)e * 2 * I + (c < GEMM_BN ? j : I + j)) * H);
}

// Element offset of row n of expert e's down matrix, or -1 past the matrix.
inline long down_row(int e, int I, int H, int n) { return n < H ? (long)(((size_t)e * H + n) * I) : -1; }

// Weight tile load: local column c = ty + 16*q (q < 8) from weight row offset wo_q (-1: zero).
#define LOAD_W(q) ws[tx * LDW + ty + 16 * (q)] = (wo##q >= 0 && kin) ? LOADW(w, (size_t)wo##q + kg) : 0.0f;
// The K loop of both grouped GEMMs: rows xo0/xo1 of src (zero for padding entries) and the eight
// weight rows wo0..wo7 through local memory, BK columns at a time, then GEMM_STEP.
#define GROUPED_K_LOOP(src, K)                                                     \
  for (int k0 = 0; k0 < (K); k0 += BK) {                                           \
    int kg = k0 + tx;                                                              \
    bool kin = kg < (K);                                                           \
    xs[tx * LDX + ty] = (xo0 >= 0 && kin) ? (src)[xo0 + kg] : 0.0f;                \
    xs[tx * LDX + ty + 16] = (xo1 >= 0 && kin) ? (src)[xo1 + kg] : 0.0f;           \
    LOAD_W(0) LOAD_W(1) LOAD_W(2) LOAD_W(3) LOAD_W(4) LOAD_W(5) LOAD_W(6) LOAD_W(7) \
    barrier(CLK_LOCAL_MEM_FENCE);                                                  \
    GEMM_STEP()                                                                    \
    barrier(CLK_LOCAL_MEM_FENCE);                                                  \
  }

// x [T,H] f32; w [E,2I,H]; perm [NT*BM]; tile_expert [NT]; h [NE,I].
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void moe_gate_up_f32(
    __global const float* x, __global const wtype* w, __global const int* perm, __global const int* tile_expert,
    __global float* h, int H, int I, int k) {
  int tile = get_group_id(1);
  int e = tile_expert[tile];
  if (e < 0) return;  // uniform over the work-group, before any barrier
  __local float xs[BK * LDX];
  __local float ws[BK * LDW];
  int tx = get_local_id(0), ty = get_local_id(1);
  int j0 = get_group_id(0) * GEMM_BN;
  int en0 = perm[tile * BM + ty], en1 = perm[tile * BM + ty + 16];
  long xo0 = en0 >= 0 ? (long)(en0 / k) * H : -1, xo1 = en1 >= 0 ? (long)(en1 / k) * H : -1;
  // weight rows: local column c < 64 -> gate row j0 + c, c >= 64 -> up row I + j0 + c - 64
#define WROW(q) long wo##q = gate_up_row(e, I, H, j0, ty + 16 * (q));
  WROW(0) WROW(1) WROW(2) WROW(3) WROW(4) WROW(5) WROW(6) WROW(7)
#undef WROW
  float4 acc0a = 0.0f, acc1a = 0.0f, acc0b = 0.0f, acc1b = 0.0f;
  GROUPED_K_LOOP(x, H)
  int j = j0 + 4 * tx;
#define STORE_GU(en, g, u)                          \
  if (en >= 0) {                                    \
    __global float* hr = h + (size_t)en * I;        \
    if (j < I) hr[j] = silu_f(g.s0) * u.s0;         \
    if (j + 1 < I) hr[j + 1] = silu_f(g.s1) * u.s1; \
    if (j + 2 < I) hr[j + 2] = silu_f(g.s2) * u.s2; \
    if (j + 3 < I) hr[j + 3] = silu_f(g.s3) * u.s3; \
  }
  STORE_GU(en0, acc0a, acc0b)
  STORE_GU(en1, acc1a, acc1b)
#undef STORE_GU
}

// h [NE,I]; w [E,H,I]; perm [NT*BM]; tile_expert [NT]; o [NE,H].
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void moe_down_f32(
    __global const float* h, __global const wtype* w, __global const int* perm, __global const int* tile_expert,
    __global float* o, int I, int H) {
  int tile = get_group_id(1);
  int e = tile_expert[tile];
  if (e < 0) return;  // uniform over the work-group, before any barrier
  __local float xs[BK * LDX];
  __local float ws[BK * LDW];
  int tx = get_local_id(0), ty = get_local_id(1);
  int n0 = get_group_id(0) * 2 * GEMM_BN;
  int en0 = perm[tile * BM + ty], en1 = perm[tile * BM + ty + 16];
  long xo0 = en0 >= 0 ? (long)en0 * I : -1, xo1 = en1 >= 0 ? (long)en1 * I : -1;
#define WROW(q) long wo##q = down_row(e, I, H, n0 + ty + 16 * (q));
  WROW(0) WROW(1) WROW(2) WROW(3) WROW(4) WROW(5) WROW(6) WROW(7)
#undef WROW
  float4 acc0a = 0.0f, acc1a = 0.0f, acc0b = 0.0f, acc1b = 0.0f;
  GROUPED_K_LOOP(h, I)
#define STORE4(en, v, n)                       \
  if (en >= 0) {                               \
    __global float* orow = o + (size_t)en * H; \
    if (n < H) orow[n] = v.s0;                 \
    if (n + 1 < H) orow[n + 1] = v.s1;         \
    if (n + 2 < H) orow[n + 2] = v.s2;         \
    if (n + 3 < H) orow[n + 3] = v.s3;         \
  }
  int na = n0 + 4 * tx, nb = n0 + GEMM_BN + 4 * tx;
  STORE4(en0, acc0a, na)
  STORE4(en1, acc1a, na)
  STORE4(en0, acc0b, nb)
  STORE4(en1, acc1b, nb)
#undef STORE4
}

// o [NE,H]; ids, weights [T,k]; y [T,H]. Global (H rounded up, T).
__kernel void moe_combine_f32(__global const float* o, __global const int* ids, __global const float* weights,
                              __global float* y, int H, int k, int E) {
  int n = get_global_id(0);
  size_t t = get_global_id(1);
  if (n >= H) return;
  float acc = 0.0f;
  for (int s = 0; s < k; ++s) {
    size_t en = t * k + s;
    int e = ids[en];
    if (e >= 0 && e < E) acc += weights[en] * o[en * H + n];
  }
  y[t * H + n] = acc;
}
