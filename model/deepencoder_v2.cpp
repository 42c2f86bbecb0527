// DeepSeek-OCR-2's vision path (model-spec §0, §1.3, §3; reference/dsocr_ref/ocr2.py): per view
// SAM (net_3 to the encoder width) -> [B,N,D] row-major -> Qwen2 encoder -> projector; the image
// embeddings are tile 0, tile 1, ... (row-major over the grid), the global view, view_seperator.
#include <fmt/format.h>

#include "model/deepencoder.h"
#include "runtime/ops/layout.h"
#include "runtime/ops/linear.h"

namespace dsocr {

DeepEncoder load_deepencoder_v2(Runtime& rt, const WeightSource& w, const ModelConfig& cfg) {
  if (cfg.sam.downsample_channels[1] != cfg.qwen2.hidden || cfg.projector_input_dim != cfg.qwen2.hidden)
    throw Error(
        fmt::format("DeepSeek-OCR-2: SAM net_3 channels {} and projector input {} must equal the encoder "
                    "width {}",
                    cfg.sam.downsample_channels[1], cfg.projector_input_dim, cfg.qwen2.hidden));
  DeepEncoder e;
  e.cfg = cfg;
  e.sam = load_sam(rt, SubWeights(w, "sam_model."), cfg.sam);
  e.qwen2 = load_qwen2_encoder(rt, SubWeights(w, "qwen2_model."), cfg.qwen2);
  e.proj_w = w.load_matrix(rt, "projector.layers.weight", {cfg.n_embed, cfg.projector_input_dim});
  e.proj_b = w.load(rt, "projector.layers.bias", {cfg.n_embed});
  e.separator = w.load(rt, "view_seperator", {cfg.n_embed});
  return e;
}

Tensor encode_views_v2(Runtime& rt, DeepEncoder& e, const Tensor& pixels, Taps* taps, const std::string& prefix) {
  Taps sam_taps, enc_taps;
  Tensor sam = sam_forward(rt, e.sam, pixels, taps ? &sam_taps : nullptr);  // [B, D, h, w]
  const int64_t B = sam.dim(0), D = sam.dim(1), h = sam.dim(2), wd = sam.dim(3);
  Tensor flat = rt.empty({B, h, wd, D}, DType::f32, "sam tokens (v2)");  // row-major tokens [B, N, D]
  ops::nchw_to_nhwc(rt, sam, flat);
  Tensor enc = qwen2_encoder_forward(rt, e.qwen2, reshaped(flat, {B, h * wd, D}), taps ? &enc_taps : nullptr);
  Tensor proj = rt.empty({B, h * wd, e.cfg.n_embed}, DType::f32, "projected");
  linear(rt, enc, e.proj_w, &e.proj_b, proj);
  if (taps) {
    for (auto& [k, v] : sam_taps) (*taps)[prefix + "sam." + k] = v;
    for (auto& [k, v] : enc_taps)
      if (k != "norm") (*taps)[prefix + "qwen2." + k] = v;
    (*taps)[prefix + "sam"] = sam;
    (*taps)[prefix + "qwen2"] = enc;
    (*taps)[prefix + "projected"] = proj;
  }
  return proj;
}

Tensor assemble_views_v2(Runtime& rt, DeepEncoder& e, const Tensor* loc, int64_t tile0, int cols, int rows,
                         const Tensor& glo, int64_t glob0) {
  const int64_t C = e.cfg.n_embed;
  const int64_t per_tile = loc ? loc->dim(1) : 0, n_loc = loc ? int64_t{cols} * rows * per_tile : 0;
  const int64_t n_glo = glo.dim(1);
  Tensor out = rt.empty({n_loc + n_glo + 1, C}, DType::f32, "image embeddings");
  const size_t row = static_cast<size_t>(C) * sizeof(float);
  if (loc) rt.copy(*loc, out, n_loc * row, tile0 * per_tile * row, 0);
  rt.copy(glo, out, n_glo * row, glob0 * n_glo * row, n_loc * row);
  rt.copy(e.separator, out, row, 0, (n_loc + n_glo) * row);
  return out;
}

}  // namespace dsocr
