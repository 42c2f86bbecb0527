#include "model/clip.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/ops/activation.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/layout.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/resize.h"
#include "runtime/ops/sdpa.h"

namespace dsocr {
Clip load_clip(Runtime& rt, const WeightSource& w, const ClipConfig& cfg) {
  Clip c;
  c.cfg = cfg;
  const int64_t C = cfg.width, M = cfg.mlp_dim(), g = cfg.grid();
  c.cls = w.load(rt, "embeddings.class_embedding", {C});
  c.pos = w.load(rt, "embeddings.position_embedding.weight", {g * g + 1, C});
  c.pre_w = w.load(rt, "pre_layrnorm.weight", {C});
  c.pre_b = w.load(rt, "pre_layrnorm.bias", {C});
  for (int64_t i = 0; i < cfg.layers; ++i) {
    SubWeights lw(w, fmt::format("transformer.layers.{}.", i));
    ClipLayer l;
    l.ln1_w = lw.load(rt, "layer_norm1.weight", {C});
    l.ln1_b = lw.load(rt, "layer_norm1.bias", {C});
    l.ln2_w = lw.load(rt, "layer_norm2.weight", {C});
    l.ln2_b = lw.load(rt, "layer_norm2.bias", {C});
    l.qkv_w = lw.load_matrix(rt, "self_attn.qkv_proj.weight", {3 * C, C});
    l.qkv_b = lw.load(rt, "self_attn.qkv_proj.bias", {3 * C});
    l.out_w = lw.load_matrix(rt, "self_attn.out_proj.weight", {C, C});
    l.out_b = lw.load(rt, "self_attn.out_proj.bias", {C});
    l.fc1_w = lw.load_matrix(rt, "mlp.fc1.weight", {M, C});
    l.fc1_b = lw.load(rt, "mlp.fc1.bias", {M});
    l.fc2_w = lw.load_matrix(rt, "mlp.fc2.weight", {C, M});
    l.fc2_b = lw.load(rt, "mlp.fc2.bias", {C});
    c.layers.push_back(std::move(l));
  }
  return c;
}

const Tensor& clip_positions(Runtime& rt, Clip& clip, int64_t h, int64_t w) {
  const int64_t g = clip.cfg.grid(), C = clip.cfg.width;
  if (h == g && w == g) return clip.pos;
  int64_t key = h * 10000 + w;
  if (auto it = clip.pos_cache.find(key); it != clip.pos_cache.end()) return it->second;
  // All on the device (the copies and layout changes are exact, the resize is the only arithmetic):
  // the grid rows of pos [1+g*g, C] as NHWC [1,g,g,C] -> NCHW [1,C,g,g] -> resized [1,C,h,w] ->
  // NHWC [1,h,w,C], written behind the CLS row of [1+h*w, C].
  const size_t row = static_cast<size_t>(C) * sizeof(float);
  Tensor grid = rt.empty({1, g, g, C}, DType::f32, "clip position grid");
  rt.copy(clip.pos, grid, static_cast<size_t>(g * g) * row, row, 0);
  Tensor nchw = rt.empty({1, C, g, g}, DType::f32, "clip position table");
  ops::nhwc_to_nchw(rt, grid, nchw);
  Tensor resized = rt.empty({1, C, h, w}, DType::f32, "clip position grid resized");
  ops::resize_bicubic_aa(rt, nchw, resized);
  Tensor nhwc = rt.empty({1, h, w, C}, DType::f32, "clip position grid resized nhwc");
  ops::nchw_to_nhwc(rt, resized, nhwc);
  Tensor out = rt.empty({h * w + 1, C}, DType::f32, "clip resized positions");
  rt.copy(clip.pos, out, row);
  rt.copy(nhwc, out, static_cast<size_t>(h * w) * row, 0, row);
  return clip.pos_cache.emplace(key, out).first->second;
}

void clip_layer_forward(Runtime& rt, const ClipConfig& cfg, const ClipLayer& l, Tensor& x) {
  const int64_t B = x.dim(0), T = x.dim(1), C = cfg.width, H = cfg.heads, hd = C / H, M = cfg.mlp_dim();
  const float eps = static_cast<float>(cfg.ln_eps);
  Tensor xn = rt.empty(x.shape, DType::f32, "clip ln");
  ops::layer_norm(rt, x, l.ln1_w, l.ln1_b, xn, eps);
  Tensor qkv = rt.empty({B, T, 3 * C}, DType::f32, "clip qkv");
  linear(rt, xn, l.qkv_w, &l.qkv_b, qkv);
  Tensor qkv5 = reshaped(qkv, {B, T, 3, H, hd});
  Tensor att = rt.empty({B, T, H, hd}, DType::f32, "clip attention");
  ops::SdpaParams p;
  p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ops::sdpa(rt, ops::AttnView::fused(qkv5, 0), ops::AttnView::fused(qkv5, 1), ops::AttnView::fused(qkv5, 2),
            ops::AttnView::bnhd(att), p);
  Tensor o = rt.empty(x.shape, DType::f32, "clip out_proj");
  linear(rt, reshaped(att, {B, T, C}), l.out_w, &l.out_b, o);
  ops::add(rt, x, o, x);
  ops::layer_norm(rt, x, l.ln2_w, l.ln2_b, xn, eps);
  Tensor h = rt.empty({B, T, M}, DType::f32, "clip mlp hidden");
  linear(rt, xn, l.fc1_w, &l.fc1_b, h);
  ops::activation(rt, ops::Act::quick_gelu, h, h);
  linear(rt, h, l.fc2_w, &l.fc2_b, o);
  ops::add(rt, x, o, x);
}

Tensor clip_forward(Runtime& rt, Clip& clip, const Tensor& sam, std::map<std::string, Tensor>* taps) {
  if (sam.rank() != 4 || sam.dim(1) != clip.cfg.width)
    throw Error(fmt::format("clip: SAM features must be [B,{},h,w], got {}", clip.cfg.width, shape_str(sam.shape)));
  const int64_t B = sam.dim(0), C = clip.cfg.width, h = sam.dim(2), w = sam.dim(3), T = h * w + 1;
  const Tensor& pos = clip_positions(rt, clip, h, w);
  Tensor x = rt.empty({B, T, C}, DType::f32, "clip tokens");
  auto& k = rt.kernel("clip_embed.cl", "clip_embed_f32");
  rt.launch(k, cl::NDRange(round_up(C, 64), T, B), cl::NDRange(64, 1, 1), sam, clip.cls, pos, x, static_cast<cl_int>(C),
            static_cast<cl_int>(h * w));
  auto tap = [&](const std::string& name) {
    if (!taps) return;
    (*taps)[name] = rt.clone(x, "tap " + name);
  };
  tap("embeddings");
  ops::layer_norm(rt, x, clip.pre_w, clip.pre_b, x, static_cast<float>(clip.cfg.ln_eps));
  tap("pre_layrnorm");
  for (size_t i = 0; i < clip.layers.size(); ++i) {
    clip_layer_forward(rt, clip.cfg, clip.layers[i], x);
    tap(fmt::format("layers.{}", i));
  }
  return x;
}

}  // namespace dsocr
