// Parity ops of the language model and the whole model: rope, moe, decoder_layer, model_logits,
// model_generate. Structure the weights do not reveal comes from root attributes (contract
// defaults otherwise); checkpoint cases load the checkpoint the file names.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "model/decoder.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "parity/golden_weights.h"
#include "parity/parity.h"
#include "runtime/ops/rope.h"

namespace dsocr {

std::string case_checkpoint(const GoldenCase& c);  // parity_ops.cpp

namespace {

void add_taps(Runtime& rt, const Taps& taps, ParityOutputs& out) {
  for (auto& [name, t] : taps)
    out["taps/" + name] = t.dtype == DType::i32 ? from_device_i32(rt, t) : from_device_f32(rt, t);
}

int64_t count(const GoldenCase& c, const std::string& fmt_prefix, const std::string& suffix) {
  int64_t n = 0;
  while (c.weights.count(fmt::format("{}{}.{}", fmt_prefix, n, suffix))) ++n;
  return n;
}

ParityOutputs op_rope(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1, -1});
  expect_shape(c, "inputs/positions", c.input("positions"), {x.shape[2]});
  if (x.shape[3] % 2) throw GoldenError(fmt::format("{}: inputs/x head dim {} must be even", c.path, x.shape[3]));
  Tensor xt = to_device(rt, x, "x"), pos = to_device(rt, c.input("positions"), "positions");
  Tensor y = rt.empty(x.shape);
  ops::rope(rt, ops::AttnView::bhnd(xt), pos, static_cast<float>(c.attr_float("theta", 10000.0)),
            ops::AttnView::bhnd(y));
  return {{"y", from_device_f32(rt, y)}};
}

// The MoE part of an LM config from a case's weights under `p` (gate.weight, experts.N., shared_experts.).
void moe_config(const GoldenCase& c, const std::string& p, LmConfig& k) {
  const auto& g = c.weight(p + "gate.weight");
  expect_shape(c, "weights/" + p + "gate.weight", g, {-1, k.hidden_size});
  k.n_routed_experts = g.shape[0];
  if (count(c, p + "experts.", "gate_proj.weight") != k.n_routed_experts)
    throw GoldenError(fmt::format("{}: {} router rows but {} experts", c.path, g.shape[0],
                                  count(c, p + "experts.", "gate_proj.weight")));
  k.moe_intermediate_size = c.weight(p + "experts.0.gate_proj.weight").shape.at(0);
  k.n_shared_experts = 0;
  if (auto* s = c.weight_opt(p + "shared_experts.gate_proj.weight")) {
    if (s->shape.at(0) % k.moe_intermediate_size)
      throw GoldenError(fmt::format("{}: shared experts width {} is not a multiple of {}", c.path, s->shape[0],
                                    k.moe_intermediate_size));
    k.n_shared_experts = s->shape[0] / k.moe_intermediate_size;
  }
  k.num_experts_per_tok = c.attr_int("top_k", 6);
  k.norm_topk_prob = c.attr_int("norm_topk_prob", 0) != 0;
  k.routed_scaling_factor = c.attr_float("routed_scaling_factor", 1.0);
  if (k.num_experts_per_tok < 1 || k.num_experts_per_tok > k.n_routed_experts)
    throw GoldenError(fmt::format("{}: top_k {} with {} experts", c.path, k.num_experts_per_tok, k.n_routed_experts));
}

ParityOutputs op_moe(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1});
  LmConfig k;
  k.hidden_size = x.shape[1];
  moe_config(c, "", k);
  k.first_k_dense_replace = 0;
  LmLayer l;
  load_lm_moe(rt, GoldenWeights(c), k, l, 0);
  Tensor xt = to_device(rt, x, "x"), y = rt.empty(x.shape);
  Taps taps;
  lm_moe_forward(rt, k, l, xt, y, &taps);
  ParityOutputs out{{"y", from_device_f32(rt, y)}};
  add_taps(rt, taps, out);
  return out;
}

ParityOutputs op_decoder_layer(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1});
  const auto& pos = c.input("positions");
  expect_shape(c, "inputs/positions", pos, {x.shape[0]});
  LmConfig k;
  k.hidden_size = x.shape[1];
  k.num_attention_heads = c.attr_int("num_heads", 10);
  if (k.num_attention_heads < 1 || k.hidden_size % k.num_attention_heads)
    throw GoldenError(
        fmt::format("{}: num_heads {} does not divide hidden {}", c.path, k.num_attention_heads, k.hidden_size));
  const auto& kp = c.weight("self_attn.k_proj.weight");
  k.num_key_value_heads = kp.shape.at(0) / k.head_dim();
  k.rope_theta = c.attr_float("rope_theta", 10000.0);
  k.rms_norm_eps = c.attr_float("eps", 1e-6);
  const int64_t idx = c.attr_int("layer_idx", 0);
  if (c.weight_opt("mlp.gate.weight")) {
    moe_config(c, "mlp.", k);
    k.first_k_dense_replace = 0;
  } else {
    k.intermediate_size = c.weight("mlp.gate_proj.weight").shape.at(0);
    k.first_k_dense_replace = idx + 1;
  }
  k.num_hidden_layers = 1;
  LmLayer l = load_lm_layer(rt, GoldenWeights(c), k, idx);
  Tensor xt = to_device(rt, x, "x"), pt = to_device(rt, pos, "positions");
  const int64_t T = x.shape[0];
  Tensor kv = rt.empty({T, 2, k.num_key_value_heads, k.head_dim()});
  Taps taps;
  lm_layer_forward(rt, k, l, ops::RopeFreqs::make(rt, k.head_dim(), static_cast<float>(k.rope_theta)), xt, pt, kv, 0,
                   &taps);
  ParityOutputs out{{"y", from_device_f32(rt, xt)}};
  add_taps(rt, taps, out);
  return out;
}

