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
// moe_route_f32: one work-group of WG work-items per token; the E probabilities stay in local
//   memory; work-item l owns experts l, l+WG, ... and computes each one's rank by counting the
//   experts ahead of it (E comparisons per expert), so the ranks are exactly the stable order.
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
// Decode path (few tokens; reads only the chosen experts' weights). A work-group of
// DEC_WG = DEC_ROWS * DEC_LANES work-items computes DEC_ROWS outputs; group g = local id / DEC_LANES
// owns one, its DEC_LANES lanes walk the weight rows in 4-element vectors (lane l: vectors l,
// l + DEC_LANES, ..., two per loop iteration; consecutive lanes read consecutive 16- or 8-byte
// chunks), float4 accumulators, the length % 4 tail as scalars on lanes 0.. (a loop when
// DEC_LANES < 4); then one local tree over the lanes for all groups at once (log2(DEC_LANES) + 1
// barriers). Outputs past the end load nothing but reach every barrier.
//   moe_decode_gate_up_f32: grid (ceil(I/DEC_ROWS) work-groups, NE): group g of work-group (b, entry)
//                           owns j = b*DEC_ROWS + g: g = x[tok].Wg[e,j], u = x[tok].Wu[e,j] (x read
//                           once for both), reduced together; h[entry, j] = silu(g) * u.
//                           Local memory 8 * DEC_WG bytes.
//   moe_decode_down_f32:    grid (ceil(H/DEC_ROWS) work-groups, T): group g owns n = b*DEC_ROWS + g of
//                           token t; the slots are taken four at a time (named accumulators d0..d3,
//                           four weight rows in flight), the four dot products h[entry].Wd[e,n]
//                           reduced together, then y[t, n] = sum over slots, in slot order, of
//                           weights[t,s] * dot (as before: deterministic). Local 16 * DEC_WG bytes.
//   Rows whose length (H, I) is a multiple of 4 start 16-byte aligned: float4 / ushort4 pointer
//   loads and vloada_half4 (one wide load); otherwise vload4 / vload_half4 (a uniform branch, so
//   that one program serves every shape).
//
// llvmpipe (gallivm's loop limiter stops a work-item after 65535 loop iterations in all): the GEMMs
// run H/BK (or I/BK) outer iterations of BK inner ones (H = 1280: ~1.4k); the decode kernels
// H/(8*DEC_LANES) + log2(DEC_LANES) or ceil(k/4) * (I/(8*DEC_LANES) + log2(DEC_LANES)); the grouping
// kernels at most 256 + E per work-item, the scan NB*ceil(E/256) + E + tiles (the host keeps NE
// within bounds). No private arrays: register tiles are named float4s.
//
// Weights: gate_up and down are f32, or (both alike) 16-bit storage widened to fp32 as they are
// loaded, in every kernel that reads them (moe_gate_up_f32, moe_down_f32, moe_decode_*_f32):
// f16 (WEIGHT_F16, vload_half) or bf16 (WEIGHT_BF16: raw bfloat16 bits as ushort, widened exactly
// with as_float(bits << 16)). Core OpenCL either way, no extension.
//
// Tunables: WG (router work-group size, power of two, default 64); DEC_ROWS (outputs per decode
// work-group, default 8) and DEC_LANES (work-items per output, power of two, default 32),
// DEC_ROWS * DEC_LANES <= 256; WEIGHT_F16 or WEIGHT_BF16 (defined: weight storage).
// BM (32), BK (16) and the 16x16 GEMM work-group are fixed: the host's grid arithmetic depends on
// them.
#ifndef WG
#define WG 64
#endif
#ifndef DEC_ROWS
#define DEC_ROWS 8
#endif
#ifndef DEC_LANES
#define DEC_LANES 32
#endif
#define DEC_WG (DEC_ROWS * DEC_LANES)
#include "reduce.cl"

#define BM 32
#define BK 16
#define GEMM_BN 64            // columns of one half of the weight tile (gate or up; down: 2 x 64)
#define LDX (BM + 1)          // local x tile [BK][LDX] (padding: fewer bank conflicts on writes)
#define LDW (2 * GEMM_BN + 4) // local weight tile [BK][LDW], float4-aligned rows
#define GROUP_WG 256          // work-group of the grouping kernels

