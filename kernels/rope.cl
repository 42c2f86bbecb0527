// Rotary position embedding, half rotation (NeoX / transformers' rotate_half), fp32.
//   rope_neox_f32: x, y strided [B,H,N,D] views (element (b,h,n,d) at off + b*sb + h*sh + n*sn + d),
//                  positions pos [N] i32, inv_freq [D/2] f32 (computed on the host in fp32).
//     angle(n,k) = (float)pos[n] * inv_freq[k]            rounded to fp32, k in [0, D/2)
//     y[..,k]       = x[..,k]       * cos(angle) - x[..,k+D/2] * sin(angle)
//     y[..,k+D/2]   = x[..,k+D/2]   * cos(angle) + x[..,k]     * sin(angle)
//   i.e. y = x*cos + rotate_half(x)*sin with cos/sin = cat(cos(angle), cos(angle)) over all D.
//   cos/sin are the full-precision builtins (not native_), evaluated on the fp32 angle.
// Index mapping: one work-item per rotated pair (b,h,n,k), flat id = ((b*H + h)*N + n)*(D/2) + k,
//   so consecutive work-items read consecutive d. Each work-item reads both partners before it
//   writes them, so y may be the same view as x (in place).
//   rope_kv_append_f32: the decoder's attention prologue in one launch, over a fused projection
//                  qkv [T, Hq + 2*Hkv, D] (q heads, then k heads, then v heads; dense) and a KV
//                  cache [cap, 2, Hkv, D] (k then v of a token in one row): q heads rotated in
//                  place; k heads rotated (the same arithmetic as rope_neox_f32) and written to
//                  cache row past + t (or rows[t] when use_rows: a batch of sequences, each in
//                  its own rows of the cache), slot 0; v heads copied to slot 1. One work-item per pair
//                  (t, head, k) over all Hq + 2*Hkv heads. The cache is fp32, or f16 / bf16
//                  rounded to nearest even as stored (KV_F16 / KV_BF16: kv_storage.cl).
//                  A decode step does this in its attention launch instead (sdpa_decode.cl,
//                  KV_APPEND), with the same arithmetic: change both together (the bit-for-bit
//                  test is tests/ops/sdpa_decode_batch.cpp).
// Tunables: KV_F16 or KV_BF16 (defined: the cache's storage); the host picks the work-group size.
#include "kv_storage.cl"

__kernel void rope_neox_f32(__global const float* x, long x_off, long x_sb, long x_sh, long x_sn,  //
                            __global float* y, long y_off, long y_sb, long y_sh, long y_sn,        //
                            __global const int* pos, __global const float* inv_freq, int H, int N, int half_d,
                            int total) {
  const int gid = get_global_id(0);
  if (gid >= total) return;
  const int k = gid % half_d;
  int r = gid / half_d;
  const int n = r % N;
  r /= N;
  const int h = r % H;
  const int b = r / H;
  const float angle = (float)pos[n] * inv_freq[k];
  const float c = cos(angle), s = sin(angle);
  __global const float* xp = x + x_off + b * x_sb + h * x_sh + n * x_sn;
  __global float* yp = y + y_off + b * y_sb + h * y_sh + n * y_sn;
  const float x1 = xp[k], x2 = xp[k + half_d];
  yp[k] = x1 * c - x2 * s;
  yp[k + half_d] = x2 * c + x1 * s;
}

__kernel void rope_kv_append_f32(__global float* qkv, __global kvtype* cache, __global const int* pos,
                                 __global const int* rows, int use_rows, __global const float* inv_freq, int Hq,
                                 int Hkv, int half_d, int past, int total) {
  const int gid = get_global_id(0);
  if (gid >= total) return;
  const int Htot = Hq + 2 * Hkv, D = 2 * half_d;
  const int k = gid % half_d;
  const int r = gid / half_d;
  const int h = r % Htot, t = r / Htot;
  __global float* xp = qkv + ((long)t * Htot + h) * D;
  const float x1 = xp[k], x2 = xp[k + half_d];
  const long row = use_rows ? (long)rows[t] : (long)(past + t);
  __global kvtype* cp = cache + (row * 2 * Hkv) * D;
  if (h >= Hq + Hkv) {  // v: copied
    cp += (long)(Hkv + h - Hq - Hkv) * D;
    STOREKV(x1, cp, k);
    STOREKV(x2, cp, k + half_d);
    return;
  }
  const float angle = (float)pos[t] * inv_freq[k];
  const float c = cos(angle), s = sin(angle);
  const float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
  if (h < Hq) {  // q: in place
    xp[k] = y1;
    xp[k + half_d] = y2;
  } else {  // k: into the cache
    cp += (long)(h - Hq) * D;
    STOREKV(y1, cp, k);
    STOREKV(y2, cp, k + half_d);
  }
}