struct CaseModel {
  OcrModel m;
  std::vector<int32_t> ids;
  Tensor image;  // [n, hidden] or undefined
  int32_t image_token_id = -1;
};

// The id of <image>: the checkpoint's tokenizer says which it is (the contract's cases name their
// checkpoint); the optional root attribute image_token_id, when present, must agree with it, and
// stands alone only when the checkpoint has no tokenizer.json.
int32_t case_image_token_id(const GoldenCase& c) {
  const std::string tok_path = case_checkpoint(c) + "/tokenizer.json";
  const bool has_attr = c.has_attr("image_token_id");
  const int64_t attr = c.attr_int("image_token_id", -1);
  if (!std::filesystem::exists(tok_path)) {
    if (has_attr && attr >= 0) return static_cast<int32_t>(attr);
    throw GoldenError(
        fmt::format("{}: image inputs, no image_token_id attribute, and the checkpoint has no {} to "
                    "take the id of <image> from",
                    c.path, tok_path));
  }
  int32_t id = -1;
  try {
    id = Tokenizer::from_file(tok_path).token_id("<image>");
  } catch (const Error& e) {
    throw GoldenError(
        fmt::format("{}: the checkpoint's tokenizer cannot be read for the id of <image>: {}", c.path, e.what()));
  }
  if (id < 0)
    throw GoldenError(fmt::format("{}: the checkpoint's tokenizer {} has no <image> token", c.path, tok_path));
  if (has_attr && attr != id)
    throw GoldenError(
        fmt::format("{}: attribute image_token_id = {} disagrees with the checkpoint's tokenizer, "
                    "where <image> is {}",
                    c.path, attr, id));
  return id;
}

CaseModel case_model(Runtime& rt, const GoldenCase& c, Taps* taps) {
  CaseModel cm;
  cm.m = load_model(rt, case_checkpoint(c));
  const auto& ids = c.input("input_ids");
  expect_shape(c, "inputs/input_ids", ids, {-1});
  for (auto v : ids.i) cm.ids.push_back(static_cast<int32_t>(v));
  if (auto* g = c.input_opt("global_view")) {
    CaseViews v = case_views(rt, c, *g);
    cm.image = vision_embeddings(rt, cm.m.vision, v.global, v.tiles_or_null(), v.cols, v.rows);
    if (taps) (*taps)["image_embeds"] = cm.image;
    cm.image_token_id = case_image_token_id(c);
  }
  return cm;
}

ParityOutputs op_model_logits(Runtime& rt, const GoldenCase& c) {
  Taps taps;
  CaseModel cm = case_model(rt, c, &taps);
  Tensor x = lm_embed(rt, cm.m.lm, cm.ids, cm.image.defined() ? &cm.image : nullptr, cm.image_token_id);
  taps["embeddings"] = rt.clone(x, "tap embeddings");
  KvCache cache = make_kv_cache(rt, cm.m.lm.cfg, static_cast<int64_t>(cm.ids.size()));
  Tensor logits = lm_forward(rt, cm.m.lm, x, cache, false, &taps);
  ParityOutputs out{{"logits", from_device_f32(rt, logits)}};
  add_taps(rt, taps, out);
  return out;
}

ParityOutputs op_model_generate(Runtime& rt, const GoldenCase& c) {
  CaseModel cm = case_model(rt, c, nullptr);
  GenerateOptions o;
  o.max_new_tokens = c.attr_int("max_new_tokens");
  o.ngram_size = static_cast<int>(c.attr_int("ngram_size", 0));
  o.ngram_window = static_cast<int>(c.attr_int("ngram_window", 0));
  for (auto v : c.attr_ints("ngram_whitelist", {})) o.ngram_whitelist.push_back(static_cast<int32_t>(v));
  std::string scope = c.attr_str("ngram_scope", "generated");
  if (scope != "generated")
    throw NotImplemented(fmt::format("{}: ngram_scope '{}' (only 'generated' is implemented)", c.path, scope));
  o.eos_id = static_cast<int32_t>(cm.m.lm.cfg.eos_token_id);
  auto toks = generate(rt, cm.m.lm, cm.ids, cm.image.defined() ? &cm.image : nullptr, cm.image_token_id, o);
  HostArray a;
  a.kind = HostArray::Kind::i64;
  a.shape = {static_cast<int64_t>(toks.size())};
  a.i.assign(toks.begin(), toks.end());
  return {{"tokens", a}};
}

}  // namespace

void register_lm_parity_ops(std::map<std::string, ParityFn>& table) {
  table["rope"] = op_rope;
  table["moe"] = op_moe;
  table["decoder_layer"] = op_decoder_layer;
  table["model_logits"] = op_model_logits;
  table["model_generate"] = op_model_generate;
}

}  // namespace dsocr
