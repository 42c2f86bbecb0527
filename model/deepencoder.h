// DeepEncoder of DeepSeek-OCR v1: SAM ViT-B -> CLIP-L -> [CLIP | SAM] -> linear projector, and
// the view assembly into the image-token sequence (model-spec §0, §1, §3, §5).
// DeepSeek-OCR-2 (cfg.is_v2(), model/deepencoder_v2.cpp): SAM with net_3 to the encoder width ->
// flattened row-major [B,N,D] -> Qwen2 encoder (model/qwen2_encoder.h) -> linear projector D ->
// n_embed; the views laid out as tiles, then the global view, then view_seperator (no newlines).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/clip.h"
#include "model/config.h"
#include "model/qwen2_encoder.h"
#include "model/sam.h"
#include "model/weights.h"

namespace dsocr {

struct Views;  // model/preprocess.h

using Taps = std::map<std::string, Tensor>;

struct SamEncoder {
  SamConfig cfg;
  Tensor patch_w, patch_b;  // [C,3,16,16], [C]
  Tensor pos;               // [1, g0, g0, C]
  std::vector<SamBlock> blocks;
  Tensor neck0_w, neck1_w, neck1_b, neck2_w, neck3_w, neck3_b;  // [out,C,1,1], [out], [out], [out,out,3,3], ...
  Tensor net2_w, net3_w;                                        // [d1,out,3,3], [d2,d1,3,3]
  std::map<int64_t, Tensor> pos_cache;                          // grid -> [1,g,g,C]
};

// Names relative to sam_model. (patch_embed.proj.weight, blocks.N..., neck.0.weight, net_2.weight).
SamEncoder load_sam(Runtime& rt, const WeightSource& w, const SamConfig& cfg);
// pixels [B,3,S,S] normalised -> [B, d2, S/64, S/64]; taps: patch_embed, pos_added, blocks.N, neck, net_2.
Tensor sam_forward(Runtime& rt, SamEncoder& sam, const Tensor& pixels, Taps* taps = nullptr);

struct DeepEncoder {
  ModelConfig cfg;
  SamEncoder sam;
  Clip clip;                  // v1
  Qwen2Encoder qwen2;         // v2
  Tensor proj_w, proj_b;      // [n_embed, 2048 (v1) or the encoder width (v2)], [n_embed]
  Tensor newline, separator;  // [n_embed]; newline v1 only
};

// Names relative to the checkpoint's "model." (sam_model., vision_model., projector.layers.,
// image_newline, view_seperator; v2: sam_model., qwen2_model., projector.layers., view_seperator).
DeepEncoder load_deepencoder(Runtime& rt, const WeightSource& w, const ModelConfig& cfg);

// One batch of views [n,3,S,S] -> projected features [n, (S/64)^2, n_embed].
Tensor encode_views(Runtime& rt, DeepEncoder& enc, const Tensor& pixels, Taps* taps = nullptr,
                    const std::string& prefix = {});

// The image embeddings in sequence order: tiles mosaic (image_newline per row), global rows with
// newline, view_seperator (v2: every tile's rows one tile after another, the global rows,
// view_seperator: 144 n + 256 + 1 rows at the official sizes). global_view [1,3,G,G]; tiles [n,3,T,T] (n = cols*rows,
// or 0). Returns [n_image_tokens, n_embed].
Tensor vision_embeddings(Runtime& rt, DeepEncoder& enc, const Tensor& global_view, const Tensor* tiles, int cols,
                         int rows, Taps* taps = nullptr);

// Several pages at once (dsocr ocr's and serve's batches): the global views of all pages of one
// size in one encode_views pass, the tiles of all pages of one tile size in another, then each
// page's sequence as vision_embeddings assembles it. result[i] is page i's [n_image_tokens,
// n_embed]; every kernel computes a view's rows from that view alone, so these are the rows
// vision_embeddings gives the page alone (tests/model/test_vision_batch.cpp).
std::vector<Tensor> vision_embeddings_batch(Runtime& rt, DeepEncoder& enc, const std::vector<const Views*>& pages);

// One page's image embeddings from encoded views: its tiles are rows tile0 .. tile0 + cols*rows - 1
// of loc [n, Nt, n_embed] (nullptr: no tiles), its global view row glob0 of glo [m, Ng, n_embed].
Tensor assemble_views(Runtime& rt, DeepEncoder& enc, const Tensor* loc, int64_t tile0, int cols, int rows,
                      const Tensor& glo, int64_t glob0);

// The v2 halves of load_deepencoder, encode_views and assemble_views (they dispatch on cfg.is_v2()).
DeepEncoder load_deepencoder_v2(Runtime& rt, const WeightSource& w, const ModelConfig& cfg);
Tensor encode_views_v2(Runtime& rt, DeepEncoder& enc, const Tensor& pixels, Taps* taps, const std::string& prefix);
Tensor assemble_views_v2(Runtime& rt, DeepEncoder& enc, const Tensor* loc, int64_t tile0, int cols, int rows,
                         const Tensor& glo, int64_t glob0);

}  // namespace dsocr
