#include "model/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/error.h"

namespace dsocr {

using json = nlohmann::json;

bool SamConfig::is_global(int64_t block) const {
  return std::find(global_blocks.begin(), global_blocks.end(), block) != global_blocks.end();
}

namespace {

struct Reader {
  const json& top;
  const json* lang;
  const std::string& origin;

  // The value of key: top level, then language_config; nullptr when absent or null.
  const json* find(const char* key) const {
    if (top.contains(key) && !top[key].is_null()) return &top[key];
    if (lang && lang->contains(key) && !(*lang)[key].is_null()) return &(*lang)[key];
    return nullptr;
  }
  void get(const char* key, int64_t& v) const {
    if (auto* j = find(key)) {
      if (!j->is_number_integer())
        throw Error(fmt::format("{}: {} must be an integer, got {}", origin, key, j->dump()));
      v = j->get<int64_t>();
    }
  }
  void get(const char* key, double& v) const {
    if (auto* j = find(key)) {
      if (!j->is_number()) throw Error(fmt::format("{}: {} must be a number, got {}", origin, key, j->dump()));
      v = j->get<double>();
    }
  }
  void get(const char* key, bool& v) const {
    if (auto* j = find(key)) {
      if (!j->is_boolean()) throw Error(fmt::format("{}: {} must be true or false, got {}", origin, key, j->dump()));
      v = j->get<bool>();
    }
  }
  std::string str(const char* key, const std::string& fallback) const {
    if (auto* j = find(key)) {
      if (!j->is_string()) throw Error(fmt::format("{}: {} must be a string, got {}", origin, key, j->dump()));
      return j->get<std::string>();
    }
    return fallback;
  }
};

template <typename T>
void sub(const json& obj, const char* key, T& v, const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return;
  const json& j = obj[key];
  if constexpr (std::is_same_v<T, int64_t>) {
    if (!j.is_number_integer()) throw Error(fmt::format("{}: {} must be an integer, got {}", where, key, j.dump()));
    v = j.get<int64_t>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!j.is_number()) throw Error(fmt::format("{}: {} must be a number, got {}", where, key, j.dump()));
    v = j.get<double>();
  } else {
    if (!j.is_array()) throw Error(fmt::format("{}: {} must be an array of integers", where, key));
    v.clear();
    for (auto& e : j) {
      if (!e.is_number_integer()) throw Error(fmt::format("{}: {} must be an array of integers", where, key));
      v.push_back(e.get<int64_t>());
    }
  }
}

// Sizes beyond these are not a model this engine could hold; refusing them here keeps every
// product of sizes below (buffer sizes, grids, MLP widths) far from int64 overflow.
constexpr int64_t kMaxDim = int64_t(1) << 24;  // widths, vocabulary, context, experts
constexpr int64_t kMaxCount = 1 << 12;         // layers, heads

void check_range(const std::string& origin, const char* what, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) throw Error(fmt::format("{}: {} must be in {}..{}, got {}", origin, what, lo, hi, v));
}
void check_real(const std::string& origin, const char* what, double v, double lo, double hi) {
  if (!(v > lo && v <= hi))  // also refuses NaN
    throw Error(fmt::format("{}: {} must be in ({}, {}], got {}", origin, what, lo, hi, v));
}

