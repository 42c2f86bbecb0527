// Greedy generation (model/generate.h) and the language model's input checks, on the tiny
// checkpoint of tests/goldens/tiny-ckpt: the n-gram rule against hand-worked cases, streaming,
// and the clear errors (context limit, ids outside the vocabulary, KV cache too large).
#include <cstdlib>
#include <string>

#include "harness/harness.h"
#include "model/generate.h"
#include "model/model.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

std::string ckpt_dir() {
  const char* src = std::getenv("DSOCR_SOURCE_DIR");
  return std::string(src ? src : DSOCR_KERNEL_DIR "/..") + "/tests/goldens/tiny-ckpt";
}

OcrModel& tiny() {
  static OcrModel m = load_model(rt(), ckpt_dir());
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(generate, ngram_rule) {
  using V = std::vector<int32_t>;
  // n=3: the last 2 ids (5,6) appeared at s=0 followed by 7, and at s=3 followed by 9.
  EXPECT_EQ(banned_ngram_tokens({5, 6, 7, 5, 6, 9, 5, 6}, 3, 100, {}), (V{7, 9}));
  // the window keeps only starts s >= len - window = 8 - 5 = 3
  EXPECT_EQ(banned_ngram_tokens({5, 6, 7, 5, 6, 9, 5, 6}, 3, 5, {}), (V{9}));
  // whitelisted ids are never banned
  EXPECT_EQ(banned_ngram_tokens({5, 6, 7, 5, 6, 9, 5, 6}, 3, 100, {7}), (V{9}));
  // shorter than n: nothing; n=1 bans every id seen in the window
  EXPECT_TRUE(banned_ngram_tokens({1, 2}, 3, 10, {}).empty());
  EXPECT_EQ(banned_ngram_tokens({4, 2, 4}, 1, 10, {}), (V{2, 4}));
  // a repeated single token with n=2
  EXPECT_EQ(banned_ngram_tokens({8, 8, 8}, 2, 10, {}), (V{8}));
}

TEST(generate, streams_what_it_returns_and_stops_at_max) {
  OcrModel& m = tiny();
  std::vector<int32_t> prompt = {0, 100, 200, 300, 400};
  std::vector<int32_t> streamed;
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.eos_id = -1;  // never stop early
  auto out = generate(rt(), m.lm, prompt, nullptr, -1, o, [&](int32_t t) { streamed.push_back(t); });
  EXPECT_EQ(out.size(), 12u);
  EXPECT_EQ(out, streamed);
  // with the n-gram rule (n=2) no bigram repeats in the generated ids
  o.ngram_size = 2;
  o.ngram_window = 100;
  out = generate(rt(), m.lm, prompt, nullptr, -1, o);
  for (size_t i = 0; i + 1 < out.size(); ++i)
    for (size_t j = i + 1; j + 1 < out.size(); ++j)
      EXPECT_FALSE(out[i] == out[j] && out[i + 1] == out[j + 1]) << "bigram repeats at " << i << " and " << j;
}

TEST(generate, clear_errors) {
  OcrModel& m = tiny();
  GenerateOptions o;
  o.max_new_tokens = m.lm.cfg.max_position_embeddings;  // prompt + this > 8192
  EXPECT_NE(error_of([&] {
              generate(rt(), m.lm, {0, 1, 2}, nullptr, -1, o);
            }).find("over the context limit of 8192"),
            std::string::npos);
  o.max_new_tokens = 4;
  o.context = 5;
  EXPECT_NE(error_of([&] {
              generate(rt(), m.lm, {0, 1, 2}, nullptr, -1, o);
            }).find("context limit of 5"),
            std::string::npos);
  o.context = 0;
  const int32_t V = static_cast<int32_t>(m.lm.cfg.vocab_size);
  EXPECT_NE(error_of([&] {
              generate(rt(), m.lm, {0, V, 2}, nullptr, -1, o);
            }).find("token id 1344 at position 1 is outside"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              generate(rt(), m.lm, {0, -3}, nullptr, -1, o);
            }).find("outside the vocabulary"),
            std::string::npos);
  // image embeddings that do not fill the image slots
  Tensor img = rt().empty({3, m.lm.cfg.hidden_size});
  EXPECT_NE(error_of([&] {
              generate(rt(), m.lm, {0, 7, 7, 5}, &img, 7, o);
            }).find("2 image slots (id 7) for 3"),
            std::string::npos);
  // a KV cache larger than the device
  try {
    make_kv_cache(rt(), m.lm.cfg, int64_t(1) << 40);
    FAIL() << "expected OutOfDeviceMemory";
  } catch (const OutOfDeviceMemory& e) {
    EXPECT_NE(std::string(e.what()).find("needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("MiB left"), std::string::npos) << e.what();
  }
}
