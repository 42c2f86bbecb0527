// window.cl (SAM window partition / unpartition+add) and elementwise.cl against CPU references.
#include "harness/harness.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/window.h"

using namespace dsocr;
using namespace dsocr::test;

TEST(window, partition_and_unpartition_add) {
  // awkward grids plus SAM's real ones: 40 -> 42 (tiles), 64 -> 70 (1024 global view).
  struct Case { int B, H, W, C, ws; };
  for (auto c : {Case{1, 7, 7, 3, 14}, Case{2, 17, 9, 5, 4}, Case{1, 40, 40, 17, 14}, Case{1, 64, 64, 8, 14}}) {
    int nh = (c.H + c.ws - 1) / c.ws, nw = (c.W + c.ws - 1) / c.ws;
    Shape xs{c.B, c.H, c.W, c.C}, ws{c.B * nh * nw, c.ws, c.ws, c.C};
    auto x = random_floats(shape_numel(xs), 81);
    Tensor xt = rt().upload(x, xs);
    Guarded win(rt(), ws);
    ops::window_partition(rt(), xt, c.ws, win);
    std::vector<double> ref(shape_numel(ws), 0.0);
    for (int b = 0; b < c.B; ++b)
      for (int h = 0; h < nh * c.ws; ++h)
        for (int w = 0; w < nw * c.ws; ++w)
          for (int ch = 0; ch < c.C; ++ch) {
            int wi = (b * nh + h / c.ws) * nw + w / c.ws, p = (h % c.ws) * c.ws + w % c.ws;
            ref[(size_t(wi) * c.ws * c.ws + p) * c.C + ch] =
                (h < c.H && w < c.W) ? x[((size_t(b) * c.H + h) * c.W + w) * c.C + ch] : 0.0;
          }
    auto got = win.read_f32();
    EXPECT_TRUE(all_close(got, ref, ws, 0, 0)) << c.H << "x" << c.W;
    // unpartition+add of the windows onto a base gives base + x exactly.
    auto base = random_floats(shape_numel(xs), 82);
    Tensor acc = rt().upload(base, xs);
    ops::window_unpartition_add(rt(), win.tensor(), c.ws, acc);
    std::vector<double> sum(base.size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = double(float(base[i] + x[i]));
    EXPECT_TRUE(all_close(rt().read_f32(acc), sum, xs, 0, 0));
  }
}

TEST(window, rejects_bad_shapes) {
  Tensor x = rt().empty({1, 7, 7, 3}), win = rt().empty({1, 14, 14, 4});
  EXPECT_THROW(ops::window_partition(rt(), x, 14, win), Error);
}

TEST(elementwise, add_and_broadcast) {
  for (Shape s : {Shape{7}, Shape{17, 61}, Shape{1, 64, 64, 77}}) {
    auto a = random_floats(shape_numel(s), 91), b = random_floats(shape_numel(s), 92);
    Tensor at = rt().upload(a, s), bt = rt().upload(b, s);
    Guarded y(rt(), s);
    ops::add(rt(), at, bt, y);
    std::vector<double> ref(a.size());
    for (size_t i = 0; i < a.size(); ++i) ref[i] = float(a[i] + b[i]);
    EXPECT_TRUE(all_close(y.read_f32(), ref, s, 0, 0));
    int64_t nb = s.back();
    Tensor bb = rt().upload(std::vector<float>(b.begin(), b.begin() + nb), {nb});
    Guarded y2(rt(), s);
    ops::add_broadcast(rt(), at, bb, y2);
    for (size_t i = 0; i < a.size(); ++i) ref[i] = float(a[i] + b[i % nb]);
    EXPECT_TRUE(all_close(y2.read_f32(), ref, s, 0, 0));
  }
  Tensor a = rt().empty({6}), b = rt().empty({4}), y = rt().empty({6});
  EXPECT_THROW(ops::add_broadcast(rt(), a, b, y), Error);
}

#include "runtime/ops/layout.h"

TEST(layout, nchw_nhwc_round_trip) {
  for (Shape s : {Shape{1, 7, 3, 5}, Shape{2, 17, 9, 4}, Shape{1, 768, 8, 8}}) {
    int64_t N = s[0], C = s[1], H = s[2], W = s[3];
    auto x = random_floats(shape_numel(s), 101);
    Tensor xt = rt().upload(x, s);
    Guarded y(rt(), {N, H, W, C});
    ops::nchw_to_nhwc(rt(), xt, y);
    std::vector<double> ref(x.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < H * W; ++p) ref[(n * H * W + p) * C + c] = x[(n * C + c) * H * W + p];
    auto got = y.read_f32();
    EXPECT_TRUE(all_close(got, ref, {N, H, W, C}, 0, 0));
    Guarded back(rt(), s);
    ops::nhwc_to_nchw(rt(), y.tensor(), back);
    EXPECT_TRUE(all_close(back.read_f32(), to_double(x), s, 0, 0));
  }
  Tensor x = rt().empty({1, 2, 3, 4}), y = rt().empty({1, 2, 3, 4});
  EXPECT_THROW(ops::nchw_to_nhwc(rt(), x, y), Error);
}

TEST(elementwise, copy_rows) {
  // 5 rows of 7 out of a [5,17] source at column 3 into a [9,11] destination at row 2, column 1.
  auto x = random_floats(5 * 17, 93), y0 = random_floats(9 * 11, 94);
  Tensor xt = rt().upload(x, {5, 17}), yt = rt().upload(y0, {9, 11});
  ops::copy_rows(rt(), xt, 3, 17, yt, 2 * 11 + 1, 11, 5, 7);
  std::vector<double> ref(y0.begin(), y0.end());
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 7; ++c) ref[(2 + r) * 11 + 1 + c] = x[r * 17 + 3 + c];
  EXPECT_TRUE(all_close(rt().read_f32(yt), ref, {9, 11}, 0, 0));
  EXPECT_THROW(ops::copy_rows(rt(), xt, 3, 17, yt, 5 * 11, 11, 5, 7), Error);  // past the end of y
}

TEST(elementwise, fill_uniform) {
  Guarded y(rt(), {1000, 17});
  ops::fill_uniform(rt(), y, 7, 0.5f, 0.25f);
  auto v = y.read_f32();
  double mean = 0;
  for (float f : v) {
    EXPECT_GE(f, 0.25f);
    EXPECT_LT(f, 0.75f);
    mean += f;
  }
  mean /= v.size();
  EXPECT_NEAR(mean, 0.5, 0.01);
  // deterministic: the same seed gives the same values, another seed others
  Guarded y2(rt(), {1000, 17}), y3(rt(), {1000, 17});
  ops::fill_uniform(rt(), y2, 7, 0.5f, 0.25f);
  ops::fill_uniform(rt(), y3, 8, 0.5f, 0.25f);
  EXPECT_EQ(y2.read_f32(), v);
  EXPECT_NE(y3.read_f32(), v);
}
