// rel_pos.cl against a double-precision reference, alone (awkward grids, head dims and strided q
// views, the kernel's tile boundaries, SAM's real shapes) and feeding sdpa as SAM does: one window
// block shape (14x14 windows, tables [27,64]) and one global block (64x64 grid, tables [127,64]).
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "harness/harness.h"
#include "runtime/ops/rel_pos.h"
#include "runtime/ops/sdpa.h"
#include "sdpa_test_util.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// rel_h [BH,N,kh], rel_w [BH,N,kw] from q [BH,N,D] (dense double) and the tables.
void ref_rel_pos(const std::vector<double>& q, const std::vector<float>& tab_h, const std::vector<float>& tab_w,
                 int64_t BH, int64_t kh, int64_t kw, int64_t D, std::vector<double>& rel_h,
                 std::vector<double>& rel_w) {
  const int64_t N = kh * kw;
  rel_h.assign(BH * N * kh, 0.0);
  rel_w.assign(BH * N * kw, 0.0);
  for (int64_t bh = 0; bh < BH; ++bh)
    for (int64_t n = 0; n < N; ++n) {
      const double* qn = &q[(bh * N + n) * D];
      int64_t y = n / kw, x = n % kw;
      for (int64_t ky = 0; ky < kh; ++ky) {
        const float* t = &tab_h[(y - ky + kh - 1) * D];
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qn[d] * t[d];
        rel_h[(bh * N + n) * kh + ky] = s;
      }
      for (int64_t kx = 0; kx < kw; ++kx) {
        const float* t = &tab_w[(x - kx + kw - 1) * D];
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qn[d] * t[d];
        rel_w[(bh * N + n) * kw + kx] = s;
      }
    }
}

// out [BH,N,D] = softmax(scale q k^T + rel_h[.., j/kw] + rel_w[.., j%kw]) v, one head per bh.
std::vector<double> ref_attention(const std::vector<double>& q, const std::vector<double>& k,
                                  const std::vector<double>& v, const std::vector<double>& rel_h,
                                  const std::vector<double>& rel_w, int64_t BH, int64_t kh, int64_t kw, int64_t D,
                                  double scale) {
  const int64_t N = kh * kw;
  std::vector<double> out(BH * N * D, 0.0), s(N);
  for (int64_t bh = 0; bh < BH; ++bh) {
    const double* kb = &k[bh * N * D];
    const double* vb = &v[bh * N * D];
    for (int64_t i = 0; i < N; ++i) {
      const double* qi = &q[(bh * N + i) * D];
      const double* rh = &rel_h[(bh * N + i) * kh];
      const double* rw = &rel_w[(bh * N + i) * kw];
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < N; ++j) {
        const double* kj = kb + j * D;
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += qi[d] * kj[d];
        s[j] = acc * scale + rh[j / kw] + rw[j % kw];
        m = std::max(m, s[j]);
      }
      double l = 0;
      double* oi = &out[(bh * N + i) * D];
      for (int64_t j = 0; j < N; ++j) {
        double p = std::exp(s[j] - m);
        l += p;
        const double* vj = vb + j * D;
        for (int64_t d = 0; d < D; ++d) oi[d] += p * vj[d];
      }
      for (int64_t d = 0; d < D; ++d) oi[d] /= l;
    }
  }
  return out;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// How q is laid out: dense [B,H,N,D]; part 0 of a fused [B,N,3,H,D]; heads [1, 1+H) of a
// [B,N,H+2,D] (an offset and a row stride that is not a multiple of 3H*D); dense but one element
// into a flat buffer (an odd offset: no row is 16-byte aligned).
enum class QLayout { dense, fused, heads, shifted };

