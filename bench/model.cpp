// dsocr bench model: the full-size DeepSeek-OCR v1 with random weights on the device (same
// shapes and storage as the released checkpoint: bf16 matrices, fp32 norms, biases and tables;
// --weights f32 widens everything), no download needed.
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "bench/bench.h"
#include "model/config.h"
#include "model/batch_generate.h"
#include "model/decoder.h"
#include "model/deepencoder.h"
#include "model/generate.h"
#include "runtime/ops/convert.h"
#include "runtime/ops/elementwise.h"
#include "runtime/half.h"
#include "runtime/quant.h"

namespace dsocr::bench {
namespace {

using Clock = std::chrono::steady_clock;
double since_ms(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Weights of the requested shape filled on the device: uniform with variance 1/fan_in for
// matrices and convolutions (activations stay O(1)), ones (+-5%) for norm scales, small values
// for biases, tables and embeddings.
class RandomWeights : public WeightSource {
 public:
  explicit RandomWeights(WeightStorage storage) : storage_(storage) {}
  bool has(const std::string&) const override { return true; }
  std::string describe(const std::string& name) const override { return "random tensor " + name; }
  Tensor load(Runtime& rt, const std::string& name, const Shape& shape) const override {
    Tensor t = rt.empty(shape, DType::f32, name);
    const bool norm = name.find("norm") != std::string::npos || name.find("layrnorm") != std::string::npos ||
                      name.find("neck.1") != std::string::npos || name.find("neck.3") != std::string::npos;
    float offset = 0.f, scale = 0.02f;
    if (shape.size() >= 2 && name.find("embed") == std::string::npos && name.find("rel_pos") == std::string::npos) {
      int64_t fan_in = 1;
      for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
      scale = static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
    } else if (norm && name.size() > 6 && name.compare(name.size() - 6, 6, "weight") == 0) {
      offset = 1.f;
      scale = 0.05f;
    } else if (name.find("embed_tokens") != std::string::npos) {
      scale = 1.f;
    }
    ops::fill_uniform(rt, t, seed_++, offset, scale);
    return t;
  }
  // As the released checkpoint stores them (bf16), or in the storage asked for (model/weights.h):
  // fp16 and int8/int4 (the LM's linears) converted on the host.
  Tensor load_matrix(Runtime& rt, const std::string& name, const Shape& shape,
                     MatrixRole role = MatrixRole::other) const override {
    Tensor f = load(rt, name, shape);
    const DType want = weight_storage_dtype(storage_, role);
    if (want == DType::f32) return f;
    if (want == DType::f16) {
      std::vector<float> h = rt.read_f32(f);
      std::vector<uint16_t> b(h.size());
      for (size_t i = 0; i < h.size(); ++i) b[i] = f32_to_f16(h[i]);
      return rt.upload(b.data(), shape, DType::f16, name);
    }
    if (dtype_is_quantized(want) && shape.back() % kQuantGroup == 0) {
      std::vector<float> h = rt.read_f32(f);
      auto blocks = quantize(want, h.data(), static_cast<int64_t>(h.size()));
      return rt.upload(blocks.data(), shape, want, name);
    }
    Tensor t = rt.empty(shape, DType::bf16, name);
    narrow_to_bf16(rt, f, t);
    return t;
  }

 private:
  WeightStorage storage_;
  mutable uint32_t seed_ = 1;
};

// Multiply-adds x2 of one view of side S through SAM + CLIP + projector (model-spec §1).
double vision_flop(const ModelConfig& c, int64_t S) {
  const SamConfig& s = c.sam;
  const int64_t g = S / s.patch_size, T = g * g, C = s.width, M = s.mlp_dim();
  double f = 2.0 * T * C * 3 * s.patch_size * s.patch_size;  // patch embedding
  const int64_t ws = s.window_size, nw = (g + ws - 1) / ws, Tw = nw * nw * ws * ws;
  for (int64_t b = 0; b < s.layers; ++b) {
    const bool glob = s.is_global(b);
    const int64_t Ta = glob ? T : Tw, keys = glob ? T : ws * ws;
    f += 2.0 * Ta * C * 4 * C;                    // qkv + proj
    f += 4.0 * Ta * keys * C;                     // q k^T and p v over all heads
    f += 2.0 * Ta * (glob ? 2 * g : 2 * ws) * C;  // rel-pos terms
    f += 2.0 * T * C * 2 * M;                     // MLP
  }
  const int64_t o = s.out_chans, d1 = s.downsample_channels[0], d2 = s.downsample_channels[1];
  f += 2.0 * T * C * o + 2.0 * T * o * o * 9 + 2.0 * (T / 4) * o * 9 * d1 + 2.0 * (T / 16) * d1 * 9 * d2;
  if (c.is_v2()) {  // the Qwen2 encoder over N image tokens + N queries (attention as if dense)
    const Qwen2EncoderConfig& q = c.qwen2;
    const int64_t N = T / 16, Tq = 2 * N, hd = q.hidden / q.heads;
    f += q.layers * (2.0 * Tq * q.hidden * (q.heads + 2 * q.kv_heads) * hd + 2.0 * Tq * q.heads * hd * q.hidden +
                     4.0 * Tq * Tq * q.heads * hd + 2.0 * Tq * q.hidden * 3 * q.intermediate);
  } else {
    const int64_t Tc = T / 16 + 1, Cc = c.clip.width, Mc = c.clip.mlp_dim();
    f += c.clip.layers * (2.0 * Tc * Cc * 4 * Cc + 4.0 * Tc * Tc * Cc + 2.0 * Tc * Cc * 2 * Mc);
  }
  f += 2.0 * (T / 16) * c.projector_input_dim * c.n_embed;
  return f;
}

// Prefill of T tokens (lm_head for the last token only).
double prefill_flop(const LmConfig& c, int64_t T) {
  const int64_t D = c.hidden_size, hd = c.head_dim(), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  double f = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    f += 2.0 * T * D * (H + 2 * Hkv) * hd + 2.0 * T * H * hd * D;  // qkv, o
    f += 4.0 * H * hd * 0.5 * T * (T + 1);                         // causal attention
    if (c.is_moe_layer(l))
      f += 6.0 * T * D * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts) +
           2.0 * T * D * c.n_routed_experts;
    else
      f += 6.0 * T * D * c.intermediate_size;
  }
  return f + 2.0 * D * c.vocab_size;
}

// Weight bytes read per generated token: attention, MLP or chosen experts (`wbytes` bytes per
// element), the router and lm_head (`hbytes`).
double decode_bytes(const LmConfig& c, double wbytes, double hbytes) {
  const int64_t D = c.hidden_size, hd = c.head_dim(), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  double w = 0, h = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    w += double(D) * (H + 2 * Hkv) * hd + double(H) * hd * D;
    w += c.is_moe_layer(l) ? 3.0 * D * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts)
                           : 3.0 * D * c.intermediate_size;
    h += c.is_moe_layer(l) ? double(D) * c.n_routed_experts : 0.0;
  }
  return wbytes * w + hbytes * (h + double(D) * c.vocab_size);
}

}  // namespace

