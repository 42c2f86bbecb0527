// dsocr bench kernels: every kernel family at DeepSeek-OCR's real shapes (opts.small: reduced).
// Case names state the shapes actually run, so a --small row never carries a real-size name.
#include <fmt/format.h>

#include <cmath>

#include "bench/bench.h"
#include "parity/op_cases.h"
#include "runtime/ops/convert.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/argmax.h"
#include "runtime/ops/conv2d.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/moe.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rel_pos.h"
#include "runtime/ops/resize.h"
#include "runtime/ops/sdpa.h"
#include "runtime/quant.h"

namespace dsocr::bench {
namespace {

using Timed = std::function<void()>;

// One case: its name, what bounds it, the work it does, and how to set it up on a device (the
// inputs are allocated only when the case is selected; make returns the call that is timed).
struct Case {
  std::string name, bound;
  double gflop = 0, gbytes = 0;
  std::function<Timed(Runtime&)> make;
};

Tensor rnd(Runtime& rt, const Shape& s, uint32_t seed, float scale = 1.f) {
  Tensor t = rt.empty(s, DType::f32, "bench input");
  ops::fill_uniform(rt, t, seed, 0.f, scale);
  return t;
}

double f4(double elements) { return elements * 4 / 1e9; }  // GB of f32 elements

// Attention with SAM's decomposed relative-position bias over a kh x kw grid of T = Nq = Nk tokens: B windows x H
// heads, "<name>_BxHxTxD" (a bench descriptor of parity/cases/sdpa.json with rel_pos).
Case sam_attn(const OpCase& d) {
  const int64_t NB = d.get_int("B"), H = d.get_int("H"), T = d.get_int("Nk"), D = d.get_int("D");
  const auto grid = d.get_ints("rel_pos");
  const int64_t kh = grid[0], kw = grid[1];
  Case c{fmt::format("{}_{}x{}x{}x{}", d.group, NB, H, T, D),
         "compute",
         4.0 * NB * H * T * T * D / 1e9,
         f4(4.0 * NB * H * T * D + NB * H * T * double(kh + kw)),
         {}};
  const float scale = static_cast<float>(d.get_float("scale", 1.0 / std::sqrt(static_cast<double>(D))));
  c.make = [=](Runtime& rt) -> Timed {
    Tensor q = rnd(rt, {NB, H, T, D}, 11), kk = rnd(rt, {NB, H, T, D}, 12), v = rnd(rt, {NB, H, T, D}, 13);
    Tensor rh = rnd(rt, {NB, H, T, kh}, 14), rw = rnd(rt, {NB, H, T, kw}, 15), o = rt.empty({NB, H, T, D});
    ops::SdpaParams p;
    p.scale = scale;
    p.rel_pos = ops::RelPosBias{rh, rw};
    return [&rt, q, kk, v, o, p] {
      ops::sdpa(rt, ops::AttnView::bhnd(q), ops::AttnView::bhnd(kk), ops::AttnView::bhnd(v), ops::AttnView::bhnd(o), p);
    };
  };
  return c;
}

Case rel_pos_terms(int64_t H, int64_t k, int64_t D) {
  const int64_t T = k * k;
  Case c{fmt::format("rel_pos_terms_sam_global_{}x{}x{}x{}", H, T, k, D),
         "compute",
         4.0 * H * T * k * D / 1e9,
         f4(H * T * D + 2.0 * H * T * k),
         {}};
  c.make = [=](Runtime& rt) -> Timed {
    Tensor qkv = rnd(rt, {1, T, 3, H, D}, 51), th = rnd(rt, {2 * k - 1, D}, 52), tw = rnd(rt, {2 * k - 1, D}, 53);
    Tensor rh = rt.empty({1, H, T, k}), rw = rt.empty({1, H, T, k});
    return [&rt, qkv, th, tw, rh, rw, k]() mutable {
      ops::rel_pos_terms(rt, ops::AttnView::fused(qkv, 0), th, tw, static_cast<int>(k), static_cast<int>(k), rh, rw);
    };
  };
  return c;
}

// Plain attention (a bench descriptor without rel_pos): H heads, Nq queries over Nk keys of width D, batch 1,
// "<name>_HxNxD" (decode "<name>_HxNqxNkxD"), "_causal" when causal with more than one query.
Case attn(const OpCase& d) {
  const int64_t H = d.get_int("H"), Nq = d.get_int("Nq"), Nk = d.get_int("Nk"), D = d.get_int("D");
  const bool causal = d.get_int("causal", 0) != 0;
  const std::string shape = Nq == Nk ? fmt::format("{}x{}x{}", H, Nq, D) : fmt::format("{}x{}x{}x{}", H, Nq, Nk, D);
  double pairs = causal && Nq == Nk ? 0.5 * Nq * (Nk + 1) : double(Nq) * Nk;
  bool mem = Nq == 1;
  Case c{fmt::format("{}_{}{}", d.group, shape, causal && Nq > 1 ? "_causal" : ""),
         mem ? "memory" : "compute",
         4.0 * H * pairs * D / 1e9,
         f4(2.0 * H * Nq * D + 2.0 * H * Nk * D),
         {}};
  const float scale = static_cast<float>(d.get_float("scale", 1.0 / std::sqrt(static_cast<double>(D))));
  c.make = [=](Runtime& rt) -> Timed {
    Tensor q = rnd(rt, {1, H, Nq, D}, 21), k = rnd(rt, {1, H, Nk, D}, 22), v = rnd(rt, {1, H, Nk, D}, 23);
    Tensor o = rt.empty({1, H, Nq, D});
    return [&rt, q, k, v, o, scale, causal]() mutable { ops::sdpa(rt, q, k, v, nullptr, o, scale, causal); };
  };
  return c;
}

// The bench-tagged sdpa descriptors (parity/cases/sdpa.json, shared with the op test and the golden writer), in file
// order, at their --small shapes when s; after SAM's global attention, the step that computes its rel-pos terms.
void sdpa_cases(bool s, std::vector<Case>& cases) {
  for (const auto& full : op_cases("sdpa", "bench")) {
    const OpCase d = s ? full.small() : full;
    // What the two makers time: rel-pos attention over B windows, plain attention at batch 1; no grouped heads.
    if (d.get_int("Hkv") != d.get_int("H") || (d.get_int("B") != 1 && !d.has("rel_pos")))
      throw Error(fmt::format("bench case {}: B {}, H {}, Hkv {}: only B 1 (or rel_pos) and Hkv = H are timed", d.name,
                              d.get_int("B"), d.get_int("H"), d.get_int("Hkv")));
    cases.push_back(d.has("rel_pos") ? sam_attn(d) : attn(d));
    if (d.group == "sdpa_sam_global_relpos") {
      auto g = d.get_ints("rel_pos");
      cases.push_back(rel_pos_terms(d.get_int("H"), g[0], d.get_int("D")));
    }
  }
}

// The same tensor in a weight storage: f32 as is, bf16 bits (the checkpoint's storage of weight
// matrices), or group-quantised blocks (runtime/quant.h; quantised on the host, as loading does).
Tensor stored(Runtime& rt, const Tensor& f, DType wt) {
  if (wt == DType::f32) return f;
  if (wt == DType::bf16) {
    Tensor t = rt.empty(f.shape, DType::bf16, "bench bf16 weights");
    narrow_to_bf16(rt, f, t);
    return t;
  }
  std::vector<float> h(static_cast<size_t>(f.numel()));
  rt.read(f, h.data(), h.size() * sizeof(float));
  auto blocks = quantize(wt, h.data(), f.numel());
  return rt.upload(blocks.data(), f.shape, wt, "bench quantised weights");
}

// Bytes per weight element of a storage.
double weight_bytes(DType wt) {
  return dtype_is_quantized(wt) ? double(quant_block_bytes(wt)) / kQuantGroup : double(dtype_size(wt));
}

// y[M,N] = x[M,K] w[N,K]^T: "MxKxN".
Case lin(const std::string& stem, int64_t M, int64_t K, int64_t N, DType wt = DType::f32) {
  bool mem = M <= 4;
  const double wbytes = weight_bytes(wt);
  Case c{fmt::format("{}_{}x{}x{}", stem, M, K, N),
         mem ? "memory" : "compute",
         2.0 * M * N * K / 1e9,
         (4.0 * (double(M) * K + double(M) * N) + wbytes * double(N) * K) / 1e9,
         {}};
  c.make = [=](Runtime& rt) -> Timed {
    Tensor x = rnd(rt, {M, K}, 31), w = rnd(rt, {N, K}, 32, 0.05f), y = rt.empty({M, N});
    w = stored(rt, w, wt);
    return [&rt, x, w, y]() mutable { linear(rt, x, w, nullptr, y); };
  };
  return c;
}

// T tokens of width H through the top-K of E experts of width I: "TxH_ExI_topK".
Case moe(const std::string& stem, int64_t T, int64_t H, int64_t E, int64_t I, int K, DType wt = DType::f32) {
  bool mem = T <= ops::kMoeDecodeMaxTokens;
  double weights = mem ? double(T) * K * 3 * I * H : double(E) * 3 * I * H;
  Case c{fmt::format("{}_{}x{}_{}x{}_top{}", stem, T, H, E, I, K),
         mem ? "memory" : "compute",
         6.0 * T * K * H * I / 1e9,
         (weight_bytes(wt) * weights + 4 * 2.0 * T * H) / 1e9,
         {}};
  c.make = [=](Runtime& rt) -> Timed {
    ops::MoeExperts ex;
    ex.E = E;
    ex.I = I;
    ex.H = H;
    ex.gate_up = rnd(rt, {E, 2 * I, H}, 41, 0.03f);
    ex.down = rnd(rt, {E, H, I}, 42, 0.03f);
    ex.gate_up = stored(rt, ex.gate_up, wt);
    ex.down = stored(rt, ex.down, wt);
    Tensor x = rnd(rt, {T, H}, 43), logits = rnd(rt, {T, E}, 44, 4.f), y = rt.empty({T, H});
    Tensor ids = rt.empty({T, K}, DType::i32), w = rt.empty({T, K});
    return [&rt, ex, x, logits, y, ids, w, K]() mutable {
      ops::moe_route(rt, logits, K, false, 1.f, ids, w);
      ops::moe_experts(rt, x, ex, ids, w, y);
    };
  };
  return c;
}

// A bench descriptor of parity/cases/resize.json (mode bicubic_aa, square in and out): "<name>_<C>x<H>to<oh>", the
// input from the descriptor's seed.
Case resize(const OpCase& d) {
  const Shape x = d.get_shape("shape");
  const auto out = d.get_ints("out");
  if (d.get_str("mode", "") != "bicubic_aa" || x[0] != 1 || x[2] != x[3] || out[0] != out[1])
    throw Error(fmt::format("bench case resize/{}: only bicubic_aa from [1,C,H,H] to a square is timed", d.name));
  const int64_t C = x[1], H = x[2], O = out[0];
  const uint32_t seed = d.seed;
  Case c{fmt::format("{}_{}x{}to{}", d.group, C, H, O), "memory", 0, f4(C * (double(H) * H + O * O + H * O)), {}};
  c.make = [=](Runtime& rt) -> Timed {
    Tensor xt = rnd(rt, {1, C, H, H}, seed), y = rt.empty({1, C, O, O});
    return [&rt, xt, y]() mutable { ops::resize_bicubic_aa(rt, xt, y); };
  };
  return c;
}

// Conv2d at the neck, the bench-tagged resize descriptors (shared with the op test and the golden writer), unfold.
void vision_misc_cases(bool s, std::vector<Case>& cases) {
  {
    const int64_t C = s ? 64 : 256, g = s ? 16 : 64;
    Case c{fmt::format("conv2d_neck_3x3_{}x{}x{}", C, g, g),
           "compute",
           2.0 * C * C * 9 * g * g / 1e9,
           f4(2.0 * C * g * g + 9.0 * C * C),
           {}};
    c.make = [=](Runtime& rt) -> Timed {
      Tensor x = rnd(rt, {1, C, g, g}, 61), w = rnd(rt, {C, C, 3, 3}, 62, 0.02f), y = rt.empty({1, C, g, g});
      return [&rt, x, w, y]() mutable { ops::conv2d(rt, x, w, nullptr, y, 1, 1); };
    };
    cases.push_back(c);
  }
  for (const auto& full : op_cases("resize", "bench")) cases.push_back(resize(s ? full.small() : full));
  {
    const int64_t C = s ? 128 : 1024;
    Case c{fmt::format("unfold_k2s2_{}x32x32", C), "memory", 0, f4(2.0 * C * 32 * 32), {}};
    c.make = [=](Runtime& rt) -> Timed {
      Tensor x = rnd(rt, {1, C, 32, 32}, 72), y = rt.empty({1, C * 4, 256});
      return [&rt, x, y]() mutable { ops::unfold(rt, x, 2, 2, 0, y); };
    };
    cases.push_back(c);
  }
}

// A bench descriptor of parity/cases/layer_norm.json or rms_norm.json (rows layout): "<name>_<rows>x<C>", inputs from
// the descriptor's seed (x), seed + 1 (weight), seed + 2 (bias).
Case norm(const OpCase& d) {
  const Shape sh = d.get_shape("shape");
  if (d.get_str("layout", "rows") != "rows")
    throw Error(fmt::format("bench case {}/{}: only layout rows is timed", d.op, d.name));
  const int64_t C = sh.back(), T = shape_numel(sh) / C;
  const bool rms = d.op == "rms_norm";
  const float eps = static_cast<float>(d.get_float("eps", 1e-6));
  const uint32_t seed = d.seed;
  Case c{fmt::format("{}_{}x{}", d.group, T, C), "memory", 0, f4(2.0 * T * C), {}};
  c.make = [=](Runtime& rt) -> Timed {
    Tensor x = rnd(rt, {T, C}, seed), w = rnd(rt, {C}, seed + 1), y = rt.empty({T, C});
    if (rms) return [&rt, x, w, y, eps]() mutable { ops::rms_norm(rt, x, w, y, eps); };
    Tensor b = rnd(rt, {C}, seed + 2);
    return [&rt, x, w, b, y, eps]() mutable { ops::layer_norm(rt, x, w, b, y, eps); };
  };
  return c;
}

// The bench-tagged layer_norm then rms_norm descriptors (shared with the op test and the golden writer), then argmax.
void norm_argmax_cases(bool s, std::vector<Case>& cases) {
  for (const std::string op : {"layer_norm", "rms_norm"})
    for (const auto& full : op_cases(op, "bench")) cases.push_back(norm(s ? full.small() : full));
  const int64_t V = s ? 16384 : 129280;
  Case a{fmt::format("argmax_vocab_{}", V), "memory", 0, f4(V), {}};
  a.make = [=](Runtime& rt) -> Timed {
    Tensor x = rnd(rt, {1, V}, 91), idx = rt.empty({1}, DType::i32);
    return [&rt, x, idx]() mutable { ops::argmax(rt, x, nullptr, 0, idx); };
  };
  cases.push_back(a);
}

std::vector<Case> all_cases(bool s) {
  std::vector<Case> cases;
  // SAM (1024 view: 25 windows of 14x14; global 64x64), CLIP (257 tokens), LM (head dim 128).
  sdpa_cases(s, cases);
  cases.push_back(lin("gemm_sam_qkv", s ? 1024 : 4096, 768, 2304));
  cases.push_back(lin("gemm_sam_mlp", s ? 1024 : 4096, 768, 3072));
  cases.push_back(lin("gemm_clip_mlp", 257, 1024, s ? 1024 : 4096));
  cases.push_back(lin("gemm_lm_qkv_prefill", s ? 256 : 1024, 1280, 3840));
  cases.push_back(lin("gemv_lm_qkv_decode", 1, 1280, 3840));
  cases.push_back(lin("gemv_lm_head", 1, 1280, s ? 16384 : 129280));
  cases.push_back(lin("gemv_bf16_lm_qkv_decode", 1, 1280, 3840, DType::bf16));
  cases.push_back(lin("gemv_bf16_lm_head", 1, 1280, s ? 16384 : 129280, DType::bf16));
  cases.push_back(lin("gemv_int8_lm_qkv_decode", 1, 1280, 3840, DType::q8));
  cases.push_back(lin("gemv_int4_lm_qkv_decode", 1, 1280, 3840, DType::q4));
  cases.push_back(moe("moe_prefill", s ? 64 : 1024, 1280, 64, s ? 128 : 896, 6));
  // --small keeps every case within a 2 GiB CPU device (rusticl's llvmpipe): fewer, narrower experts.
  cases.push_back(moe("moe_decode", 1, 1280, s ? 16 : 64, s ? 256 : 896, 6));
  cases.push_back(moe("moe_decode_bf16", 1, 1280, s ? 16 : 64, s ? 256 : 896, 6, DType::bf16));
  cases.push_back(moe("moe_decode_int8", 1, 1280, s ? 16 : 64, s ? 256 : 896, 6, DType::q8));
  cases.push_back(moe("moe_decode_int4", 1, 1280, s ? 16 : 64, s ? 256 : 896, 6, DType::q4));
  vision_misc_cases(s, cases);
  norm_argmax_cases(s, cases);
  return cases;
}

bool selected(const std::string& name, const std::string& only) {
  return only.empty() || name.find(only) != std::string::npos;
}

}  // namespace

std::vector<std::string> kernel_names(bool small) {
  std::vector<std::string> names;
  for (auto& c : all_cases(small)) names.push_back(c.name);
  return names;
}

bool kernel_selection_empty(const Options& opts) {
  for (auto& n : kernel_names(opts.small))
    if (selected(n, opts.only)) return false;
  return true;
}

std::vector<KernelResult> bench_kernels(Runtime& rt, const Options& opts) {
  std::vector<KernelResult> out;
  for (auto& c : all_cases(opts.small)) {
    if (!selected(c.name, opts.only)) continue;
    KernelResult r;
    r.name = c.name;
    r.bound = c.bound;
    r.gflop = c.gflop;
    r.gbytes = c.gbytes;
    Timed run = c.make(rt);  // inputs live until the next case: one case's memory at a time
    rt.finish();
    r.ms = time_device_ms(rt, opts, run);
    out.push_back(r);
  }
  return out;
}

}  // namespace dsocr::bench
