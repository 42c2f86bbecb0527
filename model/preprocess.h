// DeepSeek-OCR image views, bit-exact with the official Pillow preprocessing (model-spec §3):
// Pillow's BICUBIC resample (a = -0.5 convolution, support widened when downscaling, 8-bit fixed
// point with 22 fraction bits, horizontal pass then vertical), ImageOps.pad with grey 127 and
// Python's round-half-even, the Gundam grid search with the fixed candidate order and tie rule,
// then ToTensor + Normalize(0.5, 0.5).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "model/image.h"

namespace dsocr {

struct ModeSpec {
  std::string name;
  int base = 1024, image = 1024;
  bool crop = false;
  int version = 1;    // the model the mode belongs to: 1 DeepSeek-OCR, 2 DeepSeek-OCR-2
  int max_tiles = 0;  // an upper bound on the caller's max_tiles (0: none)
};
// DeepSeek-OCR: tiny | small | base | large | gundam. DeepSeek-OCR-2 has one mode, ocr2: the
// global view padded to 1024 plus 768 tiles from the gundam grid search with at most 6 tiles
// (none when W and H are both <= 768, else 2..6), no newlines. Throws Error for another name.
ModeSpec mode_spec(const std::string& mode);
// The name of the mode of a model version when none is asked for: gundam (v1), ocr2 (v2).
std::string default_mode(int version);

// PIL Image.resize(size, BICUBIC) of an RGB image.
RgbImage pil_resize_bicubic(const RgbImage& im, int out_w, int out_h);
// PIL ImageOps.pad(im, (S, S), color=(127,127,127)).
RgbImage pil_pad(const RgbImage& im, int S);
// The official find_closest_aspect_ratio over the candidate grids (cols, rows) for max_num tiles.
std::pair<int, int> choose_grid(int width, int height, int tile, int max_num);
std::vector<std::pair<int, int>> grid_candidates(int max_num);

struct Views {
  int global_size = 0, tile_size = 0;
  std::vector<float> global_view;  // [1,3,G,G] normalised
  std::vector<float> tiles;        // [n,3,T,T] normalised (n may be 0)
  int n_tiles = 0, cols = 1, rows = 1;
};

// The tile grid (cols, rows) of a crop mode for a width x height image: (1, 1) means no tiles
// (W and H both within the tile size). max_tiles is cut to the mode's own bound (ocr2: 6).
std::pair<int, int> view_grid(const ModeSpec& m, int width, int height, int max_tiles);

// image: RGB, already EXIF-transposed. max_tiles: 9 as the HF code (vLLM uses 6); ocr2 uses at
// most 6 whatever is asked.
Views make_views(const RgbImage& image, const std::string& mode, int max_tiles = 9);

// Number of <image> placeholders for these views (model-spec §3). v1 crop: 16*17 + 1 plus
// 10 rows x (10 cols + 1) per tile row; v1 plain: q(q+1) + 1; ocr2: 256 + 1 + 144 per tile.
int image_token_count(const std::string& mode, int cols, int rows, int n_tiles);

}  // namespace dsocr
