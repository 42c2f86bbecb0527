#include "ocr/draw.h"

#include <fmt/format.h>
#include <jpeglib.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/error.h"

namespace dsocr {
namespace {

// The classic 5x7 ASCII font (0x20..0x7e): five column bytes per glyph, bit 0 is the top row.
const uint8_t kFont[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5f, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00},
    {0x14, 0x7f, 0x14, 0x7f, 0x14}, {0x24, 0x2a, 0x7f, 0x2a, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62},
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1c, 0x22, 0x41, 0x00},
    {0x00, 0x41, 0x22, 0x1c, 0x00}, {0x14, 0x08, 0x3e, 0x08, 0x14}, {0x08, 0x08, 0x3e, 0x08, 0x08},
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00},
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3e, 0x51, 0x49, 0x45, 0x3e}, {0x00, 0x42, 0x7f, 0x40, 0x00},
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4b, 0x31}, {0x18, 0x14, 0x12, 0x7f, 0x10},
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3c, 0x4a, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03},
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1e}, {0x00, 0x36, 0x36, 0x00, 0x00},
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14},
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3e},
    {0x7e, 0x11, 0x11, 0x11, 0x7e}, {0x7f, 0x49, 0x49, 0x49, 0x36}, {0x3e, 0x41, 0x41, 0x41, 0x22},
    {0x7f, 0x41, 0x41, 0x22, 0x1c}, {0x7f, 0x49, 0x49, 0x49, 0x41}, {0x7f, 0x09, 0x09, 0x09, 0x01},
    {0x3e, 0x41, 0x49, 0x49, 0x7a}, {0x7f, 0x08, 0x08, 0x08, 0x7f}, {0x00, 0x41, 0x7f, 0x41, 0x00},
    {0x20, 0x40, 0x41, 0x3f, 0x01}, {0x7f, 0x08, 0x14, 0x22, 0x41}, {0x7f, 0x40, 0x40, 0x40, 0x40},
    {0x7f, 0x02, 0x0c, 0x02, 0x7f}, {0x7f, 0x04, 0x08, 0x10, 0x7f}, {0x3e, 0x41, 0x41, 0x41, 0x3e},
    {0x7f, 0x09, 0x09, 0x09, 0x06}, {0x3e, 0x41, 0x51, 0x21, 0x5e}, {0x7f, 0x09, 0x19, 0x29, 0x46},
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7f, 0x01, 0x01}, {0x3f, 0x40, 0x40, 0x40, 0x3f},
    {0x1f, 0x20, 0x40, 0x20, 0x1f}, {0x3f, 0x40, 0x38, 0x40, 0x3f}, {0x63, 0x14, 0x08, 0x14, 0x63},
    {0x07, 0x08, 0x70, 0x08, 0x07}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7f, 0x41, 0x41, 0x00},
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7f, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04},
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78},
    {0x7f, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7f},
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7e, 0x09, 0x01, 0x02}, {0x0c, 0x52, 0x52, 0x52, 0x3e},
    {0x7f, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7d, 0x40, 0x00}, {0x20, 0x40, 0x44, 0x3d, 0x00},
    {0x7f, 0x10, 0x28, 0x44, 0x00}, {0x00, 0x41, 0x7f, 0x40, 0x00}, {0x7c, 0x04, 0x18, 0x04, 0x78},
    {0x7c, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0x7c, 0x14, 0x14, 0x14, 0x08},
    {0x08, 0x14, 0x14, 0x18, 0x7c}, {0x7c, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20},
    {0x04, 0x3f, 0x44, 0x40, 0x20}, {0x3c, 0x40, 0x40, 0x20, 0x7c}, {0x1c, 0x20, 0x40, 0x20, 0x1c},
    {0x3c, 0x40, 0x30, 0x40, 0x3c}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x0c, 0x50, 0x50, 0x50, 0x3c},
    {0x44, 0x64, 0x54, 0x4c, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7f, 0x00, 0x00},
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x08, 0x04, 0x08, 0x10, 0x08},
};

