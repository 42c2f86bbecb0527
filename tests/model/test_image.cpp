// model/image + model/preprocess: decoding every PNG colour type, JPEG with EXIF orientation,
// CMYK/YCCK/grey JPEGs against Pillow's pixels, corrupt/truncated/unsupported inputs (truncated and
// damaged JPEGs are errors naming the file), and the view geometry (pad rounding, grid choice).
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
// clang-format off
#include <jpeglib.h>  // after <cstdio>: it uses size_t and FILE
// clang-format on
#include <png.h>
#include <zlib.h>

#include "harness/harness.h"
#include "model/image.h"
#include "model/preprocess.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

void png_write_mem(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void png_flush_mem(png_structp) {}

// Encodes raw samples (channels per colour type, depth 8 or 16 big-endian) as a PNG.
std::vector<uint8_t> make_png(int w, int h, int color, int depth, const std::vector<uint8_t>& samples,
                              const std::vector<png_color>& palette = {}, int interlace = PNG_INTERLACE_NONE) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, w, h, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  png_write_info(png, info);
  size_t rowbytes = samples.size() / h;
  int passes = png_set_interlace_handling(png);  // 7 for Adam7: every row once per pass
  for (int pass = 0; pass < passes; ++pass)
    for (int y = 0; y < h; ++y) png_write_row(png, const_cast<png_bytep>(&samples[y * rowbytes]));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<uint8_t> make_jpeg(int w, int h, const std::vector<uint8_t>& rgb, int orientation, int quality = 100) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  jpeg_mem_dest(&c, &buf, &len);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  if (orientation) {  // minimal little-endian TIFF with one IFD entry: Orientation
    uint8_t exif[] = {'E', 'x',  'i',  'f', 0,
                      0,   'I',  'I',  42,  0,
                      8,   0,    0,    0,   1,
                      0,   0x12, 0x01, 3,   0,
                      1,   0,    0,    0,   static_cast<uint8_t>(orientation),
                      0,   0,    0,    0,   0,
                      0,   0};
    jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof(exif));
  }
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&rgb[c.next_scanline * w * 3]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + len);
  free(buf);
  return out;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle, const std::string& name = "img") {
  try {
    decode_image(bytes, name);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string images_dir() {
  const char* s = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(s ? s : ".") + "/tests/data/images/";
}

// A noisy 8-bit RGB pattern (noise keeps the JPEG scan long enough to truncate mid-way).
std::vector<uint8_t> noisy_rgb(int w, int h) {
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  uint32_t s = 12345;
  for (auto& v : rgb) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(s >> 24);
  }
  return rgb;
}

// Every pixel of `got` against Pillow's decode of the same file (tests/data/images/*.pillow.png,
// written by make_images.py): the largest difference, and the first pixel over `tol`.
::testing::AssertionResult same_as_pillow(const std::string& stem, int tol) {
  RgbImage got = load_image(images_dir() + stem + ".jpg");
  RgbImage want = load_image(images_dir() + stem + ".pillow.png");
  if (got.width != want.width || got.height != want.height)
    return ::testing::AssertionFailure() << stem << ": " << got.width << "x" << got.height << ", Pillow " << want.width
                                         << "x" << want.height;
  int worst = 0;
  for (int y = 0; y < got.height; ++y)
    for (int x = 0; x < got.width; ++x)
      for (int c = 0; c < 3; ++c) {
        int d = std::abs(int(got.at(x, y, c)) - int(want.at(x, y, c)));
        if (d > tol)
          return ::testing::AssertionFailure()
                 << stem << ": pixel (x " << x << ", y " << y << ", channel " << c << ") is " << int(got.at(x, y, c))
                 << ", Pillow gives " << int(want.at(x, y, c));
        worst = std::max(worst, d);
      }
  std::printf("%s.jpg: max difference to Pillow %d (of %dx%d pixels)\n", stem.c_str(), worst, got.width, got.height);
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(image, png_colour_types) {
  const int w = 3, h = 2;
  std::vector<uint8_t> grey = {0, 50, 100, 150, 200, 250};
  auto g = decode_image(make_png(w, h, PNG_COLOR_TYPE_GRAY, 8, grey), "g");
  ASSERT_EQ(g.width, 3);
  EXPECT_EQ(g.at(1, 1, 0), 200);
  EXPECT_EQ(g.at(1, 1, 2), 200);
  std::vector<uint8_t> ga = {10, 0, 20, 255, 30, 7, 40, 1, 50, 2, 60, 3};  // alpha dropped, not composited
  EXPECT_EQ(decode_image(make_png(w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga), "ga").at(2, 0, 1), 30);
  std::vector<uint8_t> rgba(w * h * 4);
  for (size_t i = 0; i < rgba.size(); ++i) rgba[i] = static_cast<uint8_t>(i * 9);
  auto a = decode_image(make_png(w, h, PNG_COLOR_TYPE_RGBA, 8, rgba), "rgba");
  EXPECT_EQ(a.at(1, 0, 2), rgba[4 + 2]);
  std::vector<uint8_t> rgb16(w * h * 6);
  for (size_t i = 0; i < rgb16.size(); ++i) rgb16[i] = static_cast<uint8_t>(i * 5 + 1);
  auto r16 = decode_image(make_png(w, h, PNG_COLOR_TYPE_RGB, 16, rgb16), "rgb16");
  EXPECT_EQ(r16.at(0, 1, 1), rgb16[(3 + 0) * 6 + 2]);                        // high byte of the big-endian sample
  std::vector<uint8_t> g16 = {0, 17, 0, 255, 1, 0, 255, 255, 0, 0, 0, 200};  // clipped to 255 above 255
  auto q = decode_image(make_png(w, h, PNG_COLOR_TYPE_GRAY, 16, g16), "g16");
  EXPECT_EQ(q.at(0, 0, 0), 17);
  EXPECT_EQ(q.at(2, 0, 0), 255);
  EXPECT_EQ(q.at(2, 1, 0), 200);
  std::vector<png_color> pal = {{1, 2, 3}, {200, 100, 50}};
  std::vector<uint8_t> idx = {0, 1, 1, 0, 1, 0};
  auto p = decode_image(make_png(w, h, PNG_COLOR_TYPE_PALETTE, 8, idx, pal), "pal");
  EXPECT_EQ(p.at(1, 0, 0), 200);
  EXPECT_EQ(p.at(0, 0, 2), 3);
}

TEST(image, jpeg_exif_orientation) {
  // 4x2 image with distinct quadrants; orientations transpose it as Pillow's exif_transpose.
  const int w = 16, h = 8;
  std::vector<uint8_t> rgb(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t v = (x < w / 2 ? 40 : 200);
      uint8_t u = (y < h / 2 ? 30 : 220);
      rgb[(y * w + x) * 3] = v;
      rgb[(y * w + x) * 3 + 1] = u;
      rgb[(y * w + x) * 3 + 2] = 128;
    }
  auto plain = decode_image(make_jpeg(w, h, rgb, 0), "j");
  EXPECT_EQ(plain.width, 16);
  EXPECT_NEAR(plain.at(1, 1, 0), 40, 6);
  auto r6 = decode_image(make_jpeg(w, h, rgb, 6), "j6");  // rotate 270 (clockwise): width/height swap
  ASSERT_EQ(r6.width, 8);
  ASSERT_EQ(r6.height, 16);
  // the input's top-left (x<8: R 40, y<4: G 30) lands at the top-right
  EXPECT_NEAR(r6.at(7, 0, 0), 40, 6);
  EXPECT_NEAR(r6.at(7, 0, 1), 30, 6);
  EXPECT_NEAR(r6.at(0, 15, 0), 200, 6);
  auto r3 = decode_image(make_jpeg(w, h, rgb, 3), "j3");  // rotate 180
  EXPECT_NEAR(r3.at(15, 7, 0), 40, 6);
  EXPECT_NEAR(r3.at(15, 7, 1), 30, 6);
  auto r8 = decode_image(make_jpeg(w, h, rgb, 8), "j8");  // rotate 90 counter-clockwise
  EXPECT_NEAR(r8.at(0, 15, 0), 40, 6);
  EXPECT_NEAR(r8.at(0, 15, 1), 30, 6);
}

// Adam7 decodes as the same pixels; a PNG whose header claims a huge image and whose data ends
// early is refused (rows are decoded one by one, so nothing near 60000 x 4000 x 3 is allocated).
TEST(image, png_interlaced_and_hostile_size) {
  const int w = 13, h = 7;
  auto rgb = noisy_rgb(w, h);
  RgbImage a = decode_image(make_png(w, h, PNG_COLOR_TYPE_RGB, 8, rgb), "plain");
  RgbImage b = decode_image(make_png(w, h, PNG_COLOR_TYPE_RGB, 8, rgb, {}, PNG_INTERLACE_ADAM7), "adam7");
  EXPECT_EQ(a.rgb, rgb);
  EXPECT_EQ(b.rgb, rgb);
  auto big = make_png(60000, 1, PNG_COLOR_TYPE_RGB, 8, std::vector<uint8_t>(60000 * 3, 7));
  big[20] = 0, big[21] = 0, big[22] = 0x0f, big[23] = 0xa0;  // IHDR height 1 -> 4000
  uint32_t crc = crc32(0, &big[12], 17);                     // chunk type + data
  big[29] = crc >> 24, big[30] = (crc >> 16) & 255, big[31] = (crc >> 8) & 255, big[32] = crc & 255;
  expect_error(big, "corrupt PNG");
}

TEST(image, corrupt_truncated_unsupported) {
  std::vector<uint8_t> rgb(8 * 8 * 3, 99);
  auto png = make_png(8, 8, PNG_COLOR_TYPE_RGB, 8, rgb);
  expect_error(std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2), "corrupt PNG");
  auto bad = png;
  bad[20] ^= 0xff;  // IHDR data: CRC mismatch
  expect_error(bad, "corrupt PNG");
  auto jpg = make_jpeg(8, 8, rgb, 0);
  expect_error(std::vector<uint8_t>(jpg.begin(), jpg.begin() + 40), "truncated JPEG");
  expect_error({}, "empty file");
  expect_error({'G', 'I', 'F', '8', '9', 'a', 0, 0}, "unsupported image format");
  expect_error({'%', 'P', 'D', 'F', '-', '1'}, "a PDF, not an image");
  EXPECT_THROW(load_image("/nonexistent/image.png"), Error);
}

// CMYK and YCCK JPEGs (scanners, print workflows) decode as Pillow's convert("RGB") does: Adobe's
// inverted CMYK, then R = (255-K) - (255-K)*C/255. Greyscale still expands to grey RGB.
TEST(image, jpeg_cmyk_ycck_grey_match_pillow) {
  EXPECT_TRUE(same_as_pillow("cmyk", 1));
  EXPECT_TRUE(same_as_pillow("ycck", 1));
  EXPECT_TRUE(same_as_pillow("grey", 1));
  RgbImage g = load_image(images_dir() + "grey.jpg");
  for (size_t i = 0; i < g.rgb.size(); i += 3) {
    ASSERT_EQ(g.rgb[i], g.rgb[i + 1]);
    ASSERT_EQ(g.rgb[i], g.rgb[i + 2]);
  }
}

// `head -c 5000 a.jpg > t.jpg`: libjpeg only warns ("Premature end of JPEG file") and would fill
// the rest grey; that is an error naming the file, as a truncated PNG is.
TEST(image, jpeg_truncated_or_damaged_is_an_error) {
  const int w = 200, h = 120;
  auto jpg = make_jpeg(w, h, noisy_rgb(w, h), 0, 90);
  ASSERT_GT(jpg.size(), 9000u);
  EXPECT_EQ(decode_image(jpg, "a.jpg").width, w);
  expect_error(std::vector<uint8_t>(jpg.begin(), jpg.begin() + 5000), "t.jpg: truncated JPEG", "t.jpg");
  expect_error(std::vector<uint8_t>(jpg.begin(), jpg.begin() + 5000), "Premature end of JPEG file", "t.jpg");
  // Only the final EOI marker missing: the image is complete, but the file is still cut short.
  expect_error(std::vector<uint8_t>(jpg.begin(), jpg.end() - 2), "truncated JPEG", "t.jpg");
  // A marker in the middle of the scan: libjpeg's "Corrupt JPEG data" warning is an error.
  auto hit = jpg;
  hit[jpg.size() / 2] = 0xff;
  hit[jpg.size() / 2 + 1] = 0xd0 + 3;  // an RST marker where none belongs
  expect_error(hit, "d.jpg: corrupt JPEG: Corrupt JPEG data", "d.jpg");
  // Junk between the scan and EOI leaves every pixel intact: accepted, as Pillow does.
  auto junk = jpg;
  junk.insert(junk.end() - 2, {0x12, 0x34, 0x56});
  EXPECT_EQ(decode_image(junk, "junk.jpg").height, h);
  // The committed Pillow-made files, cut short, are refused too.
  std::ifstream in(images_dir() + "cmyk.jpg", std::ios::binary);
  std::vector<uint8_t> cmyk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(cmyk.size(), 600u);
  cmyk.resize(cmyk.size() - 200);
  expect_error(cmyk, "truncated JPEG");
}

TEST(preprocess, geometry) {
  EXPECT_EQ(choose_grid(1700, 2200, 640, 9), (std::pair{2, 3}));  // model-spec §3 example
  EXPECT_EQ(choose_grid(1280, 1280, 640, 9), (std::pair{2, 2}));
  // exact tie between (1,2)... W/H = 1/2 picks (1,2) first; (2,4) ties later and wins only when
  // the area is large enough: 0.5*640²*8 = 1638400 < 1400*2800.
  EXPECT_EQ(choose_grid(640, 1280, 640, 9), (std::pair{1, 2}));
  EXPECT_EQ(choose_grid(1400, 2800, 640, 9), (std::pair{2, 4}));
  EXPECT_EQ(grid_candidates(6).size(), 13u);
  EXPECT_EQ(image_token_count("gundam", 2, 3, 6), 273 + 30 * 21);
  EXPECT_EQ(image_token_count("base", 1, 1, 0), 273);
  EXPECT_EQ(image_token_count("tiny", 1, 1, 0), 73);
  RgbImage im;
  im.width = 1000;
  im.height = 333;
  im.rgb.assign(1000 * 333 * 3, 200);
  RgbImage padded = pil_pad(im, 1024);  // contain: 333/1000*1024 = 340.99 -> 341 rows at y = round(341.5) = 342
  EXPECT_EQ(padded.at(0, 341, 0), 127);
  EXPECT_EQ(padded.at(0, 342, 0), 200);
  EXPECT_EQ(padded.at(0, 682, 0), 200);
  EXPECT_EQ(padded.at(0, 683, 0), 127);
  Views v = make_views(im, "gundam");
  EXPECT_EQ(v.n_tiles, 3);  // 1000x333 -> (3,1)
  EXPECT_EQ(v.tiles.size(), 3u * 3 * 640 * 640);
  EXPECT_FLOAT_EQ(v.tiles[0], 200.f / 255.f / 0.5f - 1.f);
  EXPECT_THROW(make_views(im, "huge"), Error);
}

// DeepSeek-OCR-2's single mode: 1024 global + 768 tiles, at most 6, 256 + 1 + 144 per tile. The
// expected grids and counts were computed once with the reference (reference/dsocr_ref/
// preprocess.py grid_v2 and n_image_tokens_v2) and are hard-coded here.
TEST(preprocess, ocr2_grids_match_the_reference) {
  struct Case {
    int w, h, cols, rows, tokens;
  };
  const Case cases[] = {
      {640, 480, 1, 1, 257},    {768, 768, 1, 1, 257},   {769, 300, 3, 1, 689},   {900, 1200, 2, 3, 1121},
      {1250, 500, 2, 1, 545},   // a (2,1)/(3,1) tie: 1250*500 <= 0.5*768²*3 keeps (2,1) (gundam's 640 takes (3,1))
      {800, 800, 2, 2, 833},    {1000, 1000, 2, 2, 833}, {1600, 900, 2, 1, 545},  {400, 2000, 1, 5, 977},
      {5000, 700, 6, 1, 1121},  // 7.1:1 would be (7,1) with 9 tiles: ocr2 stops at 6
      {3000, 400, 6, 1, 1121},  {1536, 768, 2, 1, 545},  {2000, 1000, 2, 1, 545},
  };
  const ModeSpec m = mode_spec("ocr2");
  EXPECT_EQ(m.version, 2);
  for (const Case& c : cases) {
    auto [cols, rows] = view_grid(m, c.w, c.h, 9);
    EXPECT_EQ(cols, c.cols) << c.w << "x" << c.h;
    EXPECT_EQ(rows, c.rows) << c.w << "x" << c.h;
    const int n = cols * rows > 1 ? cols * rows : 0;
    EXPECT_EQ(image_token_count("ocr2", cols, rows, n), c.tokens) << c.w << "x" << c.h;
  }
  EXPECT_EQ(view_grid(mode_spec("gundam"), 1250, 500, 6), (std::pair{3, 1}));
  EXPECT_EQ(view_grid(mode_spec("gundam"), 5000, 700, 9), (std::pair{7, 1}));
  EXPECT_EQ(default_mode(2), "ocr2");
  EXPECT_EQ(default_mode(1), "gundam");

  RgbImage im;
  im.width = 769;
  im.height = 300;
  im.rgb.assign(size_t(769) * 300 * 3, 90);
  Views v = make_views(im, "ocr2");
  EXPECT_EQ(v.global_size, 1024);
  EXPECT_EQ(v.tile_size, 768);
  EXPECT_EQ(v.n_tiles, 3);
  EXPECT_EQ(v.tiles.size(), 3u * 3 * 768 * 768);
  EXPECT_EQ(v.global_view.size(), 3u * 1024 * 1024);
  im.width = 640;
  im.height = 480;
  im.rgb.assign(size_t(640) * 480 * 3, 90);
  v = make_views(im, "ocr2");
  EXPECT_EQ(v.n_tiles, 0);
  EXPECT_TRUE(v.tiles.empty());
}
