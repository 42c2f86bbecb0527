// CLIP-L of DeepSeek-OCR, fed by SAM features instead of its own patch embedding
// (model-spec §1.2): CLS + resized position embeddings, pre-layernorm, layers with quick_gelu,
// no final norm. The output keeps CLS at token 0 (the caller drops it).
#pragma once
#include <map>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "runtime/runtime.h"

namespace dsocr {

struct ClipLayer {
  Tensor ln1_w, ln1_b, ln2_w, ln2_b;  // [C]
  Tensor qkv_w, qkv_b;                // [3C, C], [3C]   ([q|k|v], head-major within each)
  Tensor out_w, out_b;                // [C, C], [C]
  Tensor fc1_w, fc1_b, fc2_w, fc2_b;  // [M, C], [M], [C, M], [C]
};

struct Clip {
  ClipConfig cfg;
  Tensor cls;           // [C]
  Tensor pos;           // [g*g+1, C]
  Tensor pre_w, pre_b;  // [C]
  std::vector<ClipLayer> layers;
  std::map<int64_t, Tensor> pos_cache;  // grid h*10000+w -> [h*w+1, C] resized positions
};

// Loads the weights named relative to vision_model. (embeddings.class_embedding, ...).
Clip load_clip(Runtime& rt, const WeightSource& w, const ClipConfig& cfg);

// Position embeddings for an h x w grid: CLS row kept, the g x g grid resized with
// bicubic-antialias (fp32, on the device) when it differs. [h*w+1, C], made once per grid and
// kept in clip.pos_cache.
const Tensor& clip_positions(Runtime& rt, Clip& clip, int64_t h, int64_t w);

// sam [B,C,h,w] -> [B,h*w+1,C]; taps (optional) receive "embeddings", "pre_layrnorm", "layers.N".
Tensor clip_forward(Runtime& rt, Clip& clip, const Tensor& sam, std::map<std::string, Tensor>* taps = nullptr);

// One layer, in place: x [B,T,C] += attn(ln1(x)); x += mlp(ln2(x)).
void clip_layer_forward(Runtime& rt, const ClipConfig& cfg, const ClipLayer& l, Tensor& x);

}  // namespace dsocr
