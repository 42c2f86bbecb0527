// argmax.cl (row argmax with banned ids) against a CPU reference.
#include <cmath>
#include <limits>
#include <set>

#include "harness/harness.h"
#include "runtime/ops/argmax.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Banned ids count as -inf; ties -> lowest index; NaN skipped; all NaN -> -1.
std::vector<int32_t> ref_argmax(const std::vector<float>& x, int64_t R, int64_t N, const std::vector<int32_t>& banned) {
  std::set<int32_t> ban(banned.begin(), banned.end());
  std::vector<int32_t> out(R);
  for (int64_t r = 0; r < R; ++r) {
    int32_t bi = -1;
    double bv = 0;
    for (int64_t j = 0; j < N; ++j) {
      double v = x[r * N + j];
      if (std::isnan(v)) continue;
      if (ban.count(static_cast<int32_t>(j))) v = -kInf;
      if (bi < 0 || v > bv) {
        bi = static_cast<int32_t>(j);
        bv = v;
      }
    }
    out[r] = bi;
  }
  return out;
}

std::vector<int32_t> run(const std::vector<float>& x, int64_t R, int64_t N, const std::vector<int32_t>& banned) {
  Tensor xt = rt().upload(x, {R, N});
  Tensor bt;
  if (!banned.empty()) bt = rt().upload(banned, {static_cast<int64_t>(banned.size())});
  Guarded idx(rt(), {R}, DType::i32);
  ops::argmax(rt(), xt, banned.empty() ? nullptr : &bt, static_cast<int>(banned.size()), idx);
  return idx.read_i32();
}

void check(const std::vector<float>& x, int64_t R, int64_t N, const std::vector<int32_t>& banned,
           const std::string& what) {
  auto ref = ref_argmax(x, R, N, banned);
  EXPECT_TRUE(all_equal(run(x, R, N, banned), ref, {R})) << what << " R " << R << " N " << N;
}

}  // namespace

TEST(argmax, random_rows) {
  // the LM vocabulary (129280) and awkward widths.
  struct Case {
    int64_t R, N;
  };
  for (auto c : {Case{1, 129280}, Case{3, 129280}, Case{5, 7}, Case{4, 17}, Case{3, 61}, Case{2, 127}, Case{2, 1000}}) {
    auto x = random_floats(c.R * c.N, 301, -20.f, 20.f);
    check(x, c.R, c.N, {}, "random");
  }
}

TEST(argmax, ties_go_to_the_lowest_index) {
  for (int64_t N : {7, 17, 61, 127, 129280}) {
    const int64_t R = 3;
    auto x = random_floats(R * N, 302, -1.f, 1.f);
    // row 0: maxima at the end, the middle and near the start; row 1: all equal; row 2: two maxima
    // handled by different work-items (and, for the wide case, different ban tiles).
    for (int64_t j : {N - 1, N / 2, std::min<int64_t>(3, N - 1)}) x[j] = 5.f;
    for (int64_t j = 0; j < N; ++j) x[N + j] = 2.5f;
    x[2 * N + N - 1] = 7.f;
    x[2 * N + std::min<int64_t>(N - 1, 70000)] = 7.f;
    auto ref = ref_argmax(x, R, N, {});
    EXPECT_EQ(ref[0], std::min<int64_t>(3, N - 1));
    EXPECT_EQ(ref[1], 0);
    EXPECT_TRUE(all_equal(run(x, R, N, {}), ref, {R})) << "N " << N;
  }
}

TEST(argmax, banned_ids) {
  for (int64_t N : {17, 61, 129280}) {
    const int64_t R = 3;
    auto x = random_floats(R * N, 303, -5.f, 5.f);
    auto plain = ref_argmax(x, R, N, {});
    // the maximum of each row banned (plus ids out of range and a duplicate, which are ignored).
    std::vector<int32_t> banned{plain[0], plain[1], plain[2], -1, static_cast<int32_t>(N), plain[0], 1 << 30};
    auto ref = ref_argmax(x, R, N, banned);
    for (int64_t r = 0; r < R; ++r) EXPECT_NE(ref[r], plain[r]);
    EXPECT_TRUE(all_equal(run(x, R, N, banned), ref, {R})) << "N " << N;
    // the first nb entries only: a longer tensor with nb = 1.
    {
      Tensor xt = rt().upload(x, {R, N}), bt = rt().upload(banned, {static_cast<int64_t>(banned.size())});
      Guarded idx(rt(), {R}, DType::i32);
      ops::argmax(rt(), xt, &bt, 1, idx);
      EXPECT_TRUE(all_equal(idx.read_i32(), ref_argmax(x, R, N, {plain[0]}), {R})) << "nb 1, N " << N;
    }
  }
}

