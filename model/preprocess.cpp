#include "model/preprocess.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "runtime/error.h"

namespace dsocr {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {  // Pillow's filter, a = -0.5
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis (box = the whole input).
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // [out][2]: xmin, xcount
  std::vector<int> k;       // [out][ksize] fixed point
};

Coeffs precompute(int in_size, int out_size) {
  double scale = static_cast<double>(in_size) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(out_size * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> kk(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      double w = bicubic((x + xmin - center + 0.5) * ss);
      kk[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) kk[x] /= ww;
    for (int x = xmax; x < c.ksize; ++x) kk[x] = 0;
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
    for (int x = 0; x < c.ksize; ++x) {
      double v = kk[x] * (1 << kPrecisionBits);
      c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int>(v < 0 ? -0.5 + v : 0.5 + v);
    }
  }
  return c;
}

inline uint8_t clip8(int v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Python's round() of a double to an int (half to even).
int py_round(double v) { return static_cast<int>(std::nearbyint(v)); }

}  // namespace

ModeSpec mode_spec(const std::string& mode) {
  if (mode == "tiny") return {mode, 512, 512, false};
  if (mode == "small") return {mode, 640, 640, false};
  if (mode == "base") return {mode, 1024, 1024, false};
  if (mode == "large") return {mode, 1280, 1280, false};
  if (mode == "gundam") return {mode, 1024, 640, true};
  if (mode == "ocr2") return {mode, 1024, 768, true, 2, 6};
  throw Error(fmt::format(
      "unknown mode '{}' (expected tiny, small, base, large or gundam for DeepSeek-OCR, ocr2 for DeepSeek-OCR-2)",
      mode));
}

std::string default_mode(int version) { return version == 2 ? "ocr2" : "gundam"; }

RgbImage pil_resize_bicubic(const RgbImage& im, int out_w, int out_h) {
  if (out_w <= 0 || out_h <= 0) throw Error(fmt::format("resize to {}x{}", out_w, out_h));
  if (out_w == im.width && out_h == im.height) return im;
  RgbImage cur = im;
  if (out_w != cur.width) {  // horizontal pass
    Coeffs c = precompute(cur.width, out_w);
    RgbImage t;
    t.width = out_w;
    t.height = cur.height;
    t.rgb.resize(size_t(out_w) * cur.height * 3);
    for (int y = 0; y < cur.height; ++y)
      for (int xx = 0; xx < out_w; ++xx) {
        int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
        const int* k = &c.k[size_t(xx) * c.ksize];
        for (int ch = 0; ch < 3; ++ch) {
          int ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < xmax; ++x) ss += cur.at(x + xmin, y, ch) * k[x];
          t.rgb[(size_t(y) * out_w + xx) * 3 + ch] = clip8(ss);
        }
      }
    cur = std::move(t);
  }
  if (out_h != cur.height) {  // vertical pass
    Coeffs c = precompute(cur.height, out_h);
    RgbImage t;
    t.width = cur.width;
    t.height = out_h;
    t.rgb.resize(size_t(cur.width) * out_h * 3);
    for (int yy = 0; yy < out_h; ++yy) {
      int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
      const int* k = &c.k[size_t(yy) * c.ksize];
      for (int x = 0; x < cur.width; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          int ss = 1 << (kPrecisionBits - 1);
          for (int y = 0; y < ymax; ++y) ss += cur.at(x, y + ymin, ch) * k[y];
          t.rgb[(size_t(yy) * cur.width + x) * 3 + ch] = clip8(ss);
        }
    }
    cur = std::move(t);
  }
  return cur;
}

RgbImage pil_pad(const RgbImage& im, int S) {
  // ImageOps.contain
  int w = S, h = S;
  double im_ratio = static_cast<double>(im.width) / im.height;
  if (im_ratio != 1.0) {
    if (im_ratio > 1.0) h = py_round(static_cast<double>(im.height) / im.width * S);
    else w = py_round(static_cast<double>(im.width) / im.height * S);
  }
  RgbImage resized = pil_resize_bicubic(im, w, h);
  if (w == S && h == S) return resized;
  RgbImage out;
  out.width = out.height = S;
  out.rgb.assign(size_t(S) * S * 3, 127);
  int x0 = 0, y0 = 0;
  if (w != S) x0 = py_round((S - w) * 0.5);
  else y0 = py_round((S - h) * 0.5);
  for (int y = 0; y < h; ++y)
    std::copy_n(&resized.rgb[size_t(y) * w * 3], size_t(w) * 3, &out.rgb[(size_t(y + y0) * S + x0) * 3]);
  return out;
}

std::vector<std::pair<int, int>> grid_candidates(int max_num) {
  // Python 3.11's iteration order of the official candidate set, stably sorted by i*j
  // (model-spec §3); other max_num values fall back to (i*j, i, j) order with a note in the docs.
  if (max_num == 6)
    return {{1, 2}, {2, 1}, {3, 1}, {1, 3}, {4, 1}, {1, 4}, {2, 2}, {1, 5}, {5, 1}, {6, 1}, {2, 3}, {1, 6}, {3, 2}};
  if (max_num == 9)
    return {{1, 2}, {2, 1}, {3, 1}, {1, 3}, {2, 2}, {4, 1}, {1, 4}, {5, 1}, {1, 5}, {1, 6}, {6, 1},
            {3, 2}, {2, 3}, {7, 1}, {1, 7}, {4, 2}, {2, 4}, {1, 8}, {8, 1}, {1, 9}, {3, 3}, {9, 1}};
  if (max_num < 2) throw Error(fmt::format("max tiles {} must be at least 2", max_num));
  std::vector<std::pair<int, int>> v;
  for (int i = 1; i <= max_num; ++i)
    for (int j = 1; j <= max_num; ++j)
      if (i * j >= 2 && i * j <= max_num) v.push_back({i, j});
  std::stable_sort(v.begin(), v.end(), [](auto a, auto b) { return a.first * a.second < b.first * b.second; });
  return v;
}

std::pair<int, int> choose_grid(int width, int height, int tile, int max_num) {
  double aspect = static_cast<double>(width) / height;
  double best_diff = std::numeric_limits<double>::infinity();
  std::pair<int, int> best{1, 1};
  double area = static_cast<double>(width) * height;
  for (auto r : grid_candidates(max_num)) {
    double target = static_cast<double>(r.first) / r.second;
    double diff = std::fabs(aspect - target);
    if (diff < best_diff) {
      best_diff = diff;
      best = r;
    } else if (diff == best_diff && area > 0.5 * tile * tile * r.first * r.second) {
      best = r;
    }
  }
  return best;
}

namespace {
void append_normalised(const RgbImage& im, std::vector<float>& out) {
  size_t base = out.size(), plane = size_t(im.width) * im.height;
  out.resize(base + 3 * plane);
  for (int c = 0; c < 3; ++c)
    for (size_t p = 0; p < plane; ++p) {
      float v = static_cast<float>(im.rgb[p * 3 + c]) / 255.0f;  // ToTensor, fp32
      out[base + c * plane + p] = (v - 0.5f) / 0.5f;            // Normalize(0.5, 0.5)
    }
}

RgbImage crop(const RgbImage& im, int x0, int y0, int w, int h) {
  RgbImage out;
  out.width = w;
  out.height = h;
  out.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    std::copy_n(&im.rgb[(size_t(y + y0) * im.width + x0) * 3], size_t(w) * 3, &out.rgb[size_t(y) * w * 3]);
  return out;
}
}  // namespace

std::pair<int, int> view_grid(const ModeSpec& m, int width, int height, int max_tiles) {
  if (!m.crop || (width <= m.image && height <= m.image)) return {1, 1};
  if (m.max_tiles > 0) max_tiles = std::min(max_tiles, m.max_tiles);
  return choose_grid(width, height, m.image, max_tiles);
}

Views make_views(const RgbImage& image, const std::string& mode, int max_tiles) {
  ModeSpec m = mode_spec(mode);
  if (image.width <= 0 || image.height <= 0) throw Error("image has no pixels");
  Views v;
  if (m.crop) {
    v.global_size = m.base;
    v.tile_size = m.image;
    auto [cols, rows] = view_grid(m, image.width, image.height, max_tiles);
    if (cols * rows > 1) {
      v.cols = cols;
      v.rows = rows;
      RgbImage resized = pil_resize_bicubic(image, m.image * cols, m.image * rows);
      for (int i = 0; i < cols * rows; ++i)
        append_normalised(crop(resized, (i % cols) * m.image, (i / cols) * m.image, m.image, m.image), v.tiles);
      v.n_tiles = cols * rows;
    }
    append_normalised(pil_pad(image, m.base), v.global_view);
    return v;
  }
  v.global_size = v.tile_size = m.image;
  RgbImage img = m.image <= 640 ? pil_resize_bicubic(image, m.image, m.image) : image;
  append_normalised(pil_pad(img, m.image), v.global_view);
  return v;
}

int image_token_count(const std::string& mode, int cols, int rows, int n_tiles) {
  ModeSpec m = mode_spec(mode);
  if (m.version == 2) {
    const int g = m.base / 64, t = m.image / 64;  // 16x16 global, 12x12 per tile (no newlines)
    return g * g + 1 + t * t * n_tiles;
  }
  if (m.crop) {
    int n = 16 * 17 + 1;
    if (n_tiles) n += (10 * rows) * (10 * cols + 1);
    return n;
  }
  int q = m.image / 64;
  return q * (q + 1) + 1;
}

}  // namespace dsocr
