// Batched greedy generation (model/batch_generate.h) on the tiny checkpoint of tests/goldens/tiny-ckpt:
// every sequence's ids equal, token for token, those generate() gives it alone, while sequences of
// different lengths share decode steps, end at different times and hand their slots on (continuous
// batching); the n-gram ban per sequence; image embeddings; f16 KV storage; the clear errors.
#include <cstdlib>
#include <random>
#include <string>

#include "harness/harness.h"
#include "model/batch_generate.h"
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

std::vector<int32_t> random_ids(int n, uint32_t seed, int32_t vocab) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int32_t> d(2, vocab - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& t : v) t = d(g);
  return v;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Seven prompts: lengths 1..40, 1..24 new tokens, some with the n-gram rule (n = 2 or 3), one
// stopping at an EOS it reaches (the id it generates third), one with image embeddings.
struct Prompts {
  std::vector<BatchPrompt> p;
  Tensor img;
};

Prompts make_prompts(OcrModel& m, Runtime& r = rt()) {
  const int32_t V = static_cast<int32_t>(m.lm.cfg.vocab_size);
  Prompts ps;
  const int lens[] = {5, 17, 1, 40, 9, 12, 23};
  const int news[] = {24, 7, 16, 1, 20, 11, 18};
  for (int i = 0; i < 7; ++i) {
    BatchPrompt b;
    b.prompt = random_ids(lens[i], 100 + i, V);
    b.opts.max_new_tokens = news[i];
    b.opts.eos_id = -1;
    if (i % 3 == 1) {
      b.opts.ngram_size = 2 + i % 2;
      b.opts.ngram_window = 10;
    }
    ps.p.push_back(b);
  }
  // prompt 5: image slots (id 7) take 4 embeddings
  const int64_t D = m.lm.cfg.hidden_size;
  ps.img = r.upload(random_floats(4 * D, 555), {4, D});
  auto& five = ps.p[5];
  five.prompt = {3, 7, 7, 7, 7, 9, 11};
  five.image_embeds = &ps.img;
  five.image_token_id = 7;
  return ps;
}

void expect_same_as_alone(OcrModel& m, std::vector<BatchPrompt> ps, int slots, DType kv, Runtime& r = rt()) {
  // prompt 2 stops at the EOS it generates as its third token alone
  {
    GenerateOptions o = ps[2].opts;
    o.kv = kv;
    auto alone = generate(r, m.lm, ps[2].prompt, nullptr, -1, o);
    ps[2].opts.eos_id = alone.at(2);
  }
  auto batched = generate_batch(r, m.lm, ps, slots, 0, kv);
  ASSERT_EQ(batched.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    GenerateOptions o = ps[i].opts;
    o.kv = kv;
    auto alone = generate(r, m.lm, ps[i].prompt, ps[i].image_embeds, ps[i].image_token_id, o);
    EXPECT_EQ(batched[i], alone) << "prompt " << i << " with " << slots << " slots, kv " << dtype_name(kv);
    if (i == 2) EXPECT_EQ(batched[i].size(), 3u) << "stopped at its EOS";
  }
}

}  // namespace

TEST(batch_generate, each_sequence_as_alone_six_slots) {
  OcrModel& m = tiny();
  Prompts ps = make_prompts(m);
  expect_same_as_alone(m, ps.p, 6, DType::f32);  // up to 6 rows a step (two matrix-vector chunks)
}

TEST(batch_generate, each_sequence_as_alone_two_slots_f16_cache) {
  OcrModel& m = tiny();
  Prompts ps = make_prompts(m);
  expect_same_as_alone(m, ps.p, 2, DType::f16);  // slots handed on five times
}

TEST(batch_generate, each_sequence_as_alone_through_the_gemm_paths) {
  // Tuning::batch_gemm_rows = 5 (a CPU device's default is never): steps of 5 or more sequences run CLBlast and the
  // grouped expert GEMM (seen in the launches), within rounding of the one-sequence logits: the same ids here.
  RuntimeOptions o;
  o.device = std::to_string(rt().device().index);
  Tuning t;
  t.batch_gemm_rows = 5;
  o.tuning = t;
  o.timing = true;
  Runtime r(o);
  OcrModel m = load_model(r, ckpt_dir());
  Prompts ps = make_prompts(m, r);
  r.take_timings();
  auto batched = generate_batch(r, m.lm, ps.p, 6, 0, DType::f32);
  int grouped = 0;
  for (const LaunchTiming& t : r.take_timings()) grouped += t.name == "moe_gate_up_f32";
  EXPECT_GT(grouped, 0) << "no decode step took the grouped expert GEMM";
  expect_same_as_alone(m, ps.p, 6, DType::f32, r);
}

