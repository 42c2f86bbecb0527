// moe.cl (router softmax + top-k, routed SwiGLU experts: decode and grouped paths) against
// double-precision references written after reference/dsocr_ref/ops.py moe_route and moe.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "harness/harness.h"
#include "runtime/ops/moe.h"
#include "runtime/quant.h"
#include "moe_test_util.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

const char* path_name(ops::MoePath p) {
  return p == ops::MoePath::decode ? "decode" : p == ops::MoePath::grouped ? "grouped" : "automatic";
}

constexpr ops::MoePath kPaths[] = {ops::MoePath::automatic, ops::MoePath::decode, ops::MoePath::grouped};

}  // namespace

TEST(moe, route_awkward) {
  // T=7, E=8, k=3; scaling factor 2.5; norm_topk_prob; k=1 with norm (not normalised: scaled).
  struct Case {
    int64_t T, E;
    int k;
    bool norm;
    float scale;
  };
  for (auto c :
       {Case{7, 8, 3, false, 1.f}, Case{7, 8, 3, false, 2.5f}, Case{7, 8, 3, true, 2.5f}, Case{7, 8, 1, true, 2.5f},
        Case{61, 17, 6, false, 1.f}, Case{5, 300, 7, true, 1.f}, Case{3, 5, 5, false, 1.f}}) {
    auto logits = distinct_logits(c.T, c.E, 101 + c.E);
    auto ref = ref_route(logits, c.T, c.E, c.k, c.norm, c.scale);
    Tensor lt = rt().upload(logits, {c.T, c.E});
    Guarded ids(rt(), {c.T, c.k}, DType::i32), w(rt(), {c.T, c.k});
    ops::moe_route(rt(), lt, c.k, c.norm, c.scale, ids, w);
    std::string what = fmt::format("T={} E={} k={} norm={} scale={}", c.T, c.E, c.k, c.norm, c.scale);
    EXPECT_TRUE(all_equal(ids.read_i32(), ref.ids, {c.T, c.k})) << what;
    EXPECT_TRUE(all_close(w.read_f32(), ref.w, {c.T, c.k}, 1e-7, 1e-5)) << what;
  }
}

TEST(moe, route_ties_lower_id_first) {
  // Exactly equal logits give exactly equal probabilities: the lower expert id ranks first.
  const int64_t T = 3, E = 8;
  const int k = 4;
  std::vector<float> logits = {0,  0,    0,  0,    0,  0,  0,  0,    // all equal: 0,1,2,3
                               1,  2,    2,  0,    3,  2,  3,  1,    // 4,6 then 1,2
                               -1, 0.5f, -1, 0.5f, -1, -1, -1, -1};  // 1,3 then 0,2
  auto ref = ref_route(logits, T, E, k, false, 1.0);
  EXPECT_EQ(ref.ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 6, 1, 2, 1, 3, 0, 2}));
  Tensor lt = rt().upload(logits, {T, E});
  Guarded ids(rt(), {T, k}, DType::i32), w(rt(), {T, k});
  ops::moe_route(rt(), lt, k, false, 1.f, ids, w);
  EXPECT_TRUE(all_equal(ids.read_i32(), ref.ids, {T, k}));
  EXPECT_TRUE(all_close(w.read_f32(), ref.w, {T, k}, 1e-7, 1e-5));
}

TEST(moe, experts_awkward) {
  // T=7, H=17, E=8, I=5, k=3, through every path, f32, f16 and bf16 weights.
  const int64_t T = 7, H = 17, E = 8, I = 5;
  const int k = 3;
  auto host = make_experts(E, I, H, 201);
  auto x = random_floats(T * H, 203);
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routing(T, E, k, 205, ids, w);
  for (DType dt : kWeightTypes) {
    HostExperts used;
    auto ex = upload(host, dt, &used);
    auto ref = ref_experts(x, used, ids, w, T, k);
    for (auto p : kPaths)
      EXPECT_TRUE(all_close(run_experts(x, ex, ids, w, T, k, p), ref, {T, H}, 1e-5, 1e-4))
          << path_name(p) << " " << dtype_name(dt);
  }
}