#if defined(WEIGHT_F16) && defined(WEIGHT_BF16)
#error "WEIGHT_F16 and WEIGHT_BF16 are exclusive"
#endif
// LOADW: one weight. Decode kernels: LOADW4A / LOADW4U: the 4-element vector i of a row that
// starts 16-byte aligned (one wide load) / anywhere (vload4, vload_half4); LOADF4A / LOADF4U alike
// for f32 rows of x and h.
#if defined(WEIGHT_F16)
typedef half wtype;
#define LOADW(p, i) vload_half((i), (p))
#define LOADW4A(p, i) vloada_half4((i), (p))
#define LOADW4U(p, i) vload_half4((i), (p))
#elif defined(WEIGHT_BF16)
typedef ushort wtype;
#define LOADW(p, i) as_float((uint)(p)[(i)] << 16)
#define LOADW4A(p, i) as_float4(convert_uint4(((__global const ushort4*)(p))[i]) << 16)
#define LOADW4U(p, i) as_float4(convert_uint4(vload4((i), (p))) << 16)
#else
typedef float wtype;
#define LOADW(p, i) ((p)[(i)])
#define LOADW4A(p, i) (((__global const float4*)(p))[i])
#define LOADW4U(p, i) vload4((i), (p))
#endif
#define LOADF4A(p, i) (((__global const float4*)(p))[i])
#define LOADF4U(p, i) vload4((i), (p))

inline float silu_f(float v) { return v / (1.0f + exp(-v)); }

// ---- router -----------------------------------------------------------------------------------

