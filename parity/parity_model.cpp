// Model-level parity ops (sam_encoder, clip_encoder, vision_encoder, v1 and DeepSeek-OCR-2): the
// structure that the weights do not reveal comes from the case's root attributes (contract
// defaults otherwise).
#include <fmt/format.h>

#include "model/deepencoder.h"
#include "parity/golden_weights.h"
#include "parity/parity.h"

namespace dsocr {
namespace {

int64_t count_layers(const GoldenCase& c, const std::string& prefix, const std::string& suffix) {
  int64_t n = 0;
  while (c.weights.count(fmt::format("{}{}.{}", prefix, n, suffix))) ++n;
  return n;
}

const HostArray& w(const GoldenCase& c, const std::string& name, size_t rank) {
  const HostArray& a = c.weight(name);
  if (a.shape.size() != rank)
    throw GoldenError(fmt::format("{}: /weights/{} has rank {}, expected {}", c.path, name, a.shape.size(), rank));
  return a;
}

SamConfig sam_config(const GoldenCase& c, const std::string& p, const char* heads_attr) {
  SamConfig s;
  const auto& pos = w(c, p + "pos_embed", 4);
  s.width = pos.shape[3];
  s.image_size = pos.shape[1] * s.patch_size;
  s.heads = c.attr_int(heads_attr, 12);
  s.window_size = c.attr_int("window_size", 14);
  s.layers = count_layers(c, p + "blocks.", "norm1.weight");
  s.global_blocks = c.attr_ints("global_blocks", {2, 5, 8, 11});
  s.mlp_ratio = static_cast<double>(w(c, p + "blocks.0.mlp.lin1.weight", 2).shape[0]) / s.width;
  s.out_chans = w(c, p + "neck.0.weight", 4).shape[0];
  s.downsample_channels = {w(c, p + "net_2.weight", 4).shape[0], w(c, p + "net_3.weight", 4).shape[0]};
  return s;
}

ClipConfig clip_config(const GoldenCase& c, const std::string& p, const char* heads_attr) {
  ClipConfig k;
  k.width = w(c, p + "embeddings.class_embedding", 1).shape[0];
  int64_t n = w(c, p + "embeddings.position_embedding.weight", 2).shape[0] - 1;
  int64_t g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (g * g != n) throw GoldenError(fmt::format("{}: position_embedding rows - 1 = {} is not square", c.path, n));
  k.image_size = g * k.patch_size;
  k.heads = c.attr_int(heads_attr, 16);
  k.layers = count_layers(c, p + "transformer.layers.", "layer_norm1.weight");
  k.mlp_ratio = static_cast<double>(w(c, p + "transformer.layers.0.mlp.fc1.weight", 2).shape[0]) / k.width;
  return k;
}

void add_taps(Runtime& rt, const Taps& taps, ParityOutputs& out) {
  for (auto& [name, t] : taps) out["taps/" + name] = from_device_f32(rt, t);
}

ParityOutputs op_sam_encoder(Runtime& rt, const GoldenCase& c) {
  SamConfig cfg = sam_config(c, "", "num_heads");
  SamEncoder sam = load_sam(rt, GoldenWeights(c), cfg);
  Tensor px = to_device(rt, c.input("pixels"), "pixels");
  Taps taps;
  Tensor y = sam_forward(rt, sam, px, &taps);
  ParityOutputs out{{"y", from_device_f32(rt, y)}};
  add_taps(rt, taps, out);
  return out;
}

ParityOutputs op_clip_encoder(Runtime& rt, const GoldenCase& c) {
  ClipConfig cfg = clip_config(c, "", "num_heads");
  Clip clip = load_clip(rt, GoldenWeights(c), cfg);
  Tensor x = to_device(rt, c.input("sam_features"), "sam_features");
  Taps taps;
  Tensor y = clip_forward(rt, clip, x, &taps);
  ParityOutputs out{{"y", from_device_f32(rt, y)}};
  add_taps(rt, taps, out);
  return out;
}

// A DeepSeek-OCR-2 vision_encoder case (contract §7.2: weights under qwen2_model.*): the encoder's
// sizes from its weights, heads / theta / eps from the qwen2_* root attributes.
Qwen2EncoderConfig qwen2_case_config(const GoldenCase& c) {
  const std::string p = "qwen2_model.", l0 = p + "model.model.layers.0.";
  Qwen2EncoderConfig k;
  const auto& q768 = w(c, p + "query_768.weight", 2);
  k.hidden = q768.shape[1];
  k.tile_queries = q768.shape[0];
  k.global_queries = w(c, p + "query_1024.weight", 2).shape[0];
  k.layers = count_layers(c, p + "model.model.layers.", "input_layernorm.weight");
  k.heads = c.attr_int("qwen2_heads", 14);
  if (k.heads < 1 || k.hidden % k.heads)
    throw GoldenError(fmt::format("{}: qwen2_heads {} does not divide the width {}", c.path, k.heads, k.hidden));
  k.kv_heads = w(c, l0 + "self_attn.k_proj.weight", 2).shape[0] / k.head_dim();
  k.intermediate = w(c, l0 + "mlp.gate_proj.weight", 2).shape[0];
  k.rope_theta = c.attr_float("qwen2_rope_theta", 1e6);
  k.rms_eps = c.attr_float("qwen2_eps", 1e-6);
  return k;
}

ParityOutputs op_vision_encoder(Runtime& rt, const GoldenCase& c) {
  ModelConfig cfg;
  cfg.sam = sam_config(c, "sam_model.", "sam_heads");
  if (c.weights.count("qwen2_model.query_768.weight")) {
    cfg.version = ModelVersion::v2;
    cfg.qwen2 = qwen2_case_config(c);
  } else {
    cfg.clip = clip_config(c, "vision_model.", "clip_heads");
  }
  const auto& pw = w(c, "projector.layers.weight", 2);
  cfg.n_embed = pw.shape[0];
  cfg.projector_input_dim = pw.shape[1];
  DeepEncoder enc = load_deepencoder(rt, GoldenWeights(c), cfg);
  CaseViews v = case_views(rt, c, c.input("global_view"));
  Taps taps;
  Tensor y = vision_embeddings(rt, enc, v.global, v.tiles_or_null(), v.cols, v.rows, &taps);
  ParityOutputs out{{"embeds", from_device_f32(rt, y)}};
  add_taps(rt, taps, out);
  return out;
}

}  // namespace

void register_model_parity_ops(std::map<std::string, ParityFn>& table) {
  table["sam_encoder"] = op_sam_encoder;
  table["clip_encoder"] = op_clip_encoder;
  table["vision_encoder"] = op_vision_encoder;
}

}  // namespace dsocr
