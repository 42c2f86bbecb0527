// embedding.cl (row gather from an f32 or f16 table) against a CPU reference.
#include "harness/harness.h"
#include "runtime/ops/embedding.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// table values as the device sees them (fp16 already rounded); out-of-range ids give zero rows.
std::vector<double> ref_gather(const std::vector<float>& table, int64_t V, int64_t C, const std::vector<int32_t>& ids) {
  std::vector<double> y(ids.size() * C, 0.0);
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t] >= 0 && ids[t] < V)
      for (int64_t c = 0; c < C; ++c) y[t * C + c] = table[ids[t] * C + c];
  return y;
}

void run_case(int64_t V, int64_t C, bool f16, const std::vector<int32_t>& ids, uint32_t seed) {
  auto table = random_floats(V * C, seed, -3.f, 3.f);
  Tensor tt;
  if (f16) {
    std::vector<uint16_t> h(table.size());
    for (size_t i = 0; i < h.size(); ++i) {
      h[i] = float_to_half(table[i]);
      table[i] = half_to_float(h[i]);
    }
    tt = rt().upload(h.data(), {V, C}, DType::f16);
  } else {
    tt = rt().upload(table, {V, C});
  }
  const int64_t T = static_cast<int64_t>(ids.size());
  Tensor it = rt().upload(ids, {T});
  Guarded y(rt(), {T, C});
  ops::embedding(rt(), tt, it, y);
  EXPECT_TRUE(all_close(y.read_f32(), ref_gather(table, V, C, ids), {T, C}, 0, 0))
      << "V " << V << " C " << C << (f16 ? " f16" : " f32");
}

}  // namespace

TEST(embedding, f32_and_f16_tables) {
  for (bool f16 : {false, true}) {
    // a 1280-wide table as the LM's (V reduced), ids including 0, V-1 and repeats.
    auto ids = random_ints(61, 201, 0, 999);
    ids[0] = 0;
    ids[7] = 999;
    ids[8] = 999;
    ids[30] = ids[31];
    run_case(1000, 1280, f16, ids, 202);
    // awkward sizes.
    run_case(17, 61, f16, {0, 16, 3, 3, 16, 0, 9}, 203);
    run_case(17, 61, f16, {5}, 204);
  }
}

TEST(embedding, out_of_range_ids_give_zero_rows) {
  for (bool f16 : {false, true}) run_case(17, 61, f16, {-1, 0, 17, 16, 2147483647, -2147483647 - 1, 4}, 205);
}

TEST(embedding, rejects_bad_shapes) {
  Tensor table = rt().empty({17, 61}), ids = rt().upload(std::vector<int32_t>(5, 0), {5});
  Tensor y_bad = rt().empty({5, 60}), y = rt().empty({5, 61});
  try {
    ops::embedding(rt(), table, ids, y_bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [5,61] f32"), std::string::npos) << e.what();
  }
  Tensor ids_f = rt().empty({5}), ids_2d = rt().upload(std::vector<int32_t>(5, 0), {1, 5});
  EXPECT_THROW(ops::embedding(rt(), table, ids_f, y), Error);
  EXPECT_THROW(ops::embedding(rt(), table, ids_2d, y), Error);
  Tensor table_1d = rt().empty({61}), table_i32 = rt().empty({17, 61}, DType::i32);
  EXPECT_THROW(ops::embedding(rt(), table_1d, ids, y), Error);
  EXPECT_THROW(ops::embedding(rt(), table_i32, ids, y), Error);
}