TEST(batch_generate, each_sequence_as_alone_with_a_gpus_kernel_settings) {
  // A GPU's defaults on this device: 128 lanes, 4-row chunks and element loads in the
  // matrix-vector kernel, 64 lanes in the MoE kernels (the GEMM paths off: bit for bit as alone).
  Tuning t;
  t.gemv_lanes = 128;
  t.gemv_rows = 4;
  t.gemv_wide = false;
  t.moe_lanes = 64;
  t.batch_gemm_rows = 0;
  EXPECT_EQ(t.gemv_lanes, Tuning{}.gemv_lanes_for(true));
  EXPECT_EQ(t.gemv_rows, Tuning{}.gemv_rows_for(true));
  EXPECT_EQ(t.gemv_wide, Tuning{}.gemv_wide_for(true));
  EXPECT_EQ(t.moe_lanes, Tuning{}.moe_lanes_for(true));
  RuntimeOptions o;
  o.device = std::to_string(rt().device().index);
  o.tuning = t;
  Runtime r(o);
  OcrModel m = load_model(r, ckpt_dir());
  expect_same_as_alone(m, make_prompts(m, r).p, 6, DType::f16, r);
}

TEST(batch_generate, streams_per_sequence_and_frees_slots) {
  OcrModel& m = tiny();
  const int32_t V = static_cast<int32_t>(m.lm.cfg.vocab_size);
  BatchGenerator gen(rt(), m.lm, 2, 64);
  GenerateOptions o;
  o.eos_id = -1;
  o.max_new_tokens = 3;
  std::map<int64_t, std::vector<int32_t>> got;
  std::vector<int64_t> ended;
  auto on = [&](int64_t seq, int32_t tok, bool last) {
    got[seq].push_back(tok);
    if (last) ended.push_back(seq);
  };
  int64_t a = gen.add(random_ids(6, 1, V), nullptr, -1, o, on);
  o.max_new_tokens = 1;  // ends with its first token: never holds a slot
  int64_t b = gen.add(random_ids(4, 2, V), nullptr, -1, o, on);
  EXPECT_EQ(gen.active(), 1);
  EXPECT_EQ(ended, std::vector<int64_t>{b});
  o.max_new_tokens = 5;
  int64_t c = gen.add(random_ids(8, 3, V), nullptr, -1, o, on);
  EXPECT_EQ(gen.free_slots(), 0);
  EXPECT_NE(error_of([&] { gen.add({5}, nullptr, -1, o, on); }).find("all 2 slots are busy"), std::string::npos);
  gen.step(on);
  gen.step(on);  // a has its 3 tokens
  EXPECT_EQ(ended, (std::vector<int64_t>{b, a}));
  EXPECT_EQ(gen.free_slots(), 1);
  gen.cancel(c);  // c stops after 3 of its 5
  EXPECT_EQ(gen.active(), 0);
  gen.step(on);  // nothing active: nothing happens
  EXPECT_EQ(got[a].size(), 3u);
  EXPECT_EQ(got[b].size(), 1u);
  EXPECT_EQ(got[c].size(), 3u);
}

TEST(batch_generate, clear_errors) {
  OcrModel& m = tiny();
  GenerateOptions o;
  o.max_new_tokens = 10;
  EXPECT_NE(error_of([&] { BatchGenerator(rt(), m.lm, 0, 64); }).find("0 slots"), std::string::npos);
  BatchGenerator gen(rt(), m.lm, 1, 16);
  auto none = [](int64_t, int32_t, bool) {};
  EXPECT_NE(error_of([&] {
              gen.add(std::vector<int32_t>(7, 5), nullptr, -1, o, none);
            }).find("the prompt (7 tokens) plus max_new_tokens (10) is 17 tokens, over the limit of 16"),
            std::string::npos);
  o.max_new_tokens = 0;
  EXPECT_NE(error_of([&] { gen.add({5}, nullptr, -1, o, none); }).find("max_new_tokens 0 must be positive"),
            std::string::npos);
  try {
    BatchGenerator huge(rt(), m.lm, 1 << 20, 1 << 20);
    FAIL() << "expected OutOfDeviceMemory";
  } catch (const OutOfDeviceMemory& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache"), std::string::npos) << e.what();
  }
}