TEST(moe, experts_quantized) {
  // q8 and q4 experts (blocks read in place) through every path: T = 2 (decode) and T = 37.
  const int64_t H = 96, E = 8, I = 64;
  const int k = 3;
  auto host = make_experts(E, I, H, 211);
  for (int64_t T : {2, 37}) {
    auto x = random_floats(T * H, 213);
    std::vector<int32_t> ids;
    std::vector<float> w;
    random_routing(T, E, k, 215, ids, w);
    for (DType dt : {DType::q8, DType::q4}) {
      HostExperts used;
      auto ex = upload_quantized(host, dt, &used);
      auto ref = ref_experts(x, used, ids, w, T, k);
      for (auto p : kPaths)
        EXPECT_TRUE(all_close(run_experts(x, ex, ids, w, T, k, p), ref, {T, H}, 1e-5, 1e-4))
            << path_name(p) << " " << dtype_name(dt) << " T " << T;
    }
  }
}

TEST(moe, decode_t1_real_width) {
  // One token (the automatic choice is the decode path) at H=1280, I=896, k=6 (E reduced to 8).
  const int64_t T = 1, H = 1280, E = 8, I = 896;
  const int k = 6;
  auto host = make_experts(E, I, H, 301);
  auto x = random_floats(T * H, 303);
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routing(T, E, k, 305, ids, w);
  for (DType dt : kWeightTypes) {
    HostExperts used;
    auto ex = upload(host, dt, &used);
    auto ref = ref_experts(x, used, ids, w, T, k);
    EXPECT_TRUE(all_close(run_experts(x, ex, ids, w, T, k, ops::MoePath::automatic), ref, {T, H}, 1e-5, 1e-4))
        << dtype_name(dt);
  }
}

TEST(moe, prefill_t61) {
  // T=61 (automatic: grouped). E=4, k=3: ~46 entries per expert, several row tiles each;
  // E=16, k=6: 366 entries, two counting blocks; E=64, T=127: 762 entries, three blocks.
  struct Case {
    int64_t T, H, E, I;
    int k;
  };
  for (auto c : {Case{61, 96, 4, 80, 3}, Case{61, 130, 16, 70, 6}, Case{127, 61, 64, 17, 6}}) {
    auto host = make_experts(c.E, c.I, c.H, 401);
    auto x = random_floats(c.T * c.H, 403);
    std::vector<int32_t> ids;
    std::vector<float> w;
    random_routing(c.T, c.E, c.k, 405, ids, w);
    for (DType dt : kWeightTypes) {
      HostExperts used;
      auto ex = upload(host, dt, &used);
      auto ref = ref_experts(x, used, ids, w, c.T, c.k);
      for (auto p : {ops::MoePath::automatic, ops::MoePath::grouped})
        EXPECT_TRUE(all_close(run_experts(x, ex, ids, w, c.T, c.k, p), ref, {c.T, c.H}, 1e-5, 1e-4))
            << fmt::format("T={} H={} E={} I={} k={} {} {}", c.T, c.H, c.E, c.I, c.k, path_name(p), dtype_name(dt));
    }
  }
}

TEST(moe, paths_agree) {
  // The decode and the grouped paths on the same inputs, against each other.
  struct Case {
    int64_t T, H, E, I;
    int k;
  };
  for (auto c : {Case{1, 17, 8, 5, 3}, Case{7, 64, 8, 33, 3}, Case{61, 130, 16, 70, 6}}) {
    auto host = make_experts(c.E, c.I, c.H, 501);
    auto x = random_floats(c.T * c.H, 503);
    std::vector<int32_t> ids;
    std::vector<float> w;
    random_routing(c.T, c.E, c.k, 505, ids, w);
    for (DType dt : kWeightTypes) {
      auto ex = upload(host, dt);
      auto dec = run_experts(x, ex, ids, w, c.T, c.k, ops::MoePath::decode);
      auto grp = run_experts(x, ex, ids, w, c.T, c.k, ops::MoePath::grouped);
      EXPECT_TRUE(all_close(grp, to_double(dec), {c.T, c.H}, 1e-6, 1e-5))
          << fmt::format("T={} H={} E={} I={} k={} {}", c.T, c.H, c.E, c.I, c.k, dtype_name(dt));
    }
  }
}

