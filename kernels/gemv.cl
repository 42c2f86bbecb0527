// Matrix-vector products for a few rows (decode: R = 1..4), fp32 arithmetic:
//   y[r, o] = sum_k x[r, k] * w[o, k]        x [R, K], w [N, K], y [R, N]
// w is f32, or 16-bit storage widened on load: f16 (WEIGHT_F16, vload_half) or bf16 (WEIGHT_BF16:
// raw bfloat16 bits as ushort, widened exactly with as_float(bits << 16)); no extension needed.
// CLBlast's GEMM reaches only a fraction of the memory bandwidth at M = 1; here every weight row
// is read once, coalesced, for all R rows together.
//
// Index mapping: a work-group of WG = ROWS * LANES work-items computes ROWS output features
// o = group * ROWS + g (g = local id / LANES; groups with o >= N load nothing but reach every
// barrier). The LANES lanes of group g walk row o in 4-element vectors: lane l reads vectors
// l, l + LANES, ... (two per loop iteration), so consecutive lanes read consecutive 16-byte (f32)
// or 8-byte (f16, bf16) chunks; each lane keeps one float4 accumulator per row of x (a0..a3).
// The K % 4 trailing elements are read as scalars by lanes 0.. (a loop when LANES < 4). Then one
// local-memory tree over the lanes reduces the R sums of all ROWS features at once (log2(LANES)
// + 1 barriers); summation order is fixed (deterministic). Grid: ceil(N / ROWS) * WG work-items.
// VEC_ALIGNED (host: K % 4 == 0, so every row starts 16-byte aligned): vectors are read through
// float4 / ushort4 pointers and vloada_half4 (one wide load); otherwise vload4 / vload_half4.
//
// X_SWIGLU (defined): the input row is the SwiGLU product of a fused gate|up row, x [R, 2K]:
//   x'[r, k] = silu(x[r, k]) * x[r, K + k]   (the expression of activation.cl's swiglu_f32)
// so that an MLP's down projection in decode needs no separate activation launch. x' is computed
// once per work-group (not once per feature) in chunks of XCH columns into local memory `xs`
// (R * XCH floats, a kernel argument), two barriers per chunk.
//
// Local memory: 16 * WG bytes (partial sums, 4 KiB at WG = 256) + the xs argument (X_SWIGLU:
// 4 * R * XCH bytes, 16 KiB at R = 4, XCH = 1024; otherwise the host passes 16 bytes).
// Loop iterations per work-item (llvmpipe's limit is 65535): K / (8 * LANES) + log2(LANES) + 3,
// plus with X_SWIGLU K / WG + 2 * K / XCH; e.g. 35 for K = 6848 at LANES = 32 (f32, no SwiGLU).
// Tunables: ROWS (features per work-group, default 8), LANES (work-items per feature, power of two,
// default 32), ROWS * LANES <= 256; XCH (X_SWIGLU chunk, multiple of 4, default 1024);
// VEC_ALIGNED, WEIGHT_F16 or WEIGHT_BF16 (defined: see above).
#ifndef ROWS
#define ROWS 8
#endif
#ifndef LANES
#define LANES 32
#endif
#ifndef XCH
#define XCH 1024
#endif
#define WG (ROWS * LANES)
#if WG > 256 || (LANES & (LANES - 1)) != 0 || ROWS < 1
#error "gemv.cl: need ROWS >= 1, LANES a power of two and ROWS * LANES <= 256"
#endif
#if XCH % 4 != 0
#error "gemv.cl: XCH must be a multiple of 4"
#endif

#if defined(WEIGHT_F16) && defined(WEIGHT_BF16)
#error "WEIGHT_F16 and WEIGHT_BF16 are exclusive"
#endif
#if defined(WEIGHT_F16)
#define WTYPE half
#define LOADW(p, i) vload_half((i), (p))
#ifdef VEC_ALIGNED
#define LOADW4(p, i) vloada_half4((i), (p))
#else
#define LOADW4(p, i) vload_half4((i), (p))
#endif
#elif defined(WEIGHT_BF16)
#define WTYPE ushort
#define LOADW(p, i) as_float((uint)(p)[i] << 16)
#ifdef VEC_ALIGNED
#define LOADW4(p, i) as_float4(convert_uint4(((__global const ushort4*)(p))[i]) << 16)
#else
#define LOADW4(p, i) as_float4(convert_uint4(vload4((i), (p))) << 16)
#endif
#else
#define WTYPE float
#define LOADW(p, i) ((p)[i])
#ifdef VEC_ALIGNED
#define LOADW4(p, i) (((__global const float4*)(p))[i])
#else
#define LOADW4(p, i) vload4((i), (p))
#endif
#endif
#ifdef VEC_ALIGNED
#define LOADX4(p, i) (((__global const float4*)(p))[i])
#else
#define LOADX4(p, i) vload4((i), (p))
#endif