ModelConfig bench_config(bool small, bool ocr2) {
  ModelConfig c;  // the defaults are the official DeepSeek-OCR v1 sizes
  if (small) {    // reduced widths and depths (CPU devices, tests): every structural feature kept
    c.lm.num_hidden_layers = 3;
    c.lm.hidden_size = c.n_embed = 256;
    c.lm.num_attention_heads = c.lm.num_key_value_heads = 2;
    c.lm.vocab_size = 4096;
    c.lm.n_routed_experts = 16;
    c.lm.moe_intermediate_size = 64;
    c.lm.intermediate_size = 512;
    c.sam.width = 96;
    c.sam.heads = 2;
    c.sam.layers = 4;
    c.sam.global_blocks = {1, 3};
    c.sam.out_chans = 64;
    c.sam.downsample_channels = {128, 128};
    c.clip.width = 128;
    c.clip.heads = 2;
    c.clip.layers = 2;
    c.projector_input_dim = c.clip.width + c.sam.downsample_channels[1];
  }
  if (ocr2) {  // DeepSeek-OCR-2: the same LM; SAM's net_3 to the Qwen2 encoder's width (model/config.h)
    c.version = ModelVersion::v2;
    if (small) {
      c.qwen2.layers = 2;
      c.qwen2.hidden = 128;
      c.qwen2.heads = 4;
      c.qwen2.kv_heads = 2;
      c.qwen2.intermediate = 256;
    }
    c.sam.downsample_channels[1] = c.qwen2.hidden;
    c.projector_input_dim = c.qwen2.hidden;
  }
  return c;
}