TEST(moe, decode_rows_equal_each_row_alone) {
  // A decode batch gives each token its one-token result bit for bit, close to double: rows of
  // whole 8-element pieces (H, I % 8 == 0), k = 10 (two chunks of slots), every storage.
  const int64_t T = 5, H = 64, E = 12, I = 32;
  const int k = 10;
  auto host = make_experts(E, I, H, 521);
  auto x = random_floats(T * H, 523);
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routing(T, E, k, 525, ids, w);
  for (DType dt : {DType::f32, DType::f16, DType::bf16, DType::q8, DType::q4}) {
    HostExperts used;
    auto ex = dtype_is_quantized(dt) ? upload_quantized(host, dt, &used) : upload(host, dt, &used);
    auto all = run_experts(x, ex, ids, w, T, k, ops::MoePath::decode);
    EXPECT_TRUE(all_close(all, ref_experts(x, used, ids, w, T, k), {T, H}, 1e-5, 1e-4)) << dtype_name(dt);
    for (int64_t t = 0; t < T; ++t) {
      auto one = run_experts({x.begin() + t * H, x.begin() + (t + 1) * H}, ex,
                             {ids.begin() + t * k, ids.begin() + (t + 1) * k},
                             {w.begin() + t * k, w.begin() + (t + 1) * k}, 1, k, ops::MoePath::decode);
      EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * H, H * sizeof(float)))
          << "token " << t << " " << dtype_name(dt);
    }
  }
}

TEST(moe, ids_out_of_range_contribute_nothing) {
  const int64_t T = 9, H = 33, E = 8, I = 12;
  const int k = 3;
  auto host = make_experts(E, I, H, 601);
  auto x = random_floats(T * H, 603);
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routing(T, E, k, 605, ids, w);
  ids[1] = -1;
  ids[5] = 8;
  ids[12] = 1000;
  for (DType dt : kWeightTypes) {
    HostExperts used;
    auto ex = upload(host, dt, &used);
    auto ref = ref_experts(x, used, ids, w, T, k);
    for (auto p : {ops::MoePath::decode, ops::MoePath::grouped})
      EXPECT_TRUE(all_close(run_experts(x, ex, ids, w, T, k, p), ref, {T, H}, 1e-5, 1e-4))
          << path_name(p) << " " << dtype_name(dt);
  }
}

TEST(moe, real_shape_route_and_experts) {
  // DeepSeek-OCR: H=1280, E=64, top-6, no renormalisation; T=17 tokens. The logits are x W_gate^T
  // (computed here); the experts' width is reduced to I=64 to keep the test fast.
  const int64_t T = 17, H = 1280, E = 64, I = 64;
  const int k = 6;
  auto x = random_floats(T * H, 701);
  auto wg = random_floats(E * H, 702, -0.1f, 0.1f);
  std::vector<float> logits(T * E);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      double s = 0;
      for (int64_t c = 0; c < H; ++c) s += double(x[t * H + c]) * wg[e * H + c];
      logits[t * E + e] = static_cast<float>(s);
    }
  auto route = ref_route(logits, T, E, k, false, 1.0);
  ASSERT_GT(route.min_gap, 1e-4) << "near-tie in the router probabilities: pick another seed";
  Tensor lt = rt().upload(logits, {T, E});
  Guarded ids(rt(), {T, k}, DType::i32), w(rt(), {T, k});
  ops::moe_route(rt(), lt, k, false, 1.f, ids, w);
  auto ids_out = ids.read_i32();
  auto w_out = w.read_f32();
  ASSERT_TRUE(all_equal(ids_out, route.ids, {T, k}));
  EXPECT_TRUE(all_close(w_out, route.w, {T, k}, 1e-7, 1e-5));

  auto host = make_experts(E, I, H, 703);
  Tensor xt = rt().upload(x, {T, H});
  for (DType dt : kWeightTypes) {
    HostExperts used;
    auto ex = upload(host, dt, &used);
    auto ref = ref_experts(x, used, ids_out, w_out, T, k);
    for (auto p : {ops::MoePath::decode, ops::MoePath::grouped}) {  // automatic = grouped here
      Guarded y(rt(), {T, H});
      ops::moe_experts(rt(), xt, ex, ids, w, y, p);  // ids and weights straight from the router
      EXPECT_TRUE(all_close(y.read_f32(), ref, {T, H}, 1e-5, 1e-4)) << path_name(p) << " " << dtype_name(dt);
    }
  }
}

