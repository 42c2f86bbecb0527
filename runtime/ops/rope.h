// Rotary position embedding (kernels/rope.cl), fp32, half rotation (NeoX):
//
//   y = x * cos + rotate_half(x) * sin,   rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])
//   cos/sin [N,D] = cos/sin of cat(f, f), f[n,k] = fp32(pos[n] * inv_freq[k]),
//   inv_freq[k] = 1 / theta^(2k/D) in fp32 (transformers' LlamaRotaryEmbedding)
//
// over all D dims (D even), for every batch and head. Used in place on q and k read straight out
// of a projection (AttnView::bnhd of [1,T,H,D], AttnView::heads of a fused [1,T,Htot,D]).
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/ops/sdpa.h"
#include "runtime/runtime.h"

namespace dsocr::ops {

// inv_freq [D/2] exactly as torch computes it in fp32: e = float(2k) / float(D), p = powf(theta, e),
// inv_freq = 1.0f / p. Throws Error for odd or non-positive D.
std::vector<float> rope_inv_freq(int64_t D, float theta);

// The inv_freq table uploaded once, for callers that apply rope many times with one (D, theta).
struct RopeFreqs {
  Tensor inv_freq;  // [D/2] f32
  int64_t D = 0;
  float theta = 0.f;
  static RopeFreqs make(Runtime& rt, int64_t D, float theta);
};

// x, y [B,H,N,D] views (y == x in place, or not overlapping x); positions [N] i32.
// This overload computes and uploads inv_freq on every call (a blocking write, which waits for
// the queue); code that applies rope repeatedly should keep a RopeFreqs and use the one below.
// Throws Error on odd D, mismatched shapes or dtypes, positions of the wrong length, out-of-bounds
// views, or a y that overlaps x without being the same view.
void rope(Runtime& rt, const AttnView& x, const Tensor& positions, float theta, const AttnView& y);

// As above with a prepared table (freqs.D must equal x.D).
void rope(Runtime& rt, const AttnView& x, const Tensor& positions, const RopeFreqs& freqs, const AttnView& y);

// The decoder's attention prologue in one launch: qkv [T, Hq + 2*Hkv, D] dense f32 (q | k | v
// heads); q rotated in place; k rotated and v copied into kv_cache [cap, 2, Hkv, D] rows
// past..past+T-1 (slot 0 k, slot 1 v). Equal bit for bit to rope() on the q and k heads followed
// by copying k | v into the cache. positions [T] i32. The cache is f32, or f16 / bf16 (each value
// rounded to nearest even as it is stored). rows (optional, [T] i32): token t goes to cache row
// rows[t] instead of past + t (a batch of sequences, each in its own rows of one cache).
void rope_kv_append(Runtime& rt, Tensor& qkv, int64_t Hq, int64_t Hkv, const Tensor& positions, const RopeFreqs& freqs,
                    Tensor& kv_cache, int64_t past, const Tensor* rows = nullptr);

}  // namespace dsocr::ops