OcrModel random_model(Runtime& rt, bool small, WeightStorage storage) {
  OcrModel m;
  m.cfg = bench_config(small);
  RandomWeights w(storage);
  m.vision = load_deepencoder(rt, w, m.cfg);
  m.lm = load_lm(rt, w, m.cfg.lm);
  m.storage = storage;
  rt.finish();
  rt.trim();
  return m;
}

// Several pages' Base views [n,3,1024,1024] in one pass, as vision_embeddings_batch runs them.
void vision_pass(Runtime& rt, DeepEncoder& enc, const Tensor& many) {
  Tensor views = encode_views(rt, enc, many);
  for (int i = 0; i < ModelResult::kVisionBatch; ++i) assemble_views(rt, enc, nullptr, 0, 1, 1, views, i);
}

ModelResult bench_model(Runtime& rt, const Options& opts) {
  ModelResult r;
  const ModelConfig cfg = bench_config(opts.small, opts.ocr2);
  RandomWeights w(opts.storage);
  auto t0 = Clock::now();
  DeepEncoder enc = load_deepencoder(rt, w, cfg);
  LanguageModel lm = load_lm(rt, w, cfg.lm);
  rt.finish();
  rt.trim();
  r.init_s = since_ms(t0) / 1000.0;
  r.weights_mib = rt.memory().current / 1048576.0;

  // Vision: one Base view (1024), one Gundam page (global 1024 + 6 tiles of 640, 2 cols x 3 rows);
  // DeepSeek-OCR-2: its global view and a page of 6 tiles of 768.
  const int64_t tile = cfg.is_v2() ? 768 : 640;
  r.tile_side = tile;
  Tensor global = rt.empty({1, 3, 1024, 1024}, DType::f32, "bench global view");
  Tensor tiles = rt.empty({6, 3, tile, tile}, DType::f32, "bench tiles");
  ops::fill_uniform(rt, global, 5, 0.f, 1.f);
  ops::fill_uniform(rt, tiles, 6, 0.f, 1.f);
  auto wall = [&](const std::function<void()>& fn) {
    for (int i = 0; i < opts.warmup; ++i) fn();
    rt.finish();
    std::vector<double> ms;
    for (int i = 0; i < std::max(1, opts.runs); ++i) {
      auto t = Clock::now();
      fn();
      rt.finish();
      ms.push_back(since_ms(t));
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  r.vision_base_ms = wall([&] { vision_embeddings(rt, enc, global, nullptr, 0, 0); });
  r.vision_base_tflop = vision_flop(cfg, 1024) / 1e12;
  r.vision_gundam_ms = wall([&] { vision_embeddings(rt, enc, global, &tiles, 2, 3); });
  r.vision_gundam_tflop = (vision_flop(cfg, 1024) + 6 * vision_flop(cfg, tile)) / 1e12;
  Tensor many = rt.empty({ModelResult::kVisionBatch, 3, 1024, 1024}, DType::f32, "bench global views");
  ops::fill_uniform(rt, many, 7, 0.f, 1.f);
  r.vision_base_batch_ms = wall([&] { vision_pass(rt, enc, many); }) / ModelResult::kVisionBatch;
  many = {};
  rt.trim();  // as dsocr ocr does between the encoder and the decoder

  // Prefill of 1k tokens, then 256 decoded tokens after it.
  const int64_t P = opts.small ? 128 : 1024, N = opts.small ? 16 : 256;
  std::vector<int32_t> prompt(static_cast<size_t>(P));
  for (int64_t i = 0; i < P; ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % 100000 % cfg.lm.vocab_size);
  r.prefill_tokens = P;
  r.prefill_ms = wall([&] {
    KvCache cache = make_kv_cache(rt, cfg.lm, P, opts.kv);
    lm_forward(rt, lm, lm_embed(rt, lm, prompt, nullptr, -1), cache, true);
  });
  r.prefill_tflop = prefill_flop(cfg.lm, P) / 1e12;
  GenerateOptions g;
  g.max_new_tokens = N;
  g.eos_id = -1;  // never stop early
  g.kv = opts.kv;
  g.context = opts.small ? 0 : std::max<int64_t>(opts.context, P + N);  // the cache a long page holds
  r.context = g.context > 0 ? g.context : P + N;
  std::vector<Clock::time_point> stamps;
  std::vector<uint64_t> launches;
  for (int rep = 0; rep < 2; ++rep) {  // the first run warms up
    stamps.clear();
    launches.clear();
    generate(rt, lm, prompt, nullptr, -1, g, [&](int32_t) {
      stamps.push_back(Clock::now());
      launches.push_back(rt.launches());
    });
  }
  r.decode_tokens = static_cast<int64_t>(stamps.size()) - 1;
  double dec_ms = std::chrono::duration<double, std::milli>(stamps.back() - stamps.front()).count();
  r.decode_tok_s = dec_ms > 0 ? r.decode_tokens / (dec_ms / 1000.0) : 0;
  r.decode_launches_per_token =
      r.decode_tokens > 0 ? double(launches.back() - launches.front()) / double(r.decode_tokens) : 0;
  const DType lin = weight_storage_dtype(opts.storage, MatrixRole::lm_linear);
  const double wbytes = dtype_is_quantized(lin) ? double(quant_block_bytes(lin)) / kQuantGroup : dtype_size(lin);
  r.decode_gbytes_per_token =
      decode_bytes(cfg.lm, wbytes, dtype_size(weight_storage_dtype(opts.storage, MatrixRole::other))) / 1e9;
  r.peak_mem_mib = rt.memory().peak / 1048576.0;
  r.peak_held_mib = rt.memory().peak_held / 1048576.0;

  // Batches: B sequences of the same prompt length (distinct prompts), N steps with all B active.
  for (int B : opts.batch) {
    BatchPoint bp;
    bp.batch = B;
    bp.steps = N;
    rt.trim();
    BatchGenerator gen(rt, lm, B, P + N + 1, opts.kv);
    bp.kv_mib = kv_cache_bytes(cfg.lm, B * (P + N + 1), opts.kv) / 1048576.0;
    GenerateOptions bg = g;
    bg.max_new_tokens = N + 1;  // the first token from the prefill, then N steps with every sequence active
    auto tp = Clock::now();
    for (int b = 0; b < B; ++b) {
      std::vector<int32_t> pb = prompt;
      pb[0] = static_cast<int32_t>((b * 104729 + 7) % cfg.lm.vocab_size);  // distinct sequences
      gen.add(pb, nullptr, -1, bg, {});
    }
    rt.finish();
    bp.prefill_ms = since_ms(tp);
    std::vector<double> ms;
    const uint64_t l0 = rt.launches();
    for (int64_t st = 0; st < N; ++st) {
      auto t = Clock::now();
      gen.step({});  // reads the chosen ids back: the step is finished when it returns
      ms.push_back(since_ms(t));
    }
    bp.launches_per_step = N > 0 ? double(rt.launches() - l0) / double(N) : 0;
    std::sort(ms.begin(), ms.end());
    bp.step_ms = ms[ms.size() / 2];
    bp.tok_s = bp.step_ms > 0 ? B / (bp.step_ms / 1000.0) : 0;
    bp.held_mib = (rt.memory().current + rt.memory().cached) / 1048576.0;
    const double page_s = (r.vision_gundam_ms + r.prefill_ms) / 1000.0 + (bp.tok_s > 0 ? 256.0 / bp.tok_s : 0);
    bp.pages_per_min = page_s > 0 ? 60.0 / page_s : 0;
    r.batch.push_back(bp);
  }
  return r;
}

}  // namespace dsocr::bench
