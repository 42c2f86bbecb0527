// DeepSeek-OCR configuration from the checkpoint's config.json (model-spec §1.5).
//
// Both layouts in the wild parse: the released one (model_type "deepseek_vl_v2", bf16, many keys
// omitted: DeepseekV2Config defaults apply) and re-saves that spell every key ("DeepseekOCR").
// Precedence: top-level keys, then language_config, then the defaults. Encoder sizes are fixed in
// the official code; a reduced test checkpoint describes them through vision_config.width
// ("sam_vit_b": width, layers, heads, global_attn_indexes, downsample_channels, and optional
// out_chans, window_size, mlp_ratio; "clip-l-14-224": width, layers, heads, optional mlp_ratio,
// image_size, patch_size), as reference/dsocr_ref/config.py does. Every buffer size derives from
// this struct.
//
// DeepSeek-OCR-2 (version 2) is recognised as reference/dsocr_ref/config.py does: a
// vision_config.width "qwen2-0-5b" entry, vision_config.model_name "deepencoderv2" or the
// architecture DeepseekOCR2ForCausalLM. Its encoder width is qwen2-0-5b.dim (896); SAM's net_3
// outputs that width, so the stale sam_vit_b.downsample_channels[1] (1024 in the release) is
// replaced by it. A reduced checkpoint may add layers, heads, kv_heads, intermediate_size,
// rope_theta, rms_norm_eps to the qwen2-0-5b entry (absent: the official values). CLIP is unused.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsocr {

struct LmConfig {
  int64_t vocab_size = 129280, hidden_size = 1280, intermediate_size = 6848, moe_intermediate_size = 896;
  int64_t num_hidden_layers = 12, num_attention_heads = 10, num_key_value_heads = 10;
  int64_t n_shared_experts = 2, n_routed_experts = 64, num_experts_per_tok = 6;
  int64_t first_k_dense_replace = 1, moe_layer_freq = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0, rms_norm_eps = 1e-6, rope_theta = 10000.0;
  int64_t max_position_embeddings = 8192, bos_token_id = 0, eos_token_id = 1;
  bool tie_word_embeddings = false;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  bool is_moe_layer(int64_t i) const {
    return n_routed_experts > 0 && i >= first_k_dense_replace && i % moe_layer_freq == 0;
  }
};

struct SamConfig {
  int64_t width = 768, layers = 12, heads = 12, window_size = 14, out_chans = 256, patch_size = 16;
  int64_t image_size = 1024;  // pos_embed grid = image_size / patch_size
  double mlp_ratio = 4.0, ln_eps = 1e-6;
  std::vector<int64_t> global_blocks = {2, 5, 8, 11};
  std::vector<int64_t> downsample_channels = {512, 1024};
  int64_t grid() const { return image_size / patch_size; }
  int64_t mlp_dim() const { return static_cast<int64_t>(width * mlp_ratio); }
  bool is_global(int64_t block) const;
};

struct ClipConfig {
  int64_t width = 1024, layers = 24, heads = 16, image_size = 224, patch_size = 14;
  double mlp_ratio = 4.0, ln_eps = 1e-5;
  int64_t grid() const { return image_size / patch_size; }
  int64_t mlp_dim() const { return static_cast<int64_t>(width * mlp_ratio); }
};

// DeepSeek-OCR-2's Qwen2 "causal flow" encoder (model-spec §1.3; model/qwen2_encoder.h). Fixed in
// the official code (qwen2_d2e.py), not read from config.json: a Qwen2-0.5B shape without
// embed_tokens, q/k/v projections with bias and o_proj without, RMSNorm, half-rotation RoPE, SwiGLU.
// The learned query tables are query_768 [tile_queries, hidden] (768-pixel tiles, a 12x12 net_3
// grid) and query_1024 [global_queries, hidden] (the 1024 global view, 16x16); a view of N image
// tokens uses the table of N rows, so a reduced test encoder picks smaller counts.
struct Qwen2EncoderConfig {
  int64_t layers = 24, hidden = 896, heads = 14, kv_heads = 2, intermediate = 4864;
  int64_t tile_queries = 144, global_queries = 256;
  double rope_theta = 1e6, rms_eps = 1e-6;
  int64_t head_dim() const { return hidden / heads; }
};

enum class ModelVersion { v1 = 1, v2 = 2 };  // DeepSeek-OCR, DeepSeek-OCR-2

struct ModelConfig {
  std::string model_type;  // as written in the file
  std::string torch_dtype;
  ModelVersion version = ModelVersion::v1;
  LmConfig lm;
  SamConfig sam;
  ClipConfig clip;            // v1 only
  Qwen2EncoderConfig qwen2;   // v2 only
  bool is_v2() const { return version == ModelVersion::v2; }
  int64_t projector_input_dim = 2048, n_embed = 1280;
  // How the checkpoint was trained to be used, from the optional "dsocr_demo" object that
  // dsocr's own demo checkpoints carry ({"mode": "tiny", "prompt": "<image>\nFree OCR."}): the
  // view mode and the prompt to use when the command line names none. Empty when absent (the
  // official checkpoints: gundam and the markdown task).
  std::string default_mode, default_prompt;
};

// Parses config.json text / a file. Throws Error naming the key for a malformed value and
// NotImplemented for a model this build does not run (MLA attention, another router, another
// projector type).
ModelConfig parse_config(const std::string& json_text, const std::string& origin = "config.json");
ModelConfig load_config(const std::string& path);

}  // namespace dsocr
