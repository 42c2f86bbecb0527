// embedding.cl (row gather from an f32, f16 or bf16 table) against a CPU reference.
#include <cstring>

#include "harness/harness.h"
#include "runtime/ops/embedding.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// table values as the device sees them (fp16 / bf16 already rounded); out-of-range ids give zero rows.
std::vector<double> ref_gather(const std::vector<float>& table, int64_t V, int64_t C, const std::vector<int32_t>& ids) {
  std::vector<double> y(ids.size() * C, 0.0);
  for (size_t t = 0; t < ids.size(); ++t)
    if (ids[t] >= 0 && ids[t] < V)
      for (int64_t c = 0; c < C; ++c) y[t * C + c] = table[ids[t] * C + c];
  return y;
}

void run_case(int64_t V, int64_t C, DType dt, const std::vector<int32_t>& ids, uint32_t seed) {
  auto table = random_floats(V * C, seed, -3.f, 3.f);
  Tensor tt;
  if (dt == DType::f32) {
    tt = rt().upload(table, {V, C});
  } else {
    // rounded to nearest even on the host; the device must return these values exactly.
    std::vector<uint16_t> h(table.size());
    for (size_t i = 0; i < h.size(); ++i) {
      h[i] = dt == DType::f16 ? float_to_half(table[i]) : float_to_bf16(table[i]);
      table[i] = dt == DType::f16 ? half_to_float(h[i]) : bf16_to_float(h[i]);
    }
    tt = rt().upload(h.data(), {V, C}, dt);
  }
  const int64_t T = static_cast<int64_t>(ids.size());
  Tensor it = rt().upload(ids, {T});
  Guarded y(rt(), {T, C});
  ops::embedding(rt(), tt, it, y);
  EXPECT_TRUE(all_close(y.read_f32(), ref_gather(table, V, C, ids), {T, C}, 0, 0))
      << "V " << V << " C " << C << " " << dtype_name(dt);
}

constexpr DType kTableTypes[] = {DType::f32, DType::f16, DType::bf16};

}  // namespace

TEST(embedding, f32_f16_and_bf16_tables) {
  for (DType dt : kTableTypes) {
    // a 1280-wide table as the LM's (V reduced), ids including 0, V-1 and repeats.
    auto ids = random_ints(61, 201, 0, 999);
    ids[0] = 0;
    ids[7] = 999;
    ids[8] = 999;
    ids[30] = ids[31];
    run_case(1000, 1280, dt, ids, 202);
    // awkward sizes.
    run_case(17, 61, dt, {0, 16, 3, 3, 16, 0, 9}, 203);
    run_case(17, 61, dt, {5}, 204);
  }
}

TEST(embedding, out_of_range_ids_give_zero_rows) {
  for (DType dt : kTableTypes) run_case(17, 61, dt, {-1, 0, 17, 16, 2147483647, -2147483647 - 1, 4}, 205);
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
  try {
    ops::embedding(rt(), table_i32, ids, y);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("table is [17,61] i32, expected [V,C] f32, f16 or bf16"), std::string::npos)
        << e.what();
  }
}

TEST(embedding, bf16_table_special_values) {
  // bf16 bits are widened exactly, whatever they hold: -0, subnormals, ±inf, NaN, extremes.
  const std::vector<uint16_t> bits = {0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x7f7f, 0xff7f,
                                      0x7f80, 0xff80, 0x7fc0, 0x3f80, 0xbf81, 0x4049};
  const int64_t V = 1, C = static_cast<int64_t>(bits.size());
  Tensor tt = rt().upload(bits.data(), {V, C}, DType::bf16);
  Tensor it = rt().upload(std::vector<int32_t>{0, 0, 1}, {3});
  Guarded y(rt(), {3, C});
  ops::embedding(rt(), tt, it, y);
  auto out = y.read_f32();
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t c = 0; c < C; ++c) {
      uint32_t got;
      std::memcpy(&got, &out[t * C + c], 4);
      uint32_t want = t < 2 ? static_cast<uint32_t>(bits[c]) << 16 : 0u;  // id 1 is out of range: zeros
      EXPECT_EQ(got, want) << "t " << t << " c " << c;
    }
}
