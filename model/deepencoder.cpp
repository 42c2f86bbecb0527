#include "model/deepencoder.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/ops/conv2d.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/layout.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/resize.h"

namespace dsocr {
namespace {
int64_t isqrt_exact(int64_t n, const char* what) {
  int64_t s = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (s * s != n) throw Error(fmt::format("{}: {} tokens do not form a square grid", what, n));
  return s;
}
}  // namespace

SamEncoder load_sam(Runtime& rt, const WeightSource& w, const SamConfig& cfg) {
  SamEncoder s;
  s.cfg = cfg;
  const int64_t C = cfg.width, P = cfg.patch_size, g = cfg.grid(), out = cfg.out_chans;
  const int64_t d1 = cfg.downsample_channels[0], d2 = cfg.downsample_channels[1];
  s.patch_w = w.load(rt, "patch_embed.proj.weight", {C, 3, P, P});
  s.patch_b = w.load(rt, "patch_embed.proj.bias", {C});
  s.pos = w.load(rt, "pos_embed", {1, g, g, C});
  for (int64_t i = 0; i < cfg.layers; ++i)
    s.blocks.push_back(load_sam_block(rt, SubWeights(w, fmt::format("blocks.{}.", i)), cfg, cfg.is_global(i)));
  s.neck0_w = w.load(rt, "neck.0.weight", {out, C, 1, 1});
  s.neck1_w = w.load(rt, "neck.1.weight", {out});
  s.neck1_b = w.load(rt, "neck.1.bias", {out});
  s.neck2_w = w.load(rt, "neck.2.weight", {out, out, 3, 3});
  s.neck3_w = w.load(rt, "neck.3.weight", {out});
  s.neck3_b = w.load(rt, "neck.3.bias", {out});
  s.net2_w = w.load(rt, "net_2.weight", {d1, out, 3, 3});
  s.net3_w = w.load(rt, "net_3.weight", {d2, d1, 3, 3});
  return s;
}

static const Tensor& sam_positions(Runtime& rt, SamEncoder& s, int64_t g) {
  const int64_t g0 = s.cfg.grid(), C = s.cfg.width;
  if (g == g0) return s.pos;
  if (auto it = s.pos_cache.find(g); it != s.pos_cache.end()) return it->second;
  // [1,g0,g0,C] -> NCHW -> bicubic-antialias resize (fp32) -> NHWC [1,g,g,C]
  Tensor nchw = rt.empty({1, C, g0, g0}, DType::f32, "sam pos nchw");
  ops::nhwc_to_nchw(rt, s.pos, nchw);
  Tensor r = rt.empty({1, C, g, g}, DType::f32, "sam pos resized");
  ops::resize_bicubic_aa(rt, nchw, r);
  Tensor out = rt.empty({1, g, g, C}, DType::f32, "sam pos");
  ops::nchw_to_nhwc(rt, r, out);
  return s.pos_cache.emplace(g, out).first->second;
}

Tensor sam_forward(Runtime& rt, SamEncoder& s, const Tensor& pixels, Taps* taps) {
  const SamConfig& cfg = s.cfg;
  if (pixels.rank() != 4 || pixels.dim(1) != 3 || pixels.dim(2) != pixels.dim(3) || pixels.dim(2) % 64 != 0)
    throw Error(fmt::format("sam: pixels must be [B,3,S,S] with S a multiple of 64, got {}", shape_str(pixels.shape)));
  const int64_t B = pixels.dim(0), S = pixels.dim(2), P = cfg.patch_size, g = S / P, C = cfg.width;
  auto tap = [&](const std::string& name, const Tensor& t) {
    if (taps) (*taps)[name] = rt.clone(t, "tap " + name);
  };
  Tensor pe = rt.empty({B, C, g, g}, DType::f32, "sam patch embed");
  ops::conv2d(rt, pixels, s.patch_w, &s.patch_b, pe, static_cast<int>(P), 0);
  Tensor x = rt.empty({B, g, g, C}, DType::f32, "sam tokens");
  ops::nchw_to_nhwc(rt, pe, x);
  tap("patch_embed", x);
  ops::add_broadcast(rt, x, sam_positions(rt, s, g), x);
  tap("pos_added", x);
  for (size_t i = 0; i < s.blocks.size(); ++i) {
    sam_block_forward(rt, cfg, s.blocks[i], x);
    tap(fmt::format("blocks.{}", i), x);
  }
  const int64_t out = cfg.out_chans, d1 = cfg.downsample_channels[0], d2 = cfg.downsample_channels[1];
  const float eps = static_cast<float>(cfg.ln_eps);
  Tensor xc = rt.empty({B, C, g, g}, DType::f32, "sam nchw");
  ops::nhwc_to_nchw(rt, x, xc);
  Tensor n0 = rt.empty({B, out, g, g}, DType::f32, "sam neck0");
  ops::conv2d(rt, xc, s.neck0_w, nullptr, n0, 1, 0);
  ops::layer_norm_2d(rt, n0, s.neck1_w, s.neck1_b, n0, eps);
  Tensor n2 = rt.empty({B, out, g, g}, DType::f32, "sam neck2");
  ops::conv2d(rt, n0, s.neck2_w, nullptr, n2, 1, 1);
  ops::layer_norm_2d(rt, n2, s.neck3_w, s.neck3_b, n2, eps);
  tap("neck", n2);
  Tensor y2 = rt.empty({B, d1, g / 2, g / 2}, DType::f32, "sam net_2");
  ops::conv2d(rt, n2, s.net2_w, nullptr, y2, 2, 1);
  tap("net_2", y2);
  Tensor y3 = rt.empty({B, d2, g / 4, g / 4}, DType::f32, "sam net_3");
  ops::conv2d(rt, y2, s.net3_w, nullptr, y3, 2, 1);
  return y3;
}

DeepEncoder load_deepencoder(Runtime& rt, const WeightSource& w, const ModelConfig& cfg) {
  if (cfg.is_v2()) return load_deepencoder_v2(rt, w, cfg);
  DeepEncoder e;
  e.cfg = cfg;
  e.sam = load_sam(rt, SubWeights(w, "sam_model."), cfg.sam);
  e.clip = load_clip(rt, SubWeights(w, "vision_model."), cfg.clip);
  e.proj_w = w.load_matrix(rt, "projector.layers.weight", {cfg.n_embed, cfg.projector_input_dim});
  e.proj_b = w.load(rt, "projector.layers.bias", {cfg.n_embed});
  e.newline = w.load(rt, "image_newline", {cfg.n_embed});
  e.separator = w.load(rt, "view_seperator", {cfg.n_embed});
  return e;
}

Tensor encode_views(Runtime& rt, DeepEncoder& e, const Tensor& pixels, Taps* taps, const std::string& prefix) {
  if (e.cfg.is_v2()) return encode_views_v2(rt, e, pixels, taps, prefix);
  Taps sam_taps, clip_taps;
  Tensor sam = sam_forward(rt, e.sam, pixels, taps ? &sam_taps : nullptr);
  Tensor clip = clip_forward(rt, e.clip, sam, taps ? &clip_taps : nullptr);
  const int64_t n = sam.dim(0), Cs = sam.dim(1), hw = sam.dim(2) * sam.dim(3), Cc = e.cfg.clip.width;
  Tensor feat = rt.empty({n, hw, Cc + Cs}, DType::f32, "concat features");
  auto& k = rt.kernel("deepencoder.cl", "concat_features_f32");
  rt.launch(k, cl::NDRange(round_up(Cc + Cs, 64), hw, n), cl::NDRange(64, 1, 1), clip, sam, feat,
            static_cast<cl_int>(Cc), static_cast<cl_int>(Cs), static_cast<cl_int>(hw));
  Tensor proj = rt.empty({n, hw, e.cfg.n_embed}, DType::f32, "projected");
  linear(rt, feat, e.proj_w, &e.proj_b, proj);
  if (taps) {
    for (auto& [k2, v] : sam_taps) (*taps)[prefix + "sam." + k2] = v;
    for (auto& [k2, v] : clip_taps) (*taps)[prefix + "clip." + k2] = v;
    (*taps)[prefix + "sam"] = sam;
    (*taps)[prefix + "clip"] = clip;
    (*taps)[prefix + "projected"] = proj;
  }
  return proj;
}

Tensor assemble_views(Runtime& rt, DeepEncoder& e, const Tensor* loc, int64_t tile0, int cols, int rows,
                      const Tensor& glo, int64_t glob0) {
  if (e.cfg.is_v2()) return assemble_views_v2(rt, e, loc, tile0, cols, rows, glo, glob0);
  const int64_t C = e.cfg.n_embed;
  const bool has_tiles = loc != nullptr;
  const int64_t q = has_tiles ? isqrt_exact(loc->dim(1), "tile features") : 0;
  if (!has_tiles) cols = rows = 0;
  const int64_t g = isqrt_exact(glo.dim(1), "global features");
  const int64_t total = (has_tiles ? q * rows * (q * cols + 1) : 0) + g * (g + 1) + 1;
  Tensor out = rt.empty({total, C}, DType::f32, "image embeddings");
  auto& k = rt.kernel("deepencoder.cl", "assemble_views_f32");
  rt.launch(k, cl::NDRange(round_up(C, 64), total), cl::NDRange(64, 1), has_tiles ? *loc : glo, glo, e.newline,
            e.separator, out, static_cast<cl_int>(C), static_cast<cl_int>(q), cols, rows, static_cast<cl_int>(g),
            static_cast<cl_int>(tile0), static_cast<cl_int>(glob0));
  return out;
}

Tensor vision_embeddings(Runtime& rt, DeepEncoder& e, const Tensor& global_view, const Tensor* tiles, int cols,
                         int rows, Taps* taps) {
  const bool has_tiles = tiles && tiles->defined() && tiles->numel() > 0 && tiles->dim(0) > 0;
  Tensor loc;
  if (has_tiles) {
    if (tiles->dim(0) != static_cast<int64_t>(cols) * rows)
      throw Error(fmt::format("vision: {} tiles for a {}x{} grid", tiles->dim(0), cols, rows));
    loc = encode_views(rt, e, *tiles, taps, "tiles.");
  }
  Tensor glo = encode_views(rt, e, global_view, taps, "global.");
  return assemble_views(rt, e, has_tiles ? &loc : nullptr, 0, cols, rows, glo, 0);
}

}  // namespace dsocr
