// model/config: the official config.json files (re-saved v1 spelling every key; v2), a released-
// style file with defaults omitted, a reduced test config, and malformed ones.
#include <cstdlib>

#include "harness/harness.h"
#include "model/config.h"

using namespace dsocr;

namespace {
std::string data_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(s ? s : ".") + "/tests/data/official";
}

void expect_error(const std::string& json, const std::string& needle) {
  try {
    parse_config(json, "test.json");
    ADD_FAILURE() << "no error for " << json;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "got: " << e.what();
  }
}
}  // namespace

TEST(config, official_v1_resave) {
  ModelConfig c = load_config(data_dir() + "/deepseek-ocr/config.json");
  EXPECT_EQ(c.model_type, "DeepseekOCR");
  EXPECT_EQ(c.lm.vocab_size, 129280);
  EXPECT_EQ(c.lm.hidden_size, 1280);
  EXPECT_EQ(c.lm.head_dim(), 128);
  EXPECT_EQ(c.lm.n_routed_experts, 64);
  EXPECT_EQ(c.lm.num_experts_per_tok, 6);
  EXPECT_EQ(c.lm.moe_intermediate_size, 896);
  EXPECT_EQ(c.lm.intermediate_size, 6848);
  EXPECT_FALSE(c.lm.is_moe_layer(0));
  EXPECT_TRUE(c.lm.is_moe_layer(11));
  EXPECT_DOUBLE_EQ(c.lm.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.lm.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.sam.global_blocks, (std::vector<int64_t>{2, 5, 8, 11}));
  EXPECT_EQ(c.sam.grid(), 64);
  EXPECT_EQ(c.clip.grid(), 16);
  EXPECT_EQ(c.projector_input_dim, 2048);
}

TEST(config, official_v2) {
  ModelConfig c = load_config(data_dir() + "/deepseek-ocr-2/config.json");
  EXPECT_TRUE(c.is_v2());
  EXPECT_EQ(c.model_type, "deepseek_vl_v2");
  EXPECT_EQ(c.lm.vocab_size, 129280);
  EXPECT_EQ(c.lm.hidden_size, 1280);
  EXPECT_EQ(c.lm.n_routed_experts, 64);
  EXPECT_EQ(c.sam.width, 768);
  EXPECT_EQ(c.sam.grid(), 64);
  // net_3 outputs the encoder width; the config's stale downsample_channels[1] (1024) is replaced
  EXPECT_EQ(c.sam.downsample_channels, (std::vector<int64_t>{512, 896}));
  EXPECT_EQ(c.qwen2.hidden, 896);  // qwen2-0-5b.dim; the rest are the official code's values
  EXPECT_EQ(c.qwen2.layers, 24);
  EXPECT_EQ(c.qwen2.heads, 14);
  EXPECT_EQ(c.qwen2.kv_heads, 2);
  EXPECT_EQ(c.qwen2.intermediate, 4864);
  EXPECT_EQ(c.qwen2.head_dim(), 64);
  EXPECT_EQ(c.qwen2.tile_queries, 144);
  EXPECT_EQ(c.qwen2.global_queries, 256);
  EXPECT_DOUBLE_EQ(c.qwen2.rope_theta, 1e6);
  EXPECT_EQ(c.projector_input_dim, 896);
  EXPECT_EQ(c.n_embed, 1280);
  EXPECT_FALSE(load_config(data_dir() + "/deepseek-ocr/config.json").is_v2());
}

// The reference's tiny_config_dict_v2 shape: the reduced encoder's extras under qwen2-0-5b, and
// each of the three detection rules on its own.
TEST(config, reduced_v2_encoder_and_detection) {
  ModelConfig c = parse_config(R"({"hidden_size":128,"num_attention_heads":2,"num_key_value_heads":2,
    "projector_config":{"input_dim":48,"n_embed":128},
    "vision_config":{"model_name":"deepencoderv2","width":{
      "qwen2-0-5b":{"dim":48,"layers":3,"heads":6,"kv_heads":2,"intermediate_size":96,"rope_theta":5e5,
                    "rms_norm_eps":1e-5},
      "sam_vit_b":{"downsample_channels":[32,64],"global_attn_indexes":[1,3],"heads":2,"layers":4,
                   "width":32,"out_chans":16}}}})");
  EXPECT_TRUE(c.is_v2());
  EXPECT_EQ(c.qwen2.hidden, 48);
  EXPECT_EQ(c.qwen2.layers, 3);
  EXPECT_EQ(c.qwen2.heads, 6);
  EXPECT_EQ(c.qwen2.kv_heads, 2);
  EXPECT_EQ(c.qwen2.intermediate, 96);
  EXPECT_DOUBLE_EQ(c.qwen2.rope_theta, 5e5);
  EXPECT_DOUBLE_EQ(c.qwen2.rms_eps, 1e-5);
  EXPECT_EQ(c.sam.downsample_channels, (std::vector<int64_t>{32, 48}));
  EXPECT_EQ(c.projector_input_dim, 48);

  EXPECT_TRUE(parse_config(R"({"architectures":["DeepseekOCR2ForCausalLM"],
    "projector_config":{"input_dim":896}})").is_v2());
  EXPECT_TRUE(parse_config(R"({"vision_config":{"model_name":"deepencoderv2"}})").is_v2());
  ModelConfig d = parse_config(R"({"vision_config":{"width":{"qwen2-0-5b":{"dim":64,"heads":4,"kv_heads":2}}}})");
  EXPECT_TRUE(d.is_v2());
  EXPECT_EQ(d.projector_input_dim, 64);  // absent input_dim: the encoder width
  EXPECT_FALSE(parse_config(R"({"architectures":["DeepseekOCRForCausalLM"]})").is_v2());
}