TEST(moe, rejects_bad_shapes) {
  Tensor logits = rt().empty({4, 8});
  Tensor ids = rt().empty({4, 3}, DType::i32), w = rt().empty({4, 3}), ids_bad = rt().empty({4, 2}, DType::i32);
  expect_error_containing([&] { ops::moe_route(rt(), logits, 3, false, 1.f, ids_bad, w); },
                          "ids is [4,2] i32, expected [4,3] i32");
  expect_error_containing([&] { ops::moe_route(rt(), logits, 9, false, 1.f, ids, w); },
                          "top_k = 9 must be in [1, E = 8]");
  Tensor w_i32 = rt().empty({4, 3}, DType::i32);
  expect_error_containing([&] { ops::moe_route(rt(), logits, 3, false, 1.f, ids, w_i32); }, "weights is [4,3] i32");

  ops::MoeExperts ex;
  ex.E = 8;
  ex.I = 5;
  ex.H = 16;
  ex.gate_up = rt().empty({8, 10, 16});
  ex.down = rt().empty({8, 16, 5});
  Tensor x = rt().empty({4, 16}), y = rt().empty({4, 16});
  Tensor x_bad = rt().empty({4, 15});
  expect_error_containing([&] { ops::moe_experts(rt(), x_bad, ex, ids, w, y); },
                          "x is [4,15] f32, expected [T,16] f32");
  ops::MoeExperts ex_bad = ex;
  ex_bad.down = rt().empty({8, 5, 16});
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex_bad, ids, w, y); },
                          "down is [8,5,16] f32, expected [8,16,5] f32");
  ex_bad = ex;
  ex_bad.gate_up = rt().empty({8, 5, 16});
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex_bad, ids, w, y); },
                          "gate_up is [8,5,16] f32, expected [8,10,16]");
  Tensor y_bad = rt().empty({3, 16});
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex, ids, w, y_bad); },
                          "y is [3,16] f32, expected [4,16] f32");
  Tensor w_bad = rt().empty({4, 2});
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex, ids, w_bad, y); },
                          "weights is [4,2] f32, expected [4,3] f32");
}

TEST(moe, rejects_mixed_or_bad_weight_dtypes) {
  Tensor ids = rt().empty({4, 3}, DType::i32), w = rt().empty({4, 3});
  Tensor x = rt().empty({4, 16}), y = rt().empty({4, 16});
  ops::MoeExperts ex;
  ex.E = 8;
  ex.I = 5;
  ex.H = 16;
  ex.gate_up = rt().empty({8, 10, 16}, DType::bf16);
  ex.down = rt().empty({8, 16, 5}, DType::f16);
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex, ids, w, y); },
                          "down is [8,16,5] f16, expected [8,16,5] bf16 (the dtype of gate_up)");
  ex.down = rt().empty({8, 16, 5});
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex, ids, w, y); },
                          "down is [8,16,5] f32, expected [8,16,5] bf16 (the dtype of gate_up)");
  ex.gate_up = rt().empty({8, 10, 16}, DType::f16);
  ex.down = rt().empty({8, 16, 5}, DType::bf16);
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex, ids, w, y); },
                          "down is [8,16,5] bf16, expected [8,16,5] f16 (the dtype of gate_up)");
  ex.gate_up = rt().empty({8, 10, 16}, DType::i32);
  ex.down = rt().empty({8, 16, 5}, DType::i32);
  expect_error_containing([&] { ops::moe_experts(rt(), x, ex, ids, w, y); },
                          "gate_up is [8,10,16] i32, expected [8,10,16] f32, f16, bf16, q8 or q4");
}

// Heavy (run with --gtest_also_run_disabled_tests): the full DeepSeek-OCR expert shapes with a
// prefill batch, grouped against the double reference and against the decode path.
TEST(moe, DISABLED_full_shape_prefill) {
  const int64_t T = 128, H = 1280, E = 64, I = 896;
  const int k = 6;
  auto host = make_experts(E, I, H, 801);
  auto x = random_floats(T * H, 803);
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routing(T, E, k, 805, ids, w);
  for (DType dt : kWeightTypes) {
    HostExperts used;
    auto ex = upload(host, dt, &used);
    auto ref = ref_experts(x, used, ids, w, T, k);
    auto grp = run_experts(x, ex, ids, w, T, k, ops::MoePath::grouped);
    EXPECT_TRUE(all_close(grp, ref, {T, H}, 1e-5, 1e-4)) << dtype_name(dt);
    auto dec = run_experts(x, ex, ids, w, T, k, ops::MoePath::decode);
    EXPECT_TRUE(all_close(dec, ref, {T, H}, 1e-5, 1e-4)) << dtype_name(dt);
  }
}