// logits [T,E] -> ids [T,k] i32, weights [T,k] f32. p: local E floats; sel: local k floats.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void moe_route_f32(
    __global const float* logits, __global int* ids, __global float* weights, int E, int k, int norm,
    float scale, __local float* p, __local float* sel) {
  __local float scratch[WG];
  size_t t = get_group_id(0);
  int l = get_local_id(0);
  __global const float* lr = logits + t * E;
  float m = -INFINITY;
  for (int e = l; e < E; e += WG) m = fmax(m, lr[e]);
  m = wg_reduce_max(m, scratch);
  float s = 0.0f;
  for (int e = l; e < E; e += WG) {
    float v = exp(lr[e] - m);
    p[e] = v;
    s += v;
  }
  s = wg_reduce_sum(s, scratch);  // its barriers also publish p
  for (int e = l; e < E; e += WG) p[e] = p[e] / s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int e = l; e < E; e += WG) {
    float pe = p[e];
    int rank = 0;
    for (int f = 0; f < E; ++f) {
      float q = p[f];
      rank += (q > pe || (q == pe && f < e)) ? 1 : 0;
    }
    if (rank < k) {
      ids[t * k + rank] = e;
      sel[rank] = pe;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (l < k) {
    float w = sel[l];
    if (norm) {
      float sum = 0.0f;
      for (int r = 0; r < k; ++r) sum += sel[r];
      w = w / (sum + 1e-20f);
    } else {
      w = w * scale;
    }
    weights[t * k + l] = w;
  }
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
  for (int k0 = 0; k0 < H; k0 += BK) {
    int kg = k0 + tx;
    bool kin = kg < H;
    xs[tx * LDX + ty] = (xo0 >= 0 && kin) ? x[xo0 + kg] : 0.0f;
    xs[tx * LDX + ty + 16] = (xo1 >= 0 && kin) ? x[xo1 + kg] : 0.0f;
    LOAD_W(0) LOAD_W(1) LOAD_W(2) LOAD_W(3) LOAD_W(4) LOAD_W(5) LOAD_W(6) LOAD_W(7)
    barrier(CLK_LOCAL_MEM_FENCE);
    GEMM_STEP()
    barrier(CLK_LOCAL_MEM_FENCE);
  }
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
  for (int k0 = 0; k0 < I; k0 += BK) {
    int kg = k0 + tx;
    bool kin = kg < I;
    xs[tx * LDX + ty] = (xo0 >= 0 && kin) ? h[xo0 + kg] : 0.0f;
    xs[tx * LDX + ty + 16] = (xo1 >= 0 && kin) ? h[xo1 + kg] : 0.0f;
    LOAD_W(0) LOAD_W(1) LOAD_W(2) LOAD_W(3) LOAD_W(4) LOAD_W(5) LOAD_W(6) LOAD_W(7)
    barrier(CLK_LOCAL_MEM_FENCE);
    GEMM_STEP()
    barrier(CLK_LOCAL_MEM_FENCE);
  }
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

// ---- decode path ----------------------------------------------------------------------------------

#if DEC_WG > 256 || (DEC_LANES & (DEC_LANES - 1)) != 0 || DEC_ROWS < 1
#error "moe.cl: need DEC_ROWS >= 1, DEC_LANES a power of two and DEC_ROWS * DEC_LANES <= 256"
#endif
#define HSUM4(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3))

// Sums the first n (1..4) of the DEC_WG-float planes of sc over the DEC_LANES lanes of each
// group: afterwards lane 0 of a group holds its group's totals at sc[q * DEC_WG + lid]. Called
// with the same n by the whole work-group (barriers). Fixed order: deterministic.
inline void dec_reduce(__local float* sc, int n, int lid, int lane) {
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = DEC_LANES / 2; s > 0; s >>= 1) {
    if (lane < s) {
      sc[lid] += sc[lid + s];
      if (n > 1) sc[DEC_WG + lid] += sc[DEC_WG + lid + s];
      if (n > 2) sc[2 * DEC_WG + lid] += sc[2 * DEC_WG + lid + s];
      if (n > 3) sc[3 * DEC_WG + lid] += sc[3 * DEC_WG + lid + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
}

// Vectors lane, lane + DEC_LANES, ... < n4 of the gate and up rows against x (LW4, LF4: loads).
#define GATE_UP_ROW(n4, LW4, LF4)                          \
  {                                                        \
    int i = lane;                                          \
    for (; i + DEC_LANES < (n4); i += 2 * DEC_LANES) {     \
      float4 xa = LF4(xr, i), xb = LF4(xr, i + DEC_LANES); \
      g4 += LW4(wg, i) * xa;                               \
      u4 += LW4(wu, i) * xa;                               \
      g4 += LW4(wg, i + DEC_LANES) * xb;                   \
      u4 += LW4(wu, i + DEC_LANES) * xb;                   \
    }                                                      \
    if (i < (n4)) {                                        \
      float4 xa = LF4(xr, i);                              \
      g4 += LW4(wg, i) * xa;                               \
      u4 += LW4(wu, i) * xa;                               \
    }                                                      \
  }

// x [T,H]; ids [T,k]; w [E,2I,H]; h [NE,I]. Grid (ceil(I/DEC_ROWS)*DEC_WG, NE).
__kernel __attribute__((reqd_work_group_size(DEC_WG, 1, 1))) void moe_decode_gate_up_f32(
    __global const float* x, __global const int* ids, __global const wtype* w, __global float* h, int H, int I,
    int k, int E) {
  __local float sc[2 * DEC_WG];
  const size_t en = get_group_id(1);
  const int lid = get_local_id(0), lane = lid % DEC_LANES;
  const int j = get_group_id(0) * DEC_ROWS + lid / DEC_LANES;
  const int e = ids[en];
  if (e < 0 || e >= E) return;  // uniform over the work-group, before any barrier
  const bool live = j < I;
  __global const float* xr = x + (en / k) * H;
  __global const wtype* wg = w + ((size_t)e * 2 * I + (live ? j : 0)) * H;
  __global const wtype* wu = wg + (size_t)I * H;
  float4 g4 = 0.0f, u4 = 0.0f;
  if (live) {
    const int n4 = H >> 2;
    if ((H & 3) == 0)  // rows 16-byte aligned (uniform branch)
      GATE_UP_ROW(n4, LOADW4A, LOADF4A)
    else
      GATE_UP_ROW(n4, LOADW4U, LOADF4U)
    for (int c = (n4 << 2) + lane; c < H; c += DEC_LANES) {
      g4.s0 += LOADW(wg, c) * xr[c];
      u4.s0 += LOADW(wu, c) * xr[c];
    }
  }
  sc[lid] = HSUM4(g4);
  sc[DEC_WG + lid] = HSUM4(u4);
  dec_reduce(sc, 2, lid, lane);
  if (live && lane == 0) h[en * I + j] = silu_f(sc[lid]) * sc[DEC_WG + lid];
}

// Expert of slot s of token t, or -1 (past k, or an id outside [0, E)).
inline int dec_slot_expert(__global const int* ids, size_t t, int s, int k, int E) {
  if (s >= k) return -1;
  int e = ids[t * k + s];
  return e >= 0 && e < E ? e : -1;
}

// One weight vector of each live slot q (expert e_q >= 0) against its hidden row.
#define DOWN_STEP(i, LW4, LF4)                      \
  {                                                 \
    if (e0 >= 0) d0 += LW4(w0, (i)) * LF4(h0, (i)); \
    if (e1 >= 0) d1 += LW4(w1, (i)) * LF4(h1, (i)); \
    if (e2 >= 0) d2 += LW4(w2, (i)) * LF4(h2, (i)); \
    if (e3 >= 0) d3 += LW4(w3, (i)) * LF4(h3, (i)); \
  }
#define DOWN_ROW(n4, LW4, LF4)                         \
  {                                                    \
    int i = lane;                                      \
    for (; i + DEC_LANES < (n4); i += 2 * DEC_LANES) { \
      DOWN_STEP(i, LW4, LF4)                           \
      DOWN_STEP(i + DEC_LANES, LW4, LF4)               \
    }                                                  \
    if (i < (n4)) DOWN_STEP(i, LW4, LF4)               \
  }

// h [NE,I]; ids, weights [T,k]; w [E,H,I]; y [T,H]. Grid (ceil(H/DEC_ROWS)*DEC_WG, T).
__kernel __attribute__((reqd_work_group_size(DEC_WG, 1, 1))) void moe_decode_down_f32(
    __global const float* h, __global const int* ids, __global const float* weights, __global const wtype* w,
    __global float* y, int I, int H, int k, int E) {
  __local float sc[4 * DEC_WG];
  const size_t t = get_group_id(1);
  const int lid = get_local_id(0), lane = lid % DEC_LANES;
  const int n = get_group_id(0) * DEC_ROWS + lid / DEC_LANES;
  const bool live = n < H;
  const size_t nr = live ? n : 0;
  float acc = 0.0f;  // lane 0: sum over the slots, in slot order, of weight * dot
  // Slots in batches of four (named registers): one reduction per batch. k is uniform.
  for (int s0 = 0; s0 < k; s0 += 4) {
    const int e0 = dec_slot_expert(ids, t, s0, k, E), e1 = dec_slot_expert(ids, t, s0 + 1, k, E),
              e2 = dec_slot_expert(ids, t, s0 + 2, k, E), e3 = dec_slot_expert(ids, t, s0 + 3, k, E);
    const size_t en = t * k + s0;  // slot s0's entry; slots past k use the last entry's row (unread)
    __global const float* h0 = h + en * I;
    __global const float* h1 = h + (t * k + min(s0 + 1, k - 1)) * I;
    __global const float* h2 = h + (t * k + min(s0 + 2, k - 1)) * I;
    __global const float* h3 = h + (t * k + min(s0 + 3, k - 1)) * I;
    __global const wtype* w0 = w + ((size_t)max(e0, 0) * H + nr) * I;
    __global const wtype* w1 = w + ((size_t)max(e1, 0) * H + nr) * I;
    __global const wtype* w2 = w + ((size_t)max(e2, 0) * H + nr) * I;
    __global const wtype* w3 = w + ((size_t)max(e3, 0) * H + nr) * I;
    float4 d0 = 0.0f, d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
    if (live) {
      const int n4 = I >> 2;
      if ((I & 3) == 0)  // rows 16-byte aligned (uniform branch)
        DOWN_ROW(n4, LOADW4A, LOADF4A)
      else
        DOWN_ROW(n4, LOADW4U, LOADF4U)
      for (int c = (n4 << 2) + lane; c < I; c += DEC_LANES) {
        if (e0 >= 0) d0.s0 += LOADW(w0, c) * h0[c];
        if (e1 >= 0) d1.s0 += LOADW(w1, c) * h1[c];
        if (e2 >= 0) d2.s0 += LOADW(w2, c) * h2[c];
        if (e3 >= 0) d3.s0 += LOADW(w3, c) * h3[c];
      }
    }
    sc[lid] = HSUM4(d0);
    sc[DEC_WG + lid] = HSUM4(d1);
    sc[2 * DEC_WG + lid] = HSUM4(d2);
    sc[3 * DEC_WG + lid] = HSUM4(d3);
    dec_reduce(sc, min(k - s0, 4), lid, lane);
    if (lane == 0) {
      if (e0 >= 0) acc += weights[en] * sc[lid];
      if (e1 >= 0) acc += weights[en + 1] * sc[DEC_WG + lid];
      if (e2 >= 0) acc += weights[en + 2] * sc[2 * DEC_WG + lid];
      if (e3 >= 0) acc += weights[en + 3] * sc[3 * DEC_WG + lid];
    }
    barrier(CLK_LOCAL_MEM_FENCE);  // sc is rewritten by the next batch
  }
  if (live && lane == 0) y[t * H + n] = acc;
}
#undef DOWN_STEP
#undef DOWN_ROW
#undef GATE_UP_ROW
