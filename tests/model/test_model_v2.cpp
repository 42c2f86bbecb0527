// The DeepSeek-OCR-2 model pipeline on the tiny v2 checkpoint of tests/goldens/tiny-ckpt-ocr2
// (numbers against the reference: the v2 vision_encoder / model_logits / model_generate goldens):
// loading from config.json alone, the view layout (tiles, then the global view, then
// view_seperator; no newlines), the token counts, the weight storages.
#include <cstdlib>
#include <string>

#include "harness/harness.h"
#include "model/model.h"
#include "model/preprocess.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

std::string ckpt_dir() {
  const char* src = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(src ? src : DSOCR_KERNEL_DIR "/..") + "/tests/goldens/tiny-ckpt-ocr2";
}

OcrModel& tiny_v2() {
  static OcrModel m = load_model(rt(), ckpt_dir());
  return m;
}

std::vector<float> rows(const std::vector<float>& v, int64_t from, int64_t n, int64_t width) {
  return {v.begin() + from * width, v.begin() + (from + n) * width};
}

}  // namespace

TEST(model_v2, loads_from_its_config) {
  OcrModel& m = tiny_v2();
  EXPECT_TRUE(m.cfg.is_v2());
  EXPECT_EQ(m.cfg.qwen2.hidden, 48);
  EXPECT_EQ(m.cfg.sam.downsample_channels[1], 48);  // net_3 to the encoder width, not the stale 64
  EXPECT_EQ(m.vision.qwen2.layers.size(), 3u);
  EXPECT_EQ(m.vision.proj_w.shape, (Shape{128, 48}));
  EXPECT_FALSE(m.vision.newline.defined());  // v2 has no image_newline
  EXPECT_EQ(m.vision.sam.net3_w.shape, (Shape{48, 32, 3, 3}));
}

// [tile 0 | tile 1 | global | separator]: each part equals the views encoded on their own.
TEST(model_v2, view_layout_tiles_global_separator) {
  OcrModel& m = tiny_v2();
  const int64_t C = m.cfg.n_embed;
  Tensor g = rt().upload(random_floats(3 * 1024 * 1024, 11), {1, 3, 1024, 1024});
  Tensor tiles = rt().upload(random_floats(2 * 3 * 768 * 768, 12), {2, 3, 768, 768});
  Tensor emb = vision_embeddings(rt(), m.vision, g, &tiles, 2, 1);
  ASSERT_EQ(emb.shape, (Shape{image_token_count("ocr2", 2, 1, 2), C}));
  EXPECT_EQ(emb.dim(0), 2 * 144 + 256 + 1);
  auto all = rt().read_f32(emb);
  auto loc = rt().read_f32(encode_views(rt(), m.vision, tiles));
  auto glo = rt().read_f32(encode_views(rt(), m.vision, g));
  auto sep = rt().read_f32(m.vision.separator);
  EXPECT_EQ(rows(all, 0, 288, C), loc);
  EXPECT_EQ(rows(all, 288, 256, C), glo);
  EXPECT_EQ(rows(all, 544, 1, C), sep);
  Tensor only = vision_embeddings(rt(), m.vision, g, nullptr, 1, 1);
  EXPECT_EQ(only.dim(0), image_token_count("ocr2", 1, 1, 0));
  EXPECT_EQ(only.dim(0), 257);
  expect_error_containing([&] { vision_embeddings(rt(), m.vision, g, &tiles, 3, 1); }, "2 tiles for a 3x1 grid");
  // a view size whose SAM grid has no learned queries (640: 10x10 = 100 tokens)
  Tensor odd = rt().upload(random_floats(3 * 640 * 640, 13), {1, 3, 640, 640});
  expect_error_containing([&] { encode_views(rt(), m.vision, odd); }, "100 image tokens has no learned queries");
}

// Two pages in one pass (vision_embeddings_batch): each page's rows are those it gets alone.
TEST(model_v2, pages_encoded_together_are_each_page_alone) {
  OcrModel& m = tiny_v2();
  Views a, b;
  a.global_size = b.global_size = 1024;
  a.tile_size = b.tile_size = 768;
  a.global_view = random_floats(3 * 1024 * 1024, 21);
  a.tiles = random_floats(2 * 3 * 768 * 768, 22);
  a.n_tiles = 2;
  a.cols = 2;
  b.global_view = random_floats(3 * 1024 * 1024, 23);
  std::vector<Tensor> both = vision_embeddings_batch(rt(), m.vision, {&a, &b});
  ASSERT_EQ(both.size(), 2u);
  Tensor ga = rt().upload(a.global_view, {1, 3, 1024, 1024}), ta = rt().upload(a.tiles, {2, 3, 768, 768});
  Tensor gb = rt().upload(b.global_view, {1, 3, 1024, 1024});
  EXPECT_EQ(rt().read_f32(both[0]), rt().read_f32(vision_embeddings(rt(), m.vision, ga, &ta, 2, 1)));
  EXPECT_EQ(rt().read_f32(both[1]), rt().read_f32(vision_embeddings(rt(), m.vision, gb, nullptr, 1, 1)));
  EXPECT_EQ(both[0].dim(0), image_token_count("ocr2", 2, 1, 2));
  EXPECT_EQ(both[1].dim(0), image_token_count("ocr2", 1, 1, 0));
}

TEST(model_v2, weight_storages) {
  for (WeightStorage s : {WeightStorage::fp16, WeightStorage::int8, WeightStorage::f32}) {
    OcrModel q = load_model(rt(), ckpt_dir(), s);
    EXPECT_TRUE(q.cfg.is_v2());
    EXPECT_EQ(q.vision.qwen2.layers.size(), 3u);
  }
}