// The language model's fields (top level, or language_config when present), checked.
void parse_lm(const Reader& r, const std::string& origin, LmConfig& lm) {
  r.get("vocab_size", lm.vocab_size);
  r.get("hidden_size", lm.hidden_size);
  r.get("intermediate_size", lm.intermediate_size);
  r.get("moe_intermediate_size", lm.moe_intermediate_size);
  r.get("num_hidden_layers", lm.num_hidden_layers);
  r.get("num_attention_heads", lm.num_attention_heads);
  r.get("num_key_value_heads", lm.num_key_value_heads);
  r.get("n_shared_experts", lm.n_shared_experts);
  r.get("n_routed_experts", lm.n_routed_experts);
  r.get("num_experts_per_tok", lm.num_experts_per_tok);
  r.get("first_k_dense_replace", lm.first_k_dense_replace);
  r.get("moe_layer_freq", lm.moe_layer_freq);
  r.get("norm_topk_prob", lm.norm_topk_prob);
  r.get("routed_scaling_factor", lm.routed_scaling_factor);
  r.get("rms_norm_eps", lm.rms_norm_eps);
  r.get("rope_theta", lm.rope_theta);
  r.get("max_position_embeddings", lm.max_position_embeddings);
  r.get("bos_token_id", lm.bos_token_id);
  r.get("eos_token_id", lm.eos_token_id);
  r.get("tie_word_embeddings", lm.tie_word_embeddings);
  bool use_mla = false;
  r.get("use_mla", use_mla);
  if (use_mla)
    throw NotImplemented(
        fmt::format("{}: use_mla true (MLA attention) is not implemented; DeepSeek-OCR uses plain MHA", origin));
  if (auto s = r.str("scoring_func", "softmax"); s != "softmax")
    throw NotImplemented(fmt::format("{}: router scoring_func '{}' is not implemented (softmax only)", origin, s));
  if (auto s = r.str("topk_method", "greedy"); s != "greedy")
    throw NotImplemented(fmt::format("{}: router topk_method '{}' is not implemented (greedy only)", origin, s));
  if (auto* rs = r.find("rope_scaling"))
    throw NotImplemented(fmt::format("{}: rope_scaling {} is not implemented", origin, rs->dump()));
  for (auto [name, v] : {std::pair{"vocab_size", lm.vocab_size}, std::pair{"hidden_size", lm.hidden_size},
                         std::pair{"intermediate_size", lm.intermediate_size},
                         std::pair{"moe_intermediate_size", lm.moe_intermediate_size},
                         std::pair{"max_position_embeddings", lm.max_position_embeddings}})
    check_range(origin, name, v, 1, kMaxDim);
  for (auto [name, v] :
       {std::pair{"num_hidden_layers", lm.num_hidden_layers}, std::pair{"num_attention_heads", lm.num_attention_heads},
        std::pair{"num_key_value_heads", lm.num_key_value_heads}, std::pair{"moe_layer_freq", lm.moe_layer_freq}})
    check_range(origin, name, v, 1, kMaxCount);
  check_range(origin, "n_routed_experts", lm.n_routed_experts, 0, kMaxCount);
  check_range(origin, "n_shared_experts", lm.n_shared_experts, 0, kMaxCount);
  check_range(origin, "first_k_dense_replace", lm.first_k_dense_replace, 0, kMaxCount);
  check_range(origin, "bos_token_id", lm.bos_token_id, 0, lm.vocab_size - 1);
  check_range(origin, "eos_token_id", lm.eos_token_id, 0, lm.vocab_size - 1);
  check_real(origin, "rms_norm_eps", lm.rms_norm_eps, 0, 1);
  check_real(origin, "rope_theta", lm.rope_theta, 0, 1e12);
  check_real(origin, "routed_scaling_factor", lm.routed_scaling_factor, 0, 1e6);
  if (lm.hidden_size % lm.num_attention_heads != 0 || lm.num_attention_heads % lm.num_key_value_heads != 0)
    throw Error(
        fmt::format("{}: hidden_size {} must divide into num_attention_heads {} heads, a multiple of "
                    "num_key_value_heads {}",
                    origin, lm.hidden_size, lm.num_attention_heads, lm.num_key_value_heads));
  if (lm.n_routed_experts > 0 && (lm.num_experts_per_tok <= 0 || lm.num_experts_per_tok > lm.n_routed_experts))
    throw Error(fmt::format("{}: num_experts_per_tok {} must be in 1..n_routed_experts {}", origin,
                            lm.num_experts_per_tok, lm.n_routed_experts));
}

