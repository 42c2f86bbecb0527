// sdpa_decode_batch (kernels/sdpa_decode.cl): several sequences' decode queries against their own
// rows of one KV cache in one launch. Each sequence's output must be bit for bit the single-
// sequence sdpa() decode of the same views (the batched decoder's exactness rests on it), with key
// counts chosen so that the sequences get different splits; and close to the double reference.
// Part of the test_sdpa executable.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "harness/harness.h"
#include "runtime/half.h"
#include "runtime/ops/rope.h"
#include "runtime/ops/sdpa.h"
#include "sdpa_test_util.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// The rows of cache [rows,2,Hkv,D] as values (f16/bf16 rounded as stored), and the device tensor.
Tensor make_cache(Runtime& r, DType dt, int64_t rows, int64_t Hkv, int64_t D, std::vector<float>& values) {
  values = random_floats(rows * 2 * Hkv * D, 31, -2.f, 2.f);
  if (dt == DType::f32) return r.upload(values, {rows, 2, Hkv, D});
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dt == DType::f16 ? float_to_half(values[i]) : float_to_bf16(values[i]);
    values[i] = dt == DType::f16 ? half_to_float(bits[i]) : bf16_to_float(bits[i]);
  }
  return r.upload(bits.data(), {rows, 2, Hkv, D}, dt);
}

void run_batch(DType dt, int64_t H, int64_t Hkv, int64_t D, bool mixed_splits) {
  Runtime& r = rt();
  const std::vector<int64_t> first_row = {0, 40, 700, 900, 2500}, n_keys = {31, 1, 150, 1500, 64};
  const int64_t B = static_cast<int64_t>(first_row.size()), rows = 2600, KV = Hkv * D;
  const int64_t Ntot = H + 2 * Hkv, q_sb = Ntot * D, o_sb = H * D + 8;  // a padded output row
  std::vector<float> cache_v;
  Tensor cache = make_cache(r, dt, rows, Hkv, D, cache_v);
  auto qd = random_floats(B * q_sb, 32);
  Tensor q = r.upload(qd, {1, B, Ntot, D});  // as the decoder's qkv: one token of B rows
  const float scale = 0.09f;

  ops::SdpaDecodeBatch plan = ops::sdpa_decode_batch_plan(r, H, D, first_row, n_keys);
  const std::vector<int32_t> seq = r.read_i32(plan.seq);
  std::vector<int32_t> splits;
  for (int64_t b = 0; b < B; ++b) splits.push_back(seq[b * 5 + 2]);
  if (mixed_splits)  // few rows: want >= 2 splits on any device, and the 1-key sequence gets 1
    EXPECT_NE(*std::min_element(splits.begin(), splits.end()), *std::max_element(splits.begin(), splits.end()))
        << "the case should give the sequences different splits";
  Tensor out = r.upload(std::vector<float>(B * o_sb, 0.f), {B, o_sb});
  ops::sdpa_decode_batch(r, q, q_sb, cache, plan, out, o_sb, scale);
  const std::vector<float> got = r.read_f32(out);

  for (int64_t b = 0; b < B; ++b) {
    // The same sequence alone, through sdpa() with the views the single-sequence decoder uses.
    ops::AttnView qv = ops::AttnView::heads(q, 0, H);
    qv.offset = static_cast<size_t>(b * q_sb);
    qv.B = 1;
    qv.N = 1;
    ops::AttnView k{cache, static_cast<size_t>(first_row[b] * 2 * KV), 1, Hkv, n_keys[b], D, rows * 2 * KV, D, 2 * KV};
    ops::AttnView v = k;
    v.offset += static_cast<size_t>(KV);
    Tensor alone = r.empty({1, 1, H, D});
    ops::SdpaParams p;
    p.scale = scale;
    p.causal = true;
    ops::sdpa(r, qv, k, v, ops::AttnView::bnhd(alone), p);
    const std::vector<float> want = r.read_f32(alone);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data() + b * o_sb, H * D * sizeof(float)))
        << dtype_name(dt) << " sequence " << b << " (" << n_keys[b] << " keys, " << splits[b] << " splits)";

    std::vector<double> qh(H * D), kh(Hkv * n_keys[b] * D), vh(kh.size());
    for (int64_t i = 0; i < H * D; ++i) qh[i] = qd[b * q_sb + i];
    for (int64_t g = 0; g < Hkv; ++g)
      for (int64_t j = 0; j < n_keys[b]; ++j)
        for (int64_t d = 0; d < D; ++d) {
          const int64_t row = (first_row[b] + j) * 2 * KV + g * D + d;
          kh[(g * n_keys[b] + j) * D + d] = cache_v[row];
          vh[(g * n_keys[b] + j) * D + d] = cache_v[row + KV];
        }
    auto ref = ref_sdpa(qh, kh, vh, 1, H, Hkv, 1, n_keys[b], D, scale, true);
    std::vector<float> row(got.begin() + b * o_sb, got.begin() + b * o_sb + H * D);
    EXPECT_TRUE(all_close(row, ref, {1, H, 1, D}, kAtol, kRtol)) << dtype_name(dt) << " sequence " << b;
  }
  // The output rows' padding is untouched.
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = H * D; i < o_sb; ++i) EXPECT_EQ(got[b * o_sb + i], 0.f);
}

}  // namespace

