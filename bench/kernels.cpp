// dsocr bench kernels: every kernel family at DeepSeek-OCR's real shapes (opts.small: reduced).
#include <fmt/format.h>

#include <cmath>

#include "bench/bench.h"
#include "runtime/gemm.h"
#include "runtime/ops/argmax.h"
#include "runtime/ops/conv2d.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/moe.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rel_pos.h"
#include "runtime/ops/resize.h"
#include "runtime/ops/sdpa.h"

namespace dsocr::bench {
namespace {

struct Case {
  std::string name, bound;
  double gflop = 0, gbytes = 0;
  std::function<void()> run;
};

Tensor rnd(Runtime& rt, const Shape& s, uint32_t seed, float scale = 1.f) {
  Tensor t = rt.empty(s, DType::f32, "bench input");
  ops::fill_uniform(rt, t, seed, 0.f, scale);
  return t;
}

double f4(double elements) { return elements * 4 / 1e9; }  // GB of f32 elements

// Attention with SAM's decomposed relative-position bias over a kh x kw grid.
Case sam_attn(Runtime& rt, const std::string& name, int64_t NB, int64_t H, int64_t k, int64_t D) {
  const int64_t T = k * k;
  Tensor q = rnd(rt, {NB, H, T, D}, 11), kk = rnd(rt, {NB, H, T, D}, 12), v = rnd(rt, {NB, H, T, D}, 13);
  Tensor rh = rnd(rt, {NB, H, T, k}, 14), rw = rnd(rt, {NB, H, T, k}, 15), o = rt.empty({NB, H, T, D});
  ops::SdpaParams p;
  p.scale = 1.f / std::sqrt(static_cast<float>(D));
  p.rel_pos = ops::RelPosBias{rh, rw};
  Case c{name, "compute", 4.0 * NB * H * T * T * D / 1e9, f4(4.0 * NB * H * T * D + 2.0 * NB * H * T * k), {}};
  c.run = [&rt, q, kk, v, o, p] {
    ops::sdpa(rt, ops::AttnView::bhnd(q), ops::AttnView::bhnd(kk), ops::AttnView::bhnd(v), ops::AttnView::bhnd(o), p);
  };
  return c;
}

Case attn(Runtime& rt, const std::string& name, int64_t H, int64_t Nq, int64_t Nk, int64_t D, bool causal) {
  Tensor q = rnd(rt, {1, H, Nq, D}, 21), k = rnd(rt, {1, H, Nk, D}, 22), v = rnd(rt, {1, H, Nk, D}, 23);
  Tensor o = rt.empty({1, H, Nq, D});
  double pairs = causal && Nq == Nk ? 0.5 * Nq * (Nk + 1) : double(Nq) * Nk;
  bool mem = Nq == 1;
  Case c{name, mem ? "memory" : "compute", 4.0 * H * pairs * D / 1e9, f4(2.0 * H * Nq * D + 2.0 * H * Nk * D), {}};
  float scale = 1.f / std::sqrt(static_cast<float>(D));
  c.run = [&rt, q, k, v, o, scale, causal]() mutable { ops::sdpa(rt, q, k, v, nullptr, o, scale, causal); };
  return c;
}

// The same tensor as bf16 bits (the checkpoint's storage of weight matrices).
Tensor to_bf16(Runtime& rt, const Tensor& f) {
  Tensor t = rt.empty(f.shape, DType::bf16, "bench bf16 weights");
  narrow_to_bf16(rt, f, t);
  return t;
}

Case lin(Runtime& rt, const std::string& name, int64_t M, int64_t K, int64_t N, bool bf16 = false) {
  Tensor x = rnd(rt, {M, K}, 31), w = rnd(rt, {N, K}, 32, 0.05f), y = rt.empty({M, N});
  if (bf16) w = to_bf16(rt, w);
  bool mem = M <= 4;
  const double wbytes = bf16 ? 2 : 4;
  Case c{name,
         mem ? "memory" : "compute",
         2.0 * M * N * K / 1e9,
         (4.0 * (double(M) * K + double(M) * N) + wbytes * double(N) * K) / 1e9,
         {}};
  c.run = [&rt, x, w, y]() mutable { linear(rt, x, w, nullptr, y); };
  return c;
}

Case moe(Runtime& rt, const std::string& name, int64_t T, int64_t H, int64_t E, int64_t I, int K, bool bf16 = false) {
  ops::MoeExperts ex;
  ex.E = E;
  ex.I = I;
  ex.H = H;
  ex.gate_up = rnd(rt, {E, 2 * I, H}, 41, 0.03f);
  ex.down = rnd(rt, {E, H, I}, 42, 0.03f);
  if (bf16) {
    ex.gate_up = to_bf16(rt, ex.gate_up);
    ex.down = to_bf16(rt, ex.down);
  }
  Tensor x = rnd(rt, {T, H}, 43), logits = rnd(rt, {T, E}, 44, 4.f), y = rt.empty({T, H});
  Tensor ids = rt.empty({T, K}, DType::i32), w = rt.empty({T, K});
  bool mem = T <= ops::kMoeDecodeMaxTokens;
  double weights = mem ? double(T) * K * 3 * I * H : double(E) * 3 * I * H;
  Case c{name,
         mem ? "memory" : "compute",
         6.0 * T * K * H * I / 1e9,
         ((bf16 ? 2 : 4) * weights + 4 * 2.0 * T * H) / 1e9,
         {}};
  c.run = [&rt, ex, x, logits, y, ids, w, K]() mutable {
    ops::moe_route(rt, logits, K, false, 1.f, ids, w);
    ops::moe_experts(rt, x, ex, ids, w, y);
  };
  return c;
}

}  // namespace

std::vector<KernelResult> bench_kernels(Runtime& rt, const Options& opts) {
  const bool s = opts.small;
  std::vector<Case> cases;
  // SAM (1024 view: 25 windows of 14x14; global 64x64), CLIP (257 tokens), LM (head dim 128).
  cases.push_back(sam_attn(rt, "sdpa_sam_window_relpos", s ? 2 : 25, s ? 2 : 12, 14, 64));
  cases.push_back(sam_attn(rt, "sdpa_sam_global_relpos", 1, s ? 1 : 12, s ? 32 : 64, 64));
  {
    const int64_t H = s ? 1 : 12, k = s ? 32 : 64, T = k * k, D = 64;
    Tensor qkv = rnd(rt, {1, T, 3, H, D}, 51), th = rnd(rt, {2 * k - 1, D}, 52), tw = rnd(rt, {2 * k - 1, D}, 53);
    Tensor rh = rt.empty({1, H, T, k}), rw = rt.empty({1, H, T, k});
    Case c{"rel_pos_terms_sam_global", "compute", 4.0 * H * T * k * D / 1e9, f4(H * T * D + 2.0 * H * T * k), {}};
    c.run = [&rt, qkv, th, tw, rh, rw, k]() mutable {
      ops::rel_pos_terms(rt, ops::AttnView::fused(qkv, 0), th, tw, static_cast<int>(k), static_cast<int>(k), rh, rw);
    };
    cases.push_back(c);
  }
  cases.push_back(attn(rt, "sdpa_clip_257", s ? 2 : 16, 257, 257, 64, false));
  cases.push_back(attn(rt, "sdpa_lm_prefill_1024_causal", s ? 2 : 10, s ? 256 : 1024, s ? 256 : 1024, 128, true));
  cases.push_back(attn(rt, "sdpa_lm_decode_1x1024", 10, 1, s ? 256 : 1024, 128, true));
  cases.push_back(lin(rt, "gemm_sam_qkv_4096x768x2304", s ? 1024 : 4096, 768, 2304));
  cases.push_back(lin(rt, "gemm_sam_mlp_4096x768x3072", s ? 1024 : 4096, 768, 3072));
  cases.push_back(lin(rt, "gemm_clip_mlp_257x1024x4096", 257, 1024, s ? 1024 : 4096));
  cases.push_back(lin(rt, "gemm_lm_qkv_prefill_1024x1280x3840", s ? 256 : 1024, 1280, 3840));
  cases.push_back(lin(rt, "gemv_lm_qkv_decode_1x1280x3840", 1, 1280, 3840));
  cases.push_back(lin(rt, "gemv_lm_head_1x1280x129280", 1, 1280, s ? 16384 : 129280));
  cases.push_back(lin(rt, "gemv_bf16_lm_qkv_decode_1x1280x3840", 1, 1280, 3840, true));
  cases.push_back(lin(rt, "gemv_bf16_lm_head_1x1280x129280", 1, 1280, s ? 16384 : 129280, true));
  cases.push_back(moe(rt, "moe_prefill_1024", s ? 64 : 1024, 1280, 64, s ? 128 : 896, 6));
  // --small keeps every case within a 2 GiB CPU device (rusticl's llvmpipe): fewer, narrower experts.
  cases.push_back(moe(rt, "moe_decode_1", 1, 1280, s ? 16 : 64, s ? 256 : 896, 6));
  cases.push_back(moe(rt, "moe_decode_bf16_1", 1, 1280, s ? 16 : 64, s ? 256 : 896, 6, true));
  {
    const int64_t C = s ? 64 : 256, g = s ? 16 : 64;
    Tensor x = rnd(rt, {1, C, g, g}, 61), w = rnd(rt, {C, C, 3, 3}, 62, 0.02f), y = rt.empty({1, C, g, g});
    Case c{"conv2d_neck_3x3", "compute", 2.0 * C * C * 9 * g * g / 1e9, f4(2.0 * C * g * g + 9.0 * C * C), {}};
    c.run = [&rt, x, w, y]() mutable { ops::conv2d(rt, x, w, nullptr, y, 1, 1); };
    cases.push_back(c);
  }
  {
    const int64_t C = s ? 64 : 768;
    Tensor x = rnd(rt, {1, C, 64, 64}, 71), y = rt.empty({1, C, 40, 40});
    Case c{"resize_bicubic_aa_sam_pos_64to40", "memory", 0, f4(C * (64.0 * 64 + 40 * 40 + 64 * 40)), {}};
    c.run = [&rt, x, y]() mutable { ops::resize_bicubic_aa(rt, x, y); };
    cases.push_back(c);
  }
  {
    const int64_t C = s ? 128 : 1024;
    Tensor x = rnd(rt, {1, C, 32, 32}, 72), y = rt.empty({1, C * 4, 256});
    Case c{"unfold_k2s2_32x32", "memory", 0, f4(2.0 * C * 32 * 32), {}};
    c.run = [&rt, x, y]() mutable { ops::unfold(rt, x, 2, 2, 0, y); };
    cases.push_back(c);
  }
  {
    const int64_t T = s ? 1024 : 4096;
    Tensor x = rnd(rt, {T, 768}, 81), w = rnd(rt, {768}, 82), b = rnd(rt, {768}, 83), y = rt.empty({T, 768});
    Case c{"layer_norm_sam_4096x768", "memory", 0, f4(2.0 * T * 768), {}};
    c.run = [&rt, x, w, b, y]() mutable { ops::layer_norm(rt, x, w, b, y, 1e-6f); };
    cases.push_back(c);
    Tensor x2 = rnd(rt, {1024, 1280}, 84), w2 = rnd(rt, {1280}, 85), y2 = rt.empty({1024, 1280});
    Case r{"rms_norm_lm_1024x1280", "memory", 0, f4(2.0 * 1024 * 1280), {}};
    r.run = [&rt, x2, w2, y2]() mutable { ops::rms_norm(rt, x2, w2, y2, 1e-6f); };
    cases.push_back(r);
  }
  {
    const int64_t V = s ? 16384 : 129280;
    Tensor x = rnd(rt, {1, V}, 91), idx = rt.empty({1}, DType::i32);
    Case c{"argmax_vocab", "memory", 0, f4(V), {}};
    c.run = [&rt, x, idx]() mutable { ops::argmax(rt, x, nullptr, 0, idx); };
    cases.push_back(c);
  }
  rt.finish();
  std::vector<KernelResult> out;
  for (auto& c : cases) {
    if (!opts.only.empty() && c.name.find(opts.only) == std::string::npos) continue;
    KernelResult r;
    r.name = c.name;
    r.bound = c.bound;
    r.gflop = c.gflop;
    r.gbytes = c.gbytes;
    r.ms = time_device_ms(rt, opts, c.run);
    out.push_back(r);
  }
  return out;
}

}  // namespace dsocr::bench
