#include "model/sam.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/ops/activation.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/layout.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rel_pos.h"
#include "runtime/ops/resize.h"
#include "runtime/ops/sdpa.h"
#include "runtime/ops/window.h"

namespace dsocr {

Tensor resize_rel_pos_table(Runtime& rt, const Tensor& tab, int64_t len) {
  const int64_t L = tab.dim(0), D = tab.dim(1);
  if (len == L) return tab;
  // [L,D] (as NHWC [1,L,1,D]) -> [D,L] (NCHW [1,D,L,1]) -> linear along L -> [D,len] -> [len,D]
  Tensor cols = rt.empty({1, D, L}, DType::f32, "sam rel-pos table columns");
  Tensor cols4 = reshaped(cols, {1, D, L, 1});
  ops::nhwc_to_nchw(rt, reshaped(tab, {1, L, 1, D}), cols4);
  Tensor resized = rt.empty({1, D, len}, DType::f32, "sam rel-pos table columns resized");
  ops::resize_linear(rt, cols, resized);
  Tensor out = rt.empty({len, D}, DType::f32, "sam rel-pos table");
  Tensor out4 = reshaped(out, {1, len, 1, D});
  ops::nchw_to_nhwc(rt, reshaped(resized, {1, D, len, 1}), out4);
  return out;
}

SamBlock load_sam_block(Runtime& rt, const WeightSource& w, const SamConfig& cfg, bool global) {
  int64_t C = cfg.width, M = cfg.mlp_dim(), hd = cfg.width / cfg.heads;
  SamBlock b;
  b.global = global;
  b.table_len = global ? 2 * cfg.grid() - 1 : 2 * cfg.window_size - 1;
  b.norm1_w = w.load(rt, "norm1.weight", {C});
  b.norm1_b = w.load(rt, "norm1.bias", {C});
  b.norm2_w = w.load(rt, "norm2.weight", {C});
  b.norm2_b = w.load(rt, "norm2.bias", {C});
  b.qkv_w = w.load_matrix(rt, "attn.qkv.weight", {3 * C, C});
  b.qkv_b = w.load(rt, "attn.qkv.bias", {3 * C});
  b.proj_w = w.load_matrix(rt, "attn.proj.weight", {C, C});
  b.proj_b = w.load(rt, "attn.proj.bias", {C});
  b.lin1_w = w.load_matrix(rt, "mlp.lin1.weight", {M, C});
  b.lin1_b = w.load(rt, "mlp.lin1.bias", {M});
  b.lin2_w = w.load_matrix(rt, "mlp.lin2.weight", {C, M});
  b.lin2_b = w.load(rt, "mlp.lin2.bias", {C});
  b.rel_h = w.load(rt, "attn.rel_pos_h", {b.table_len, hd});
  b.rel_w = w.load(rt, "attn.rel_pos_w", {b.table_len, hd});
  return b;
}

void sam_block_forward(Runtime& rt, const SamConfig& cfg, SamBlock& blk, Tensor& x) {
  if (x.rank() != 4 || x.dim(3) != cfg.width)
    throw Error(fmt::format("sam_block: x must be [B,H,W,{}], got {}", cfg.width, shape_str(x.shape)));
  const int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = cfg.width, heads = cfg.heads, hd = C / heads;
  const int ws = blk.global ? 0 : static_cast<int>(cfg.window_size);
  const float eps = static_cast<float>(cfg.ln_eps);

  Tensor xn = rt.empty(x.shape, DType::f32, "sam norm1");
  ops::layer_norm(rt, x, blk.norm1_w, blk.norm1_b, xn, eps);

  // Attention input: all windows of all images as one batch [NB, kh, kw, C].
  int64_t NB = B, kh = H, kw = W;
  Tensor win = xn;
  if (ws > 0) {
    int64_t nh = ceil_div(H, ws), nw = ceil_div(W, ws);
    NB = B * nh * nw;
    kh = kw = ws;
    win = rt.empty({NB, ws, ws, C}, DType::f32, "sam windows");
    ops::window_partition(rt, xn, ws, win);
  }
  const int64_t T = kh * kw;
  Tensor qkv = rt.empty({NB, T, 3 * C}, DType::f32, "sam qkv");
  linear(rt, reshaped(win, {NB, T, C}), blk.qkv_w, &blk.qkv_b, qkv);
  Tensor qkv5 = reshaped(qkv, {NB, T, 3, heads, hd});

  // Relative-position tables at this key size (resized on the device once per size, then kept).
  int64_t key = kh * 100000 + kw;
  auto it = blk.tables.find(key);
  if (it == blk.tables.end())
    it = blk.tables
             .emplace(key, std::make_pair(resize_rel_pos_table(rt, blk.rel_h, 2 * kh - 1),
                                          resize_rel_pos_table(rt, blk.rel_w, 2 * kw - 1)))
             .first;

  ops::AttnView q = ops::AttnView::fused(qkv5, 0), k = ops::AttnView::fused(qkv5, 1), v = ops::AttnView::fused(qkv5, 2);
  Tensor rel_h = rt.empty({NB, heads, T, kh}, DType::f32, "sam rel_h");
  Tensor rel_w = rt.empty({NB, heads, T, kw}, DType::f32, "sam rel_w");
  ops::rel_pos_terms(rt, q, it->second.first, it->second.second, static_cast<int>(kh), static_cast<int>(kw), rel_h,
                     rel_w);

  Tensor att = rt.empty({NB, T, heads, hd}, DType::f32, "sam attention");
  ops::SdpaParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  p.rel_pos = ops::RelPosBias{rel_h, rel_w};
  ops::sdpa(rt, q, k, v, ops::AttnView::bnhd(att), p);

  Tensor proj = rt.empty({NB, T, C}, DType::f32, "sam proj");
  linear(rt, reshaped(att, {NB, T, C}), blk.proj_w, &blk.proj_b, proj);
  if (ws > 0)
    ops::window_unpartition_add(rt, reshaped(proj, {NB, ws, ws, C}), ws, x);
  else
    ops::add(rt, x, proj, x);

  // MLP
  ops::layer_norm(rt, x, blk.norm2_w, blk.norm2_b, xn, eps);
  const int64_t M = cfg.mlp_dim();
  Tensor h = rt.empty({B, H, W, M}, DType::f32, "sam mlp hidden");
  linear(rt, xn, blk.lin1_w, &blk.lin1_b, h);
  ops::activation(rt, ops::Act::gelu, h, h);
  Tensor y = rt.empty(x.shape, DType::f32, "sam mlp out");
  linear(rt, h, blk.lin2_w, &blk.lin2_b, y);
  ops::add(rt, x, y, x);
}

}  // namespace dsocr