TEST(sdpa, decode_batch_is_each_sequence_alone) {
  run_batch(DType::f16, 2, 1, 128, true);  // grouped KV heads, the LM's head dim
  run_batch(DType::f32, 4, 2, 64, false);
  run_batch(DType::bf16, 10, 10, 128, false);  // the full-size LM's heads
}

TEST(sdpa, decode_batch_rejects_bad_inputs) {
  Runtime& r = rt();
  expect_error_containing([&] { ops::sdpa_decode_batch_plan(r, 4, 64, {0, 1}, {3}); }, "2 first rows for 1 key counts");
  expect_error_containing([&] { ops::sdpa_decode_batch_plan(r, 4, 64, {0}, {0}); }, "sequence 0 has 0 keys");
  expect_error_containing([&] { ops::sdpa_decode_batch_plan(r, 4, 256, {0}, {3}); }, "D = 256");
  auto plan = ops::sdpa_decode_batch_plan(r, 4, 64, {0, 5}, {3, 4});
  Tensor q = r.empty({1, 2, 8, 64}), out = r.empty({2, 256});
  Tensor bad_cache = r.empty({16, 3, 2, 64});
  expect_error_containing([&] { ops::sdpa_decode_batch(r, q, 8 * 64, bad_cache, plan, out, 256, 1.f); },
                          "expected [rows,2,Hkv,64]");
  Tensor cache = r.empty({16, 2, 2, 64});
  expect_error_containing([&] { ops::sdpa_decode_batch(r, q, 8 * 64, cache, plan, out, 100, 1.f); },
                          "must be f32 holding 2 rows of 4x64");
  Tensor short_cache = r.empty({8, 2, 2, 64});  // sequence 1 needs rows 5..8
  expect_error_containing([&] { ops::sdpa_decode_batch(r, q, 8 * 64, short_cache, plan, out, 256, 1.f); },
                          "needs 9 cache rows, the cache has 8");
}

namespace {

std::vector<uint8_t> raw_bytes(Runtime& r, const Tensor& t) {
  std::vector<uint8_t> b(t.bytes());
  r.read(t, b.data(), b.size());
  return b;
}

// A cache's values as floats (f16 / bf16 widened).
std::vector<float> cache_values(Runtime& r, const Tensor& t) {
  if (t.dtype == DType::f32) return r.read_f32(t);
  std::vector<uint16_t> bits(t.numel());
  r.read(t, bits.data(), bits.size() * 2);
  std::vector<float> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i)
    v[i] = t.dtype == DType::f16 ? half_to_float(bits[i]) : bf16_to_float(bits[i]);
  return v;
}

