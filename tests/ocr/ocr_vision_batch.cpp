// Several pages' vision in one pass (vision_embeddings_batch, prepare_pages,
// PageBatchEngine::add_many) on the tiny checkpoint: each page's embeddings and generation are
// those it gets alone, the views of one size go through the encoder together, a page's own failure
// is its own.
#include "ocr/ocr_test_util.h"
#include "ocr/page_batch.h"

namespace ocr_test {
namespace {

struct TestPage {
  std::string image, mode;
};

// text_page twice over (two tiny pages), and gundam pages with different grids (tiles of one size).
const std::vector<TestPage> kPages = {
    {"text_page.png", "tiny"}, {"table_wide.png", "gundam"}, {"gradient.png", "tiny"}, {"text_page.png", "gundam"}};

std::vector<Views> views_of(const std::vector<TestPage>& pages) {
  std::vector<Views> v;
  for (const TestPage& p : pages) v.push_back(make_views(load_image(image_path(p.image)), p.mode));
  return v;
}

}  // namespace

TEST(ocr, vision_of_several_pages_in_one_pass_is_each_page_alone) {
  DeepEncoder& enc = engine().model.vision;
  const std::vector<Views> views = views_of(kPages);
  ASSERT_GT(views[1].n_tiles, 1);
  ASSERT_GT(views[3].n_tiles, 1);
  ASSERT_NE(views[1].cols * 10 + views[1].rows, views[3].cols * 10 + views[3].rows);  // two grids
  std::vector<std::vector<float>> alone;
  const uint64_t l0 = rt().launches();
  for (const Views& v : views) {
    Tensor g = rt().upload(v.global_view, {1, 3, v.global_size, v.global_size});
    Tensor t;
    if (v.n_tiles > 0) t = rt().upload(v.tiles, {v.n_tiles, 3, v.tile_size, v.tile_size});
    alone.push_back(rt().read_f32(vision_embeddings(rt(), enc, g, v.n_tiles > 0 ? &t : nullptr, v.cols, v.rows)));
  }
  const uint64_t l1 = rt().launches();
  std::vector<const Views*> ptrs;
  for (const Views& v : views) ptrs.push_back(&v);
  std::vector<Tensor> batch = vision_embeddings_batch(rt(), enc, ptrs);
  const uint64_t l2 = rt().launches();
  ASSERT_EQ(batch.size(), views.size());
  for (size_t i = 0; i < views.size(); ++i) {
    EXPECT_EQ(batch[i].dim(0), image_token_count(kPages[i].mode, views[i].cols, views[i].rows, views[i].n_tiles));
    const std::vector<float> got = rt().read_f32(batch[i]);
    ASSERT_EQ(got.size(), alone[i].size()) << "page " << i;
    EXPECT_TRUE(all_close(got, to_double(alone[i]), Shape{static_cast<int64_t>(got.size())}, 1e-6, 1e-5))
        << "page " << i;
    EXPECT_EQ(got, alone[i]) << "page " << i << ": not bit for bit";
  }
  // Six encoder passes alone (four global views, two tile stacks); three together (the 512 and the
  // 1024 global views, the 640 tiles): fewer launches, not one per page.
  EXPECT_LT(l2 - l1, (l1 - l0) * 2 / 3) << "alone " << (l1 - l0) << " launches, together " << (l2 - l1);

  Views bad = views[0];
  bad.tiles.resize(5);
  expect_error_containing([&] { vision_embeddings_batch(rt(), enc, {&views[0], &bad}); }, "page 1 has");
}

TEST(ocr, page_batch_engine_starts_pages_together_each_as_alone) {
  OcrOptions o;
  o.max_new_tokens = 12;
  o.ngram_size = 3;
  o.ngram_window = 24;
  std::vector<RgbImage> images;
  std::vector<PageRequest> reqs;
  for (const TestPage& p : kPages) {
    images.push_back(load_image(image_path(p.image)));
    PageRequest r;
    r.prompt = task_prompt("free");
    r.opts = o;
    r.opts.mode = p.mode;
    reqs.push_back(r);
  }
  reqs[2].opts.mode = "ocr2";  // not a mode of this (v1) checkpoint: that page fails alone
  std::vector<PageResult> alone;
  for (size_t i = 0; i < images.size(); ++i)
    if (i != 2) alone.push_back(ocr_image(rt(), engine(), images[i], reqs[i].prompt, reqs[i].opts));

  PageBatchEngine eng(rt(), engine(), 4);
  const std::vector<Views> views = views_of(kPages);
  std::vector<const Views*> ptrs;
  for (const Views& v : views) ptrs.push_back(&v);
  EXPECT_EQ(eng.vision_pages(ptrs), 1u);  // nothing measured yet: one page
  std::map<int64_t, PageResult> done;
  const PageEvents none;
  int crops = 0;
  std::vector<PageBatchEngine::Adding> adding;
  for (size_t i = 0; i < images.size(); ++i)
    adding.push_back(PageBatchEngine::Adding{&images[i], &reqs[i], false, &crops, &none,
                                             [&](int64_t id, PageOutput& out) { done[id] = out.result; }});
  std::vector<PageBatchEngine::Added> added = eng.add_many(adding);
  ASSERT_EQ(added.size(), 4u);
  EXPECT_EQ(added[2].id, -1);
  EXPECT_NE(added[2].error.find("mode ocr2 is not a mode of this DeepSeek-OCR checkpoint"), std::string::npos)
      << added[2].error;
  EXPECT_EQ(eng.active() + static_cast<int>(done.size()), 3);
  for (int i = 0; i < 100 && eng.active() > 0; ++i) eng.step();
  ASSERT_EQ(done.size(), 3u);
  size_t k = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    if (i == 2) continue;
    ASSERT_GE(added[i].id, 0) << "page " << i << ": " << added[i].error;
    const PageResult& r = done.at(added[i].id);
    EXPECT_EQ(r.generated, alone[k].generated) << "page " << i;
    EXPECT_EQ(r.prompt_ids, alone[k].prompt_ids) << "page " << i;
    // the first pass, unmeasured, takes page 0 alone; the next takes the other three (page 2
    // fails in it, before the encoder)
    EXPECT_EQ(r.vision_batch, i == 0 ? 1 : 2) << "page " << i;
    EXPECT_EQ(alone[k].vision_batch, 1);
    ++k;
  }
  // Measured now: on a device with room, the next pass takes all four pages.
  EXPECT_EQ(eng.vision_pages(ptrs), 4u);
}

}  // namespace ocr_test