#define HSUM4(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3))

// One weight vector (index i of wp) against the R rows of x: XV(r, i) gives row r's float4, XS
// the scalar for the tails.
#define GEMV_STEP(wp, i, XV)          \
  {                                   \
    float4 wv = LOADW4(wp, (i));      \
    a0 += wv * XV(0, (i));            \
    if (R > 1) a1 += wv * XV(1, (i)); \
    if (R > 2) a2 += wv * XV(2, (i)); \
    if (R > 3) a3 += wv * XV(3, (i)); \
  }
#define GEMV_TAIL(wp, k, XS)             \
  {                                      \
    float ws = LOADW(wp, (k));           \
    a0.s0 += ws * XS(0, (k));            \
    if (R > 1) a1.s0 += ws * XS(1, (k)); \
    if (R > 2) a2.s0 += ws * XS(2, (k)); \
    if (R > 3) a3.s0 += ws * XS(3, (k)); \
  }
// Lane `lane` accumulates the n elements of row wp (n4 = n / 4 vectors, then the n % 4 tail).
#define GEMV_ROW(wp, n, XV, XS)                                              \
  {                                                                          \
    const int n4 = (n) >> 2;                                                 \
    int i = lane;                                                            \
    for (; i + LANES < n4; i += 2 * LANES) {                                 \
      GEMV_STEP(wp, i, XV)                                                   \
      GEMV_STEP(wp, i + LANES, XV)                                           \
    }                                                                        \
    if (i < n4) GEMV_STEP(wp, i, XV)                                         \
    for (int k = (n4 << 2) + lane; k < (n); k += LANES) GEMV_TAIL(wp, k, XS) \
  }

#ifdef X_SWIGLU
inline float swiglu_in(__global const float* x, int K, int r, int k) {
  float g = x[(size_t)r * 2 * K + k];
  return g * (1.0f / (1.0f + exp(-g))) * x[(size_t)r * 2 * K + K + k];
}
#define XV_LOCAL(r, i) xs[(r) * (XCH / 4) + (i)]
#define XS_LOCAL(r, k) ((__local const float*)xs)[(r)*XCH + (k)]
#else
#define XV_GLOBAL(r, i) LOADX4(x + (size_t)(r)*K, (i))
#define XS_GLOBAL(r, k) x[(size_t)(r)*K + (k)]
#endif

// x [R, K] (X_SWIGLU: [R, 2K]) f32; w [N, K]; y [R, N]; xs: local R * XCH floats with X_SWIGLU.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void gemv_f32(__global const float* x, __global const WTYPE* w,
                                                                       __global float* y, int R, int K, int N,
                                                                       __local float4* xs) {
  __local float scratch[4 * WG];
  const int lid = get_local_id(0), lane = lid % LANES;
  const int o = get_group_id(0) * ROWS + lid / LANES;
  const bool live = o < N;
  __global const WTYPE* wr = w + (size_t)(live ? o : 0) * K;
  float4 a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#ifdef X_SWIGLU
  // R is the same for the whole work-group: the barriers are reached uniformly.
  for (int c0 = 0; c0 < K; c0 += XCH) {
    const int cn = min(XCH, K - c0);
    __local float* xf = (__local float*)xs;
    for (int k = lid; k < cn; k += WG) {
      xf[k] = swiglu_in(x, K, 0, c0 + k);
      if (R > 1) xf[XCH + k] = swiglu_in(x, K, 1, c0 + k);
      if (R > 2) xf[2 * XCH + k] = swiglu_in(x, K, 2, c0 + k);
      if (R > 3) xf[3 * XCH + k] = swiglu_in(x, K, 3, c0 + k);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (live) GEMV_ROW(wr + c0, cn, XV_LOCAL, XS_LOCAL)
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#else
  if (live) GEMV_ROW(wr, K, XV_GLOBAL, XS_GLOBAL)
#endif
  scratch[lid] = HSUM4(a0);
  if (R > 1) scratch[WG + lid] = HSUM4(a1);
  if (R > 2) scratch[2 * WG + lid] = HSUM4(a2);
  if (R > 3) scratch[3 * WG + lid] = HSUM4(a3);
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = LANES / 2; s > 0; s >>= 1) {
    if (lane < s) {
      scratch[lid] += scratch[lid + s];
      if (R > 1) scratch[WG + lid] += scratch[WG + lid + s];
      if (R > 2) scratch[2 * WG + lid] += scratch[2 * WG + lid + s];
      if (R > 3) scratch[3 * WG + lid] += scratch[3 * WG + lid + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (live && lane == 0) {
    y[o] = scratch[lid];
    if (R > 1) y[(size_t)N + o] = scratch[WG + lid];
    if (R > 2) y[(size_t)2 * N + o] = scratch[2 * WG + lid];
    if (R > 3) y[(size_t)3 * N + o] = scratch[3 * WG + lid];
  }
}