// The attention prologue in the launch (DecodeAppend) against rope_kv_append + the plain launch:
// the same output and the same cache, bit for bit; q left raw.
void run_append(DType dt, int64_t H, int64_t Hkv, int64_t D) {
  Runtime& r = rt();
  const std::vector<int64_t> first_row = {0, 40, 700, 2500}, n_keys = {31, 1, 1500, 64};
  const int64_t B = static_cast<int64_t>(first_row.size()), rows = 2600, Ntot = H + 2 * Hkv, q_sb = Ntot * D;
  std::vector<float> cache_v;
  Tensor fused_cache = make_cache(r, dt, rows, Hkv, D, cache_v);
  Tensor plain_cache = r.clone(fused_cache, "plain cache");
  const std::vector<float> qd = random_floats(B * q_sb, 41);
  Tensor q_fused = r.upload(qd, {1, B, Ntot, D}), q_plain = r.upload(qd, {1, B, Ntot, D});
  std::vector<int32_t> pos, new_rows;
  for (int64_t b = 0; b < B; ++b) {
    pos.push_back(static_cast<int32_t>(n_keys[b] - 1 + 3 * b));  // positions need not be cache rows
    new_rows.push_back(static_cast<int32_t>(first_row[b] + n_keys[b] - 1));
  }
  Tensor positions = r.upload(pos.data(), {B}, DType::i32), rowt = r.upload(new_rows.data(), {B}, DType::i32);
  const ops::RopeFreqs freqs = ops::RopeFreqs::make(r, D, 10000.f);
  ops::SdpaDecodeBatch plan = ops::sdpa_decode_batch_plan(r, H, D, first_row, n_keys);
  const float scale = 0.09f;

  Tensor out_fused = r.empty({B, H * D}), out_plain = r.empty({B, H * D});
  const ops::DecodeAppend append{positions, freqs.inv_freq};
  ops::sdpa_decode_batch(r, q_fused, q_sb, fused_cache, plan, out_fused, H * D, scale, &append);
  ops::rope_kv_append(r, q_plain, H, Hkv, positions, freqs, plain_cache, 0, &rowt);
  ops::sdpa_decode_batch(r, q_plain, q_sb, plain_cache, plan, out_plain, H * D, scale);
  const std::string what = fmt::format("{} H={} Hkv={} D={}", dtype_name(dt), H, Hkv, D);
  EXPECT_EQ(r.read_f32(out_fused), r.read_f32(out_plain)) << what;
  EXPECT_EQ(raw_bytes(r, fused_cache), raw_bytes(r, plain_cache)) << what << ": the caches";
  EXPECT_EQ(r.read_f32(q_fused), qd) << what << ": q is left raw";
  // and the new rows changed: the comparison above is not of two untouched caches
  const std::vector<float> after = cache_values(r, fused_cache);
  for (int64_t b = 0; b < B; ++b)
    EXPECT_NE(after[new_rows[b] * 2 * Hkv * D], cache_v[new_rows[b] * 2 * Hkv * D]) << what << " sequence " << b;
}

}  // namespace

TEST(sdpa, decode_batch_with_the_prologue_is_rope_kv_append_then_attention) {
  run_append(DType::f16, 2, 1, 128);  // grouped KV heads: both heads' work-groups write the row
  run_append(DType::f32, 4, 2, 64);
  run_append(DType::bf16, 10, 10, 128);
  run_append(DType::f32, 3, 3, 6);  // a head dim that is not a multiple of 4 (DQ padding)
}

TEST(sdpa, decode_batch_prologue_rejects_bad_inputs) {
  Runtime& r = rt();
  auto plan = ops::sdpa_decode_batch_plan(r, 4, 64, {0, 5}, {3, 4});
  Tensor cache = r.empty({16, 2, 2, 64}), out = r.empty({2, 256});
  Tensor qkv = r.empty({1, 2, 8, 64}), q_only = r.empty({1, 2, 4, 64});
  const int32_t p2[2] = {2, 3};
  Tensor pos = r.upload(p2, {2}, DType::i32), pos1 = r.upload(p2, {1}, DType::i32);
  const ops::RopeFreqs f = ops::RopeFreqs::make(r, 64, 10000.f), f32 = ops::RopeFreqs::make(r, 32, 10000.f);
  const ops::DecodeAppend ok{pos, f.inv_freq}, short_pos{pos1, f.inv_freq}, bad_freq{pos, f32.inv_freq};
  expect_error_containing([&] { ops::sdpa_decode_batch(r, q_only, 4 * 64, cache, plan, out, 256, 1.f, &ok); },
                          "must hold 2 rows of 4 q, 2 k and 2 v heads of 64");
  expect_error_containing([&] { ops::sdpa_decode_batch(r, qkv, 8 * 64, cache, plan, out, 256, 1.f, &short_pos); },
                          "positions");
  expect_error_containing([&] { ops::sdpa_decode_batch(r, qkv, 8 * 64, cache, plan, out, 256, 1.f, &bad_freq); },
                          "inv_freq");
}