TEST(config, malformed_v2_values_are_named) {
  expect_error(R"({"vision_config":{"width":{"qwen2-0-5b":{"dim":896}}},"projector_config":{"input_dim":2048}})",
               "DeepSeek-OCR-2 projector input_dim 2048 must equal the encoder dim 896");
  expect_error(R"({"vision_config":{"width":{"qwen2-0-5b":{"dim":"wide"}}}})", "dim must be an integer");
  expect_error(R"({"vision_config":{"width":{"qwen2-0-5b":{"dim":900}}}})", "qwen2 encoder dim 900 must divide");
  expect_error(R"({"vision_config":{"width":{"qwen2-0-5b":{"heads":14,"kv_heads":4}}}})", "kv_heads 4");
  expect_error(R"({"vision_config":{"width":{"qwen2-0-5b":{"layers":0}}}})", "qwen2 layers must be in 1..");
}

TEST(config, released_layout_with_defaults_omitted) {
  ModelConfig c = parse_config(R"({"model_type":"deepseek_vl_v2","torch_dtype":"bfloat16",
    "language_config":{"hidden_size":1280,"num_hidden_layers":12,"vocab_size":129280,"use_mla":false},
    "projector_config":{"projector_type":"linear","input_dim":2048,"n_embed":1280}})");
  EXPECT_EQ(c.model_type, "deepseek_vl_v2");
  EXPECT_DOUBLE_EQ(c.lm.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.lm.rope_theta, 1e4);
  EXPECT_FALSE(c.lm.norm_topk_prob);
  EXPECT_EQ(c.lm.n_shared_experts, 2);
}

TEST(config, reduced_encoders_through_vision_config) {
  ModelConfig c = parse_config(R"({"hidden_size":256,"num_attention_heads":2,"num_key_value_heads":2,
    "n_routed_experts":8,"num_experts_per_tok":3,"vocab_size":300,
    "projector_config":{"input_dim":128,"n_embed":256},
    "vision_config":{"width":{"clip-l-14-224":{"heads":2,"layers":2,"width":64},
                              "sam_vit_b":{"downsample_channels":[48,64],"global_attn_indexes":[1,3],
                                           "heads":2,"layers":4,"width":64,"out_chans":32}}}})");
  EXPECT_EQ(c.sam.width, 64);
  EXPECT_EQ(c.sam.out_chans, 32);
  EXPECT_EQ(c.sam.downsample_channels[1], 64);
  EXPECT_TRUE(c.sam.is_global(3));
  EXPECT_FALSE(c.sam.is_global(2));
  EXPECT_EQ(c.clip.layers, 2);
  EXPECT_EQ(c.lm.head_dim(), 128);
}

TEST(config, malformed_values_are_named) {
  expect_error("[1,2]", "not a JSON object");
  expect_error(R"({"hidden_size":"big"})", "hidden_size must be an integer");
  expect_error(R"({"use_mla":true})", "use_mla true");
  expect_error(R"({"scoring_func":"sigmoid"})", "scoring_func 'sigmoid'");
  expect_error(R"({"num_attention_heads":0})", "num_attention_heads must be in 1..4096, got 0");
  expect_error(R"({"num_experts_per_tok":65})", "num_experts_per_tok 65 must be in 1..n_routed_experts 64");
  expect_error(R"({"projector_config":{"projector_type":"downsample_mlp_gelu"}})",
               "projector_type 'downsample_mlp_gelu'");
  expect_error(R"({"projector_config":{"input_dim":1000}})", "projector input_dim 1000 must equal");
  expect_error(R"({"vision_config":{"width":{"sam_vit_b":{"global_attn_indexes":[2,12]}}}})", "entry 12 outside 0..11");
}

// Values that would divide by zero, overflow or allocate without bound in the sizes derived from
// the config (found by fuzz/fuzz_config.cpp: clip patch_size 0 divided by zero in ClipConfig::grid).
TEST(config, sizes_that_break_derived_shapes_are_refused) {
  expect_error(R"({"vision_config":{"width":{"clip-l-14-224":{"patch_size":0}}}})", "clip patch_size must be in 1..");
  expect_error(R"({"vision_config":{"width":{"clip-l-14-224":{"patch_size":300}}}})",
               "clip patch_size 300 is larger than its image_size 224");
  expect_error(R"({"vision_config":{"width":{"sam_vit_b":{"mlp_ratio":1e300}}}})", "sam mlp_ratio must be in (0, 64]");
  expect_error(R"({"vision_config":{"width":{"sam_vit_b":{"window_size":-1}}}})", "sam window_size must be in 1..");
  expect_error(R"({"vocab_size":100000000000})", "vocab_size must be in 1..16777216");
  expect_error(R"({"eos_token_id":129280})", "eos_token_id must be in 0..129279");
  expect_error(R"({"rms_norm_eps":-1})", "rms_norm_eps must be in (0, 1]");
  expect_error(R"({"n_routed_experts":-3})", "n_routed_experts must be in 0..4096");
}