// vision_config: SAM and CLIP sizes, checked.
void parse_vision(const json& top, const std::string& origin, ModelConfig& c) {
  if (top.contains("vision_config") && top["vision_config"].is_object()) {
    const json& vc = top["vision_config"];
    if (vc.contains("width") && vc["width"].is_object()) {
      const json& w = vc["width"];
      if (w.contains("sam_vit_b") && w["sam_vit_b"].is_object()) {
        const json& s = w["sam_vit_b"];
        std::string where = origin + " vision_config.width.sam_vit_b";
        sub(s, "width", c.sam.width, where);
        sub(s, "layers", c.sam.layers, where);
        sub(s, "heads", c.sam.heads, where);
        sub(s, "global_attn_indexes", c.sam.global_blocks, where);
        sub(s, "downsample_channels", c.sam.downsample_channels, where);
        sub(s, "out_chans", c.sam.out_chans, where);
        sub(s, "window_size", c.sam.window_size, where);
        sub(s, "mlp_ratio", c.sam.mlp_ratio, where);
      }
      if (w.contains("clip-l-14-224") && w["clip-l-14-224"].is_object()) {
        const json& s = w["clip-l-14-224"];
        std::string where = origin + " vision_config.width.clip-l-14-224";
        sub(s, "width", c.clip.width, where);
        sub(s, "layers", c.clip.layers, where);
        sub(s, "heads", c.clip.heads, where);
        sub(s, "mlp_ratio", c.clip.mlp_ratio, where);
        sub(s, "image_size", c.clip.image_size, where);
        sub(s, "patch_size", c.clip.patch_size, where);
      }
    }
  }
  if (c.sam.downsample_channels.size() != 2)
    throw Error(fmt::format("{}: sam_vit_b.downsample_channels must have 2 entries", origin));
  for (auto g : c.sam.global_blocks)
    if (g < 0 || g >= c.sam.layers)
      throw Error(fmt::format("{}: sam global_attn_indexes entry {} outside 0..{}", origin, g, c.sam.layers - 1));
  for (auto [name, v] :
       {std::pair{"sam width", c.sam.width}, std::pair{"sam out_chans", c.sam.out_chans},
        std::pair{"sam window_size", c.sam.window_size},
        std::pair{"sam downsample_channels[0]", c.sam.downsample_channels[0]},
        std::pair{"sam downsample_channels[1]", c.sam.downsample_channels[1]}, std::pair{"clip width", c.clip.width},
        std::pair{"clip image_size", c.clip.image_size}, std::pair{"clip patch_size", c.clip.patch_size}})
    check_range(origin, name, v, 1, kMaxDim);
  for (auto [name, v] : {std::pair{"sam layers", c.sam.layers}, std::pair{"sam heads", c.sam.heads},
                         std::pair{"clip layers", c.clip.layers}, std::pair{"clip heads", c.clip.heads}})
    check_range(origin, name, v, 1, kMaxCount);
  check_real(origin, "sam mlp_ratio", c.sam.mlp_ratio, 0, 64);
  check_real(origin, "clip mlp_ratio", c.clip.mlp_ratio, 0, 64);
  if (c.sam.mlp_dim() < 1 || c.clip.mlp_dim() < 1)
    throw Error(fmt::format("{}: encoder MLP widths (width x mlp_ratio) must be at least 1", origin));
  if (c.clip.patch_size > c.clip.image_size)
    throw Error(fmt::format("{}: clip patch_size {} is larger than its image_size {}", origin, c.clip.patch_size,
                            c.clip.image_size));
  if (c.sam.width % c.sam.heads || c.clip.width % c.clip.heads)
    throw Error(fmt::format("{}: encoder widths must divide into their heads", origin));
}

// DeepSeek-OCR-2: any of a vision_config.width "qwen2-0-5b" entry, vision_config.model_name
// "deepencoderv2", the architecture DeepseekOCR2ForCausalLM (reference config.py is_v2).
bool is_v2_config(const json& top) {
  if (top.contains("vision_config") && top["vision_config"].is_object()) {
    const json& vc = top["vision_config"];
    if (vc.contains("width") && vc["width"].is_object() && vc["width"].contains("qwen2-0-5b")) return true;
    if (vc.contains("model_name") && vc["model_name"] == "deepencoderv2") return true;
  }
  if (top.contains("architectures") && top["architectures"].is_array())
    for (const json& a : top["architectures"])
      if (a == "DeepseekOCR2ForCausalLM") return true;
  return false;
}