void put(RgbImage& im, int x, int y, std::array<uint8_t, 3> c) {
  if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
  uint8_t* p = &im.rgb[(static_cast<size_t>(y) * im.width + x) * 3];
  p[0] = c[0];
  p[1] = c[1];
  p[2] = c[2];
}

void fill_rect(RgbImage& im, int x1, int y1, int x2, int y2, std::array<uint8_t, 3> c) {  // inclusive
  x1 = std::max(x1, 0);
  y1 = std::max(y1, 0);
  x2 = std::min(x2, im.width - 1);
  y2 = std::min(y2, im.height - 1);
  for (int y = y1; y <= y2; ++y)
    for (int x = x1; x <= x2; ++x) put(im, x, y, c);
}

// Blends colour c with alpha a/255 over [x1,x2]x[y1,y2] (inclusive), clipped.
void blend_rect(RgbImage& im, int x1, int y1, int x2, int y2, std::array<uint8_t, 3> c, int a) {
  x1 = std::max(x1, 0);
  y1 = std::max(y1, 0);
  x2 = std::min(x2, im.width - 1);
  y2 = std::min(y2, im.height - 1);
  for (int y = y1; y <= y2; ++y)
    for (int x = x1; x <= x2; ++x) {
      uint8_t* p = &im.rgb[(static_cast<size_t>(y) * im.width + x) * 3];
      for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>((c[k] * a + p[k] * (255 - a) + 127) / 255);
    }
}

// PIL's rectangle outline of width w: drawn inwards from the bounds.
void outline_rect(RgbImage& im, int x1, int y1, int x2, int y2, int w, std::array<uint8_t, 3> c) {
  if (x2 < x1 || y2 < y1) return;
  for (int i = 0; i < w; ++i) {
    int a = x1 + i, b = y1 + i, cx = x2 - i, d = y2 - i;
    if (cx < a || d < b) break;
    fill_rect(im, a, b, cx, b, c);
    fill_rect(im, a, d, cx, d, c);
    fill_rect(im, a, b, a, d, c);
    fill_rect(im, cx, b, cx, d, c);
  }
}

// Keeps coordinates far outside the image from overflowing the loops above.
int clampi(int v, int lo, int hi) { return std::min(std::max(v, lo), hi); }

std::string tmp_name(const std::string& path) { return fmt::format("{}.tmp{}", path, static_cast<long>(getpid())); }

void commit(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write {}: {}", path, ec.message()));
  }
}

void png_error_fn(png_structp png, png_const_charp msg) {
  *static_cast<std::string*>(png_get_error_ptr(png)) = msg;
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}

struct JpegErr {
  jpeg_error_mgr mgr;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
};
void jpeg_error_fn(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErr*>(c->err);
  (*c->err->format_message)(c, e->msg);
  longjmp(e->jb, 1);
}

}  // namespace

std::array<uint8_t, 3> label_colour(const std::string& label) {
  static const std::array<uint8_t, 3> palette[] = {
      {230, 25, 75},  {60, 160, 60}, {0, 110, 220}, {245, 130, 48}, {145, 30, 180}, {0, 160, 160},
      {200, 40, 200}, {120, 120, 0}, {170, 90, 40}, {0, 0, 128},    {128, 0, 0},    {90, 90, 90},
  };
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : label) h = (h ^ c) * 16777619u;
  return palette[h % (sizeof(palette) / sizeof(palette[0]))];
}

void draw_text(RgbImage& im, int x, int y, const std::string& text, std::array<uint8_t, 3> colour, int scale) {
  if (text.empty() || scale < 1) return;
  const int cw = 6 * scale, ch = 8 * scale;
  const int n = static_cast<int>(std::min<size_t>(text.size(), 200));
  fill_rect(im, x, y, x + n * cw, y + ch, {255, 255, 255});
  for (int i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c > 0x7e) c = '?';
    const uint8_t* g = kFont[c - 0x20];
    for (int col = 0; col < 5; ++col)
      for (int row = 0; row < 7; ++row)
        if (g[col] >> row & 1)
          fill_rect(im, x + 1 + i * cw + col * scale, y + 1 + row * scale, x + i * cw + (col + 1) * scale,
                    y + (row + 1) * scale, colour);
  }
}

