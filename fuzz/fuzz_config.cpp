// Fuzz target: config.json text through parse_config, then every derived size the model code
// computes from it (grids, head sizes, MLP widths, MoE layer pattern): an accepted config must not
// divide by zero or overflow in any of them.
#include <string>

#include "fuzz/fuzz_util.h"
#include "model/config.h"

using namespace dsocr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  DSOCR_FUZZ_EXPECT_ERRORS({
    ModelConfig c = parse_config(text, "fuzz/config.json");
    volatile int64_t sink = 0;
    sink = sink + c.lm.head_dim() + c.sam.grid() + c.sam.mlp_dim() + c.clip.grid() + c.clip.mlp_dim();
    sink = sink + c.sam.width / c.sam.heads + c.clip.width / c.clip.heads;
    for (int64_t i = 0; i < c.lm.num_hidden_layers && i < 64; ++i) sink = sink + c.lm.is_moe_layer(i);
    for (int64_t b = 0; b < c.sam.layers && b < 64; ++b) sink = sink + c.sam.is_global(b);
  });
  return 0;
}
