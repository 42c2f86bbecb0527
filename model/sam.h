// SAM ViT-B image encoder of DeepSeek-OCR (model-spec §1.1, §5): blocks with windowed or global
// attention and SAM's decomposed relative-position bias.
#pragma once
#include <map>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "runtime/runtime.h"

namespace dsocr {

struct SamBlock {
  bool global = false;
  Tensor norm1_w, norm1_b, norm2_w, norm2_b;  // [C]
  Tensor qkv_w, qkv_b;                        // [3C, C], [3C]
  Tensor proj_w, proj_b;                      // [C, C], [C]
  Tensor lin1_w, lin1_b, lin2_w, lin2_b;      // [M, C], [M], [C, M], [C]
  std::vector<float> rel_h, rel_w;            // host copies of the tables [L, hd]
  int64_t table_len = 0;
  std::map<int64_t, std::pair<Tensor, Tensor>> tables;  // per key size k: tables resized to 2k-1
};

// Loads blocks.N (names relative to `w`: norm1.weight, attn.qkv.weight, attn.rel_pos_h, ...).
SamBlock load_sam_block(Runtime& rt, const WeightSource& w, const SamConfig& cfg, bool global);

// x [B,H,W,C] updated in place: x += attn(norm1(x)); x += mlp(norm2(x)).
// Window blocks partition into cfg.window_size windows (zero padding, unmasked); global blocks
// attend over the whole H x W grid, with the tables resized (linear) when 2H-1 differs.
void sam_block_forward(Runtime& rt, const SamConfig& cfg, SamBlock& blk, Tensor& x);

// torch F.interpolate(mode="linear", align_corners=False) of a [L, D] table along L to out_len
// rows, in fp32 as ATen computes it (host; tables are small).
std::vector<float> resize_table_linear(const std::vector<float>& tab, int64_t L, int64_t D, int64_t out_len);

}  // namespace dsocr