void draw_boxes(RgbImage& im, const std::vector<LabelledBox>& boxes, bool labels) {
  if (im.width <= 0 || im.height <= 0) return;
  const int W = im.width, H = im.height;
  auto cx = [&](int v) { return clampi(v, -8, W + 8); };
  auto cy = [&](int v) { return clampi(v, -8, H + 8); };
  // Outlines and labels first, then the translucent fill over everything (the official overlay).
  for (auto& b : boxes) {
    auto col = label_colour(b.label);
    outline_rect(im, cx(b.x1), cy(b.y1), cx(b.x2), cy(b.y2), b.label == "title" ? 4 : 2, col);
    if (labels) {
      int scale = std::max(1, std::min(W, H) / 600);
      draw_text(im, clampi(b.x1, 0, W - 1), std::max(0, cy(b.y1) - 8 * scale - 2), b.label, col, scale);
    }
  }
  for (auto& b : boxes) blend_rect(im, cx(b.x1), cy(b.y1), cx(b.x2), cy(b.y2), label_colour(b.label), 20);
}

RgbImage crop_image(const RgbImage& im, int x1, int y1, int x2, int y2) {
  x1 = clampi(x1, 0, im.width);
  x2 = clampi(x2, 0, im.width);
  y1 = clampi(y1, 0, im.height);
  y2 = clampi(y2, 0, im.height);
  RgbImage out;
  if (x2 <= x1 || y2 <= y1) return out;
  out.width = x2 - x1;
  out.height = y2 - y1;
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    std::memcpy(&out.rgb[static_cast<size_t>(y) * out.width * 3],
                &im.rgb[(static_cast<size_t>(y + y1) * im.width + x1) * 3], static_cast<size_t>(out.width) * 3);
  return out;
}

void write_png(const std::string& path, const RgbImage& im) {
  if (im.width <= 0 || im.height <= 0) throw Error(fmt::format("cannot write {}: the image has no pixels", path));
  const std::string tmp = tmp_name(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  std::string err;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    std::remove(tmp.c_str());
    throw Error("libpng: cannot create a write struct");
  }
  std::vector<png_bytep> rows(im.height);
  for (int y = 0; y < im.height; ++y) rows[y] = const_cast<png_bytep>(&im.rgb[static_cast<size_t>(y) * im.width * 3]);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write {}: libpng: {}", path, err));
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, im.width, im.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  bool ok = std::fflush(f) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  commit(tmp, path);
}

void write_jpeg(const std::string& path, const RgbImage& im, int quality) {
  if (im.width <= 0 || im.height <= 0) throw Error(fmt::format("cannot write {}: the image has no pixels", path));
  const std::string tmp = tmp_name(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  jpeg_compress_struct c;
  JpegErr e;
  c.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_error_fn;
  if (setjmp(e.jb)) {
    jpeg_destroy_compress(&c);
    std::fclose(f);
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write {}: libjpeg: {}", path, e.msg));
  }
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = static_cast<JDIMENSION>(im.width);
  c.image_height = static_cast<JDIMENSION>(im.height);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&im.rgb[static_cast<size_t>(c.next_scanline) * im.width * 3]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  bool ok = std::fflush(f) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    throw Error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
  commit(tmp, path);
}

ImageFileFormat image_format_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".png") return ImageFileFormat::png;
  if (ext == ".jpg" || ext == ".jpeg") return ImageFileFormat::jpeg;
  return ImageFileFormat::unknown;
}

void write_image(const std::string& path, const RgbImage& im) {
  switch (image_format_of(path)) {
    case ImageFileFormat::png:
      return write_png(path, im);
    case ImageFileFormat::jpeg:
      return write_jpeg(path, im);
    case ImageFileFormat::unknown:
      break;
  }
  throw Error(fmt::format("cannot write {}: its extension names no format dsocr writes (.png, .jpg, .jpeg)", path));
}

}  // namespace dsocr