// The Qwen2 encoder of a v2 config: qwen2-0-5b.dim and the reduced checkpoint's optional extras;
// net_3 outputs the encoder width (the config's downsample_channels[1] is stale).
void parse_qwen2(const json& top, const std::string& origin, ModelConfig& c) {
  c.version = ModelVersion::v2;
  Qwen2EncoderConfig& q = c.qwen2;
  const json* e = nullptr;
  if (top.contains("vision_config") && top["vision_config"].is_object()) {
    const json& vc = top["vision_config"];
    if (vc.contains("width") && vc["width"].is_object() && vc["width"].contains("qwen2-0-5b"))
      e = &vc["width"]["qwen2-0-5b"];
  }
  if (e && !e->is_null()) {
    std::string where = origin + " vision_config.width.qwen2-0-5b";
    if (!e->is_object()) throw Error(fmt::format("{} must be an object", where));
    sub(*e, "dim", q.hidden, where);
    sub(*e, "layers", q.layers, where);
    sub(*e, "heads", q.heads, where);
    sub(*e, "kv_heads", q.kv_heads, where);
    sub(*e, "intermediate_size", q.intermediate, where);
    sub(*e, "rope_theta", q.rope_theta, where);
    sub(*e, "rms_norm_eps", q.rms_eps, where);
  }
  for (auto [name, v] : {std::pair{"qwen2 dim", q.hidden}, std::pair{"qwen2 intermediate_size", q.intermediate}})
    check_range(origin, name, v, 1, kMaxDim);
  for (auto [name, v] : {std::pair{"qwen2 layers", q.layers}, std::pair{"qwen2 heads", q.heads},
                         std::pair{"qwen2 kv_heads", q.kv_heads}})
    check_range(origin, name, v, 1, kMaxCount);
  check_real(origin, "qwen2 rope_theta", q.rope_theta, 0, 1e12);
  check_real(origin, "qwen2 rms_norm_eps", q.rms_eps, 0, 1);
  if (q.hidden % q.heads || q.heads % q.kv_heads || q.head_dim() % 2)
    throw Error(fmt::format("{}: qwen2 encoder dim {} must divide into {} heads of even size, a multiple of "
                            "kv_heads {}",
                            origin, q.hidden, q.heads, q.kv_heads));
  c.sam.downsample_channels[1] = q.hidden;
  c.projector_input_dim = q.hidden;
}

// projector_config, checked against the encoder and LM widths.
void parse_projector(const json& top, const std::string& origin, ModelConfig& c) {
  const LmConfig& lm = c.lm;
  if (top.contains("projector_config") && top["projector_config"].is_object()) {
    const json& p = top["projector_config"];
    std::string type = p.value("projector_type", std::string("linear"));
    if (type != "linear")
      throw NotImplemented(
          fmt::format("{}: projector_type '{}' is not implemented (DeepSeek-OCR uses linear)", origin, type));
    sub(p, "input_dim", c.projector_input_dim, origin + " projector_config");
    sub(p, "n_embed", c.n_embed, origin + " projector_config");
  }
  if (c.is_v2()) {
    if (c.projector_input_dim != c.qwen2.hidden)
      throw Error(fmt::format("{}: DeepSeek-OCR-2 projector input_dim {} must equal the encoder dim {}", origin,
                              c.projector_input_dim, c.qwen2.hidden));
  } else if (c.projector_input_dim != c.clip.width + c.sam.downsample_channels[1])
    throw Error(fmt::format("{}: projector input_dim {} must equal CLIP width {} + SAM output channels {}", origin,
                            c.projector_input_dim, c.clip.width, c.sam.downsample_channels[1]));
  if (c.n_embed != lm.hidden_size)
    throw Error(
        fmt::format("{}: projector n_embed {} must equal the LM hidden_size {}", origin, c.n_embed, lm.hidden_size));
}

}  // namespace

ModelConfig parse_config(const std::string& text, const std::string& origin) {
  json top = json::parse(text, nullptr, false);
  if (top.is_discarded() || !top.is_object()) throw Error(fmt::format("{}: not a JSON object", origin));
  const json* lang =
      top.contains("language_config") && top["language_config"].is_object() ? &top["language_config"] : nullptr;
  Reader r{top, lang, origin};
  ModelConfig c;
  c.model_type = r.str("model_type", "");
  c.torch_dtype = r.str("torch_dtype", "");
  parse_lm(r, origin, c.lm);
  parse_vision(top, origin, c);
  if (is_v2_config(top)) parse_qwen2(top, origin, c);
  parse_projector(top, origin, c);
  if (top.contains("dsocr_demo") && top["dsocr_demo"].is_object()) {
    const json& d = top["dsocr_demo"];
    if (d.contains("mode") && d["mode"].is_string()) c.default_mode = d["mode"].get<std::string>();
    if (d.contains("prompt") && d["prompt"].is_string()) c.default_prompt = d["prompt"].get<std::string>();
  }
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("cannot read {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace dsocr
