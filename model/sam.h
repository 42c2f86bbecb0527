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
  Tensor rel_h, rel_w;                        // [L, hd] as loaded (L = table_len)
  int64_t table_len = 0;
  std::map<int64_t, std::pair<Tensor, Tensor>> tables;  // key grid kh*100000+kw -> tables [2kh-1, hd], [2kw-1, hd]
};

// Loads blocks.N (names relative to `w`: norm1.weight, attn.qkv.weight, attn.rel_pos_h, ...).
SamBlock load_sam_block(Runtime& rt, const WeightSource& w, const SamConfig& cfg, bool global);

// x [B,H,W,C] updated in place: x += attn(norm1(x)); x += mlp(norm2(x)).
// Window blocks partition into cfg.window_size windows (zero padding, unmasked); global blocks
// attend over the whole H x W grid, with the tables resized (linear) when 2H-1 differs.
void sam_block_forward(Runtime& rt, const SamConfig& cfg, SamBlock& blk, Tensor& x);

// A [L, D] fp32 table resized along L to len rows: torch F.interpolate(mode="linear",
// align_corners=False) in fp32 as ATen computes it (ops::resize_linear), on the device. Returns tab
// itself when len == L.
Tensor resize_rel_pos_table(Runtime& rt, const Tensor& tab, int64_t len);

}  // namespace dsocr