// rel_pos_terms on a grid, q in the given layout.
void check_terms(int64_t B, int64_t H, int64_t kh, int64_t kw, int64_t D, QLayout layout, uint32_t seed) {
  SCOPED_TRACE(fmt::format("B={} H={} grid {}x{} D={} layout={}", B, H, kh, kw, D, static_cast<int>(layout)));
  Runtime& r = rt();
  const int64_t N = kh * kw;
  std::vector<float> qd;
  ops::AttnView qv;
  if (layout == QLayout::fused) {
    qd = random_floats(B * N * 3 * H * D, seed, -1.f, 1.f);
    qv = ops::AttnView::fused(r.upload(qd, {B, N, 3, H, D}), 0);
  } else if (layout == QLayout::shifted) {
    qd = random_floats(B * H * N * D + 1, seed, -1.f, 1.f);
    qv = ops::AttnView{r.upload(qd, {B * H * N * D + 1}), 1, B, H, N, D, H * N * D, N * D, D};
  } else if (layout == QLayout::heads) {
    qd = random_floats(B * N * (H + 2) * D, seed, -1.f, 1.f);
    qv = ops::AttnView::heads(r.upload(qd, {B, N, H + 2, D}), 1, H);
  } else {
    qd = random_floats(B * H * N * D, seed, -1.f, 1.f);
    qv = ops::AttnView::bhnd(r.upload(qd, {B, H, N, D}));
  }
  auto th = random_floats((2 * kh - 1) * D, seed + 1, -1.f, 1.f), tw = random_floats((2 * kw - 1) * D, seed + 2);
  Tensor tht = r.upload(th, {2 * kh - 1, D}), twt = r.upload(tw, {2 * kw - 1, D});
  Guarded rh(r, {B, H, N, kh}), rw(r, {B, H, N, kw});
  ops::rel_pos_terms(r, qv, tht, twt, static_cast<int>(kh), static_cast<int>(kw), rh, rw);
  std::vector<double> ref_h, ref_w;
  ref_rel_pos(gather(qd, qv), th, tw, B * H, kh, kw, D, ref_h, ref_w);
  EXPECT_TRUE(all_close(rh.read_f32(), ref_h, {B, H, N, kh}, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(rw.read_f32(), ref_w, {B, H, N, kw}, 1e-5, 1e-5));
}

// A SAM attention block: qkv [B,N,3,H,D] -> rel terms -> sdpa -> out [B,N,H,D], all on device.
void check_sam_block(int64_t B, int64_t H, int64_t g, int64_t D, uint32_t seed) {
  SCOPED_TRACE(fmt::format("SAM block B={} H={} grid {}x{} D={}", B, H, g, g, D));
  Runtime& r = rt();
  const int64_t N = g * g, L = 2 * g - 1;
  auto qkvd = random_floats(B * N * 3 * H * D, seed, -1.f, 1.f);
  Tensor qkv = r.upload(qkvd, {B, N, 3, H, D});
  auto qv = ops::AttnView::fused(qkv, 0), kv = ops::AttnView::fused(qkv, 1), vv = ops::AttnView::fused(qkv, 2);
  auto th = random_floats(L * D, seed + 1, -1.f, 1.f), tw = random_floats(L * D, seed + 2, -1.f, 1.f);
  Tensor tht = r.upload(th, {L, D}), twt = r.upload(tw, {L, D});

  Guarded rh(r, {B, H, N, g}), rw(r, {B, H, N, g}), y(r, {B, N, H, D});
  ops::rel_pos_terms(r, qv, tht, twt, static_cast<int>(g), static_cast<int>(g), rh, rw);
  ops::SdpaParams p;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  p.rel_pos = ops::RelPosBias{rh.tensor(), rw.tensor()};
  auto ov = ops::AttnView::bnhd(y);
  ops::sdpa(r, qv, kv, vv, ov, p);

  auto q = gather(qkvd, qv);
  std::vector<double> ref_h, ref_w;
  ref_rel_pos(q, th, tw, B * H, g, g, D, ref_h, ref_w);
  EXPECT_TRUE(all_close(rh.read_f32(), ref_h, {B, H, N, g}, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(rw.read_f32(), ref_w, {B, H, N, g}, 1e-5, 1e-5));
  auto ref = ref_attention(q, gather(qkvd, kv), gather(qkvd, vv), ref_h, ref_w, B * H, g, g, D, p.scale);
  EXPECT_TRUE(all_close(to_float(gather(y.read_f32(), ov)), ref, {B, H, N, D}, 1e-5, 1e-4));
}

}  // namespace

TEST(rel_pos, terms_awkward_grids) {
  uint32_t seed = 1;
  for (auto [kh, kw] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {5, 7}, {14, 14}, {17, 3}, {3, 5}, {1, 9}, {9, 1}})
    for (int64_t D : {7, 64})
      for (QLayout layout : {QLayout::dense, QLayout::fused, QLayout::heads, QLayout::shifted})
        check_terms(2, 3, kh, kw, D, layout, seed++);
}