TEST(argmax, banned_ids_per_row) {
  // per_row: banned [R, nb], row r's own list (a decode batch's n-gram bans), padded with -1.
  const int64_t R = 5, N = 129280;
  auto x = random_floats(R * N, 304, -5.f, 5.f);
  auto plain = ref_argmax(x, R, N, {});
  const int nb = 3;
  std::vector<int32_t> banned(R * nb, -1);
  banned[0 * nb] = plain[0];                         // row 0: its maximum
  banned[2 * nb] = plain[0];                         // row 2: row 0's maximum (not its own)
  banned[2 * nb + 1] = plain[2];                     //        and its own
  banned[4 * nb + 2] = static_cast<int32_t>(N) + 1;  // row 4: out of range only; rows 1, 3: nothing
  Tensor xt = rt().upload(x, {R, N}), bt = rt().upload(banned, {R, nb});
  Guarded idx(rt(), {R}, DType::i32);
  ops::argmax(rt(), xt, &bt, nb, idx, /*per_row=*/true);
  auto got = idx.read_i32();
  for (int64_t r = 0; r < R; ++r) {
    std::vector<float> row(x.begin() + r * N, x.begin() + (r + 1) * N);
    std::vector<int32_t> own(banned.begin() + r * nb, banned.begin() + (r + 1) * nb);
    EXPECT_EQ(got[r], ref_argmax(row, 1, N, own)[0]) << "row " << r;
  }
  EXPECT_NE(got[0], plain[0]);
  EXPECT_NE(got[2], plain[2]);
  EXPECT_EQ(got[1], plain[1]);
  EXPECT_EQ(got[4], plain[4]);
  Tensor small = rt().upload(banned.data(), {R * nb - 1}, DType::i32);
  EXPECT_THROW(ops::argmax(rt(), xt, &small, nb, idx, true), Error);  // shorter than R * nb
}

TEST(argmax, all_banned_except_one) {
  for (int64_t N : {17, 61, 129280}) {
    const int64_t R = 2;
    auto x = random_floats(R * N, 304, -5.f, 5.f);
    const int32_t keep = static_cast<int32_t>(N * 2 / 3);
    x[keep] = -4.9f;      // row 0: the survivor is low
    x[N + keep] = -kInf;  // row 1: the survivor is -inf, still above nothing: it wins as the lowest -inf
    std::vector<int32_t> banned;
    for (int32_t j = static_cast<int32_t>(N) - 1; j >= 0; --j)  // unsorted order
      if (j != keep) banned.push_back(j);
    auto ref = ref_argmax(x, R, N, banned);
    EXPECT_EQ(ref[0], keep);
    EXPECT_TRUE(all_equal(run(x, R, N, banned), ref, {R})) << "N " << N;
  }
}

TEST(argmax, infinities_and_nan) {
  const int64_t N = 61, R = 5;
  std::vector<float> x(R * N, -kInf);  // row 0: all -inf -> 0 (torch.argmax)
  auto rnd = random_floats(N, 305);
  for (int64_t j = 0; j < N; ++j) {
    x[N + j] = (j % 3 == 0) ? -kInf : rnd[j];        // row 1: some -inf
    x[2 * N + j] = (j == 40) ? kInf : rnd[j];        // row 2: +inf wins
    x[3 * N + j] = (j == 7) ? kNaN : rnd[j] - 10.f;  // row 3: NaN never wins
    x[4 * N + j] = kNaN;                             // row 4: all NaN -> -1
  }
  x[3 * N + 9] = kNaN;
  x[4 * N + 50] = -kInf;  // ... except one -inf, which wins
  auto ref = ref_argmax(x, R, N, {});
  EXPECT_EQ(ref[0], 0);
  EXPECT_EQ(ref[2], 40);
  EXPECT_EQ(ref[4], 50);
  EXPECT_TRUE(all_equal(run(x, R, N, {}), ref, {R}));
  std::vector<float> nan_row(N, kNaN);
  EXPECT_TRUE(all_equal(run(nan_row, 1, N, {}), {-1}, {1}));
}

TEST(argmax, rejects_bad_shapes) {
  Tensor x = rt().empty({3, 17}), idx = rt().empty({3}, DType::i32), idx_bad = rt().empty({2}, DType::i32);
  try {
    ops::argmax(rt(), x, nullptr, 0, idx_bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [3] i32"), std::string::npos) << e.what();
  }
  Tensor x1 = rt().empty({17}), idx_f = rt().empty({3}), ban = rt().upload(std::vector<int32_t>{1, 2}, {2});
  EXPECT_THROW(ops::argmax(rt(), x1, nullptr, 0, idx), Error);
  EXPECT_THROW(ops::argmax(rt(), x, nullptr, 0, idx_f), Error);
  EXPECT_THROW(ops::argmax(rt(), x, nullptr, 2, idx), Error);  // nb > 0 without ids
  EXPECT_THROW(ops::argmax(rt(), x, &ban, 3, idx), Error);     // nb past the tensor
  EXPECT_THROW(ops::argmax(rt(), x, &ban, -1, idx), Error);
}