TEST(rel_pos, terms_max_head_dim) { check_terms(1, 2, 9, 11, 128, QLayout::dense, 99); }

TEST(rel_pos, terms_any_head_dim) {
  // D is walked in chunks: not a chunk multiple, and past the old limit of 128.
  uint32_t seed = 200;
  for (int64_t D : {1, 17, 80, 96, 129, 200}) check_terms(2, 2, 6, 9, D, QLayout::fused, seed++);
}

TEST(rel_pos, terms_tile_boundaries) {
  // Sides around the kernel's tile shapes (chosen by max(kh, kw): <= 16, <= 40, <= 64, <= 80,
  // larger) and grids needing several tiles along the keys and positions (sides over 128).
  uint32_t seed = 300;
  for (auto [kh, kw] : {std::pair<int64_t, int64_t>{16, 16},
                        {16, 17},
                        {17, 16},
                        {32, 31},
                        {33, 33},
                        {40, 40},
                        {41, 20},
                        {80, 3},
                        {3, 81},
                        {130, 3},
                        {2, 131}})
    check_terms(1, 2, kh, kw, 19, QLayout::heads, seed++);
}

TEST(rel_pos, terms_real_shapes) {
  // SAM's windows (14x14) and global grids (40x40 at 640, 64x64 at 1024), head dims 64, 80, 96.
  uint32_t seed = 400;
  for (int64_t g : {14, 40, 64})
    for (int64_t D : {64, 80, 96}) check_terms(g == 14 ? 3 : 1, 2, g, g, D, QLayout::fused, seed++);
}

TEST(rel_pos, sam_window_block) {
  // Two 14x14 windows x 12 heads, D=64, tables [27,64].
  check_sam_block(2, 12, 14, 64, 7);
}

TEST(rel_pos, sam_global_block) {
  // A global block at 1024x1024: 64x64 grid = 4096 tokens, tables [127,64], one head.
  check_sam_block(1, 1, 64, 64, 8);
}

TEST(rel_pos, rejects_bad_shapes) {
  Runtime& r = rt();
  auto z = [&](Shape s) { return r.upload(std::vector<float>(shape_numel(s), 0.f), s); };
  auto q = ops::AttnView::bhnd(z({1, 2, 35, 64}));
  Tensor th = z({13, 64}), tw = z({9, 64}), rh = z({1, 2, 35, 7}), rw = z({1, 2, 35, 5});
  auto expect_msg = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "expected dsocr::Error mentioning '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  ops::rel_pos_terms(r, q, th, tw, 7, 5, rh, rw);  // the good call works
  r.finish();
  Tensor th_bad = z({27, 64});
  expect_msg([&] { ops::rel_pos_terms(r, q, th_bad, tw, 7, 5, rh, rw); }, "tab_h is f32 [27,64], expected f32 [13,64]");
  expect_msg([&] { ops::rel_pos_terms(r, q, th, tw, 5, 7, rh, rw); }, "tab_h");
  expect_msg([&] { ops::rel_pos_terms(r, q, th, tw, 6, 6, rh, rw); }, "has 35 tokens, expected the grid 6x6");
  Tensor rw_bad = z({1, 2, 35, 7});
  expect_msg([&] { ops::rel_pos_terms(r, q, th, tw, 7, 5, rh, rw_bad); }, "rel_w");
  // D over 128 used to be refused; it is supported now (checked numerically in terms_any_head_dim).
  auto q129 = ops::AttnView::bhnd(z({1, 1, 4, 129}));
  Tensor t3 = z({3, 129}), o = z({1, 1, 4, 2}), o2 = z({1, 1, 4, 2});
  EXPECT_NO_THROW(ops::rel_pos_terms(r, q129, t3, t3, 2, 2, o, o2));
  r.finish();
}
