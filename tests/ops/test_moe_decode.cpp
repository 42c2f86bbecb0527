// moe_decode.cl through ops::moe_decode (router, routing, routed and shared experts in three
// launches): the unfused sequence of ops it replaces (the same per-output arithmetic; bit for bit
// on rusticl, within 1e-6 where a compiler rounds the two programs differently, as PoCL does for
// f32 and f16), each token's row its one-token result bit for bit, close to a double-precision
// reference; its input checks.
#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "harness/harness.h"
#include "moe_test_util.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/linear.h"
#include "runtime/ops/moe_decode.h"
#include "runtime/ops/norm.h"

using namespace dsocr;
using namespace dsocr::test;

namespace {

// v [rows, cols] uploaded as dt; *back gets the values the kernels read.
Tensor upload_as(const std::vector<float>& v, int64_t rows, int64_t cols, DType dt, std::vector<float>* back) {
  const auto n = static_cast<int64_t>(v.size());
  if (dt == DType::q8 || dt == DType::q4) {
    auto q = quantize(dt, v.data(), n);
    *back = dequantize(dt, q.data(), n);
    return rt().upload(q.data(), {rows, cols}, dt);
  }
  if (dt == DType::f32) {
    *back = v;
    return rt().upload(v, {rows, cols});
  }
  std::vector<uint16_t> h(v.size());
  back->resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = dt == DType::f16 ? float_to_half(v[i]) : float_to_bf16(v[i]);
    (*back)[i] = dt == DType::f16 ? half_to_float(h[i]) : bf16_to_float(h[i]);
  }
  return rt().upload(h.data(), {rows, cols}, dt);
}

// One MoE block: experts, router [E,H] and shared experts (Is rows) in one storage, with the
// host values the device reads.
struct Block {
  HostExperts host;
  ops::MoeExperts ex;
  Tensor router;
  ops::MoeShared shared;
  std::vector<float> router_h, sgu_h, sd_h;  // [E,H], [2Is,H], [H,Is]
  int64_t Is;
};

Block make_block(int64_t E, int64_t I, int64_t H, int64_t Is, DType dt, uint32_t seed) {
  Block b;
  b.Is = Is;
  auto host = make_experts(E, I, H, seed);
  b.ex = dtype_is_quantized(dt) ? upload_quantized(host, dt, &b.host) : upload(host, dt, &b.host);
  b.router = upload_as(random_floats(E * H, seed + 11, -1.f, 1.f), E, H, dt, &b.router_h);
  if (Is > 0) {
    b.shared.gate_up = upload_as(random_floats(2 * Is * H, seed + 12, -0.2f, 0.2f), 2 * Is, H, dt, &b.sgu_h);
    b.shared.down = upload_as(random_floats(H * Is, seed + 13, -0.2f, 0.2f), H, Is, dt, &b.sd_h);
  }
  return b;
}

std::vector<float> run_fused(const Block& b, const std::vector<float>& x, int64_t T, const ops::MoeRouting& r) {
  Tensor xt = rt().upload(x, {T, b.ex.H});
  Guarded y(rt(), {T, b.ex.H});
  ops::moe_decode(rt(), xt, b.router, b.ex, b.Is > 0 ? &b.shared : nullptr, r, y);
  return y.read_f32();
}

// What moe_decode replaces: router linear, moe_route, moe_experts (decode), shared MLP, add.
std::vector<float> run_unfused(const Block& b, const std::vector<float>& x, int64_t T, const ops::MoeRouting& r) {
  const int64_t H = b.ex.H, E = b.ex.E;
  Tensor xt = rt().upload(x, {T, H}), logits = rt().empty({T, E});
  linear(rt(), xt, b.router, nullptr, logits, LinearPath::gemv);
  Tensor ids = rt().empty({T, r.top_k}, DType::i32), w = rt().empty({T, r.top_k});
  ops::moe_route(rt(), logits, r.top_k, r.norm_topk_prob, r.routed_scaling_factor, ids, w);
  Tensor y = rt().empty({T, H});
  ops::moe_experts(rt(), xt, b.ex, ids, w, y, ops::MoePath::decode);
  if (b.Is > 0) {
    Tensor gu = rt().empty({T, 2 * b.Is}), s = rt().empty({T, H});
    linear(rt(), xt, b.shared.gate_up, nullptr, gu, LinearPath::gemv);
    linear_swiglu(rt(), gu, b.shared.down, s, LinearPath::gemv);
    ops::add(rt(), y, s, y);
  }
  return rt().read_f32(y);
}

// Double reference: route the double logits (ref_route), routed experts, + shared SwiGLU MLP.
std::vector<double> run_ref(const Block& b, const std::vector<float>& x, int64_t T, const ops::MoeRouting& r) {
  const int64_t H = b.ex.H, E = b.ex.E, Is = b.Is;
  std::vector<float> logits(T * E);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      double s = 0;
      for (int64_t c = 0; c < H; ++c) s += double(x[t * H + c]) * b.router_h[e * H + c];
      logits[t * E + e] = static_cast<float>(s);
    }
  Route route = ref_route(logits, T, E, r.top_k, r.norm_topk_prob, r.routed_scaling_factor);
  std::vector<float> w(route.w.begin(), route.w.end());
  auto y = ref_experts(x, b.host, route.ids, w, T, r.top_k);
  std::vector<double> act(Is);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < Is; ++j) {
      double g = 0, u = 0;
      for (int64_t c = 0; c < H; ++c) {
        g += double(x[t * H + c]) * b.sgu_h[j * H + c];
        u += double(x[t * H + c]) * b.sgu_h[(Is + j) * H + c];
      }
      act[j] = g / (1 + std::exp(-g)) * u;
    }
    for (int64_t n = 0; n < H && Is > 0; ++n) {
      double s = 0;
      for (int64_t j = 0; j < Is; ++j) s += act[j] * b.sd_h[n * Is + j];
      y[t * H + n] += s;
    }
  }
  return y;
}

}  // namespace

TEST(moe_decode, equals_the_unfused_ops_and_each_row_alone) {
  // Rows of whole 8-element pieces (H, I, Is % 8 == 0), k = 8 routed slots plus the shared one (two
  // chunks of slots in the down kernel), every storage, normalised and scaled weights.
  const int64_t T = 4, H = 64, E = 12, I = 32, Is = 64;
  auto x = random_floats(T * H, 701);
  for (DType dt : {DType::f32, DType::f16, DType::bf16, DType::q8, DType::q4}) {
    const Block b = make_block(E, I, H, Is, dt, 703);
    for (bool norm : {false, true}) {
      const ops::MoeRouting r{8, norm, norm ? 1.0f : 2.5f};
      const std::string what = fmt::format("{} norm {}", dtype_name(dt), norm);
      auto fused = run_fused(b, x, T, r);
      auto unfused = run_unfused(b, x, T, r);
      EXPECT_TRUE(all_close(fused, to_double(unfused), {T, H}, 1e-7, 1e-6)) << what;
      EXPECT_TRUE(all_close(fused, run_ref(b, x, T, r), {T, H}, 1e-5, 1e-4)) << what;
      for (int64_t t = 0; t < T; ++t) {
        auto one = run_fused(b, {x.begin() + t * H, x.begin() + (t + 1) * H}, 1, r);
        EXPECT_EQ(0, std::memcmp(one.data(), fused.data() + t * H, H * sizeof(float))) << what << " token " << t;
      }
    }
  }
}

TEST(moe_decode, awkward_sizes_and_no_shared_experts) {
  // H = 17, I = 5, Is = 10 (element by element), k = 3 of E = 7; and the same block without its
  // shared experts, which must equal the routed experts alone.
  const int64_t T = 3, H = 17, E = 7, I = 5;
  auto x = random_floats(T * H, 711);
  const ops::MoeRouting r{3, true, 1.0f};
  for (DType dt : kWeightTypes) {
    Block b = make_block(E, I, H, 10, dt, 713);
    EXPECT_TRUE(all_close(run_fused(b, x, T, r), run_ref(b, x, T, r), {T, H}, 1e-5, 1e-4)) << dtype_name(dt);
    b.Is = 0;
    auto fused = run_fused(b, x, T, r), unfused = run_unfused(b, x, T, r);
    EXPECT_TRUE(all_close(fused, to_double(unfused), {T, H}, 1e-7, 1e-6)) << dtype_name(dt);
  }
}

TEST(moe_decode, input_norm_in_the_router_launch) {
  // in_norm: x += a (+ b) written back exactly as ops::add does it, the block on rms_norm(x) * w
  // within rounding of add_rms_norm (or rms_norm) followed by moe_decode; each token's row its
  // one-token result bit for bit. H = 200 (not a multiple of the 128 work-items), f32 and bf16.
  const int64_t T = 3, H = 200, E = 6, I = 24;
  auto x = random_floats(T * H, 731, -2.f, 2.f), a = random_floats(T * H, 732), b = random_floats(T * H, 733);
  auto nw = random_floats(H, 734, 0.5f, 1.5f);
  const ops::MoeRouting r{2, true, 1.0f};
  for (DType dt : {DType::f32, DType::bf16}) {
    const Block blk = make_block(E, I, H, 16, dt, 735);
    for (int nadd : {0, 1, 2}) {
      SCOPED_TRACE(fmt::format("{} nadd {}", dtype_name(dt), nadd));
      auto run = [&](int64_t t0, int64_t n, bool fused, std::vector<float>* res, std::vector<float>* xn_out) {
        auto part = [&](const std::vector<float>& v) {
          return rt().upload(std::vector<float>(v.begin() + t0 * H, v.begin() + (t0 + n) * H), {n, H});
        };
        Tensor xt = part(x), at = nadd > 0 ? part(a) : Tensor{}, bt = nadd > 1 ? part(b) : Tensor{};
        Tensor w = rt().upload(nw, {H}), xn = rt().empty({n, H});
        Guarded y(rt(), {n, H});
        if (fused) {
          const ops::MoeInputNorm in{at, bt, w, 1e-6f, xn};
          ops::moe_decode(rt(), xt, blk.router, blk.ex, &blk.shared, r, y, &in);
        } else {
          if (nadd > 0)
            ops::add_rms_norm(rt(), xt, at, nadd > 1 ? &bt : nullptr, w, xn, 1e-6f);
          else
            ops::rms_norm(rt(), xt, w, xn, 1e-6f);
          ops::moe_decode(rt(), xn, blk.router, blk.ex, &blk.shared, r, y);
        }
        if (res) *res = rt().read_f32(xt);
        if (xn_out) *xn_out = rt().read_f32(xn);
        return y.read_f32();
      };
      std::vector<float> res_f, res_u, xn_f, xn_u;
      auto fused = run(0, T, true, &res_f, &xn_f), unfused = run(0, T, false, &res_u, &xn_u);
      EXPECT_EQ(0, std::memcmp(res_f.data(), res_u.data(), res_f.size() * sizeof(float)));
      EXPECT_TRUE(all_close(xn_f, to_double(xn_u), {T, H}, 1e-6, 1e-6));
      EXPECT_TRUE(all_close(fused, to_double(unfused), {T, H}, 1e-5, 1e-5));
      for (int64_t t = 0; t < T; ++t) {
        auto one = run(t, 1, true, nullptr, nullptr);
        EXPECT_EQ(0, std::memcmp(one.data(), fused.data() + t * H, H * sizeof(float))) << "token " << t;
      }
    }
  }
}

TEST(moe_decode, rejects_bad_inputs) {
  const int64_t H = 16, E = 4, I = 8;
  const Block b = make_block(E, I, H, 8, DType::f32, 721);
  Tensor x = rt().upload(random_floats(2 * H, 723), {2, H}), y = rt().empty({2, H});
  const ops::MoeRouting r{2, true, 1.0f};
  expect_error_containing(
      [&] {
        ops::moe_decode(rt(), x, b.router, b.ex, &b.shared, {5, true, 1.0f}, y);
      },
      "moe_decode: top_k = 5 must be in [1, E = 4]");
  Tensor bad_router = rt().empty({E, H + 1});
  expect_error_containing([&] { ops::moe_decode(rt(), x, bad_router, b.ex, &b.shared, r, y); },
                          "moe_decode: router weight is [4,17] f32, expected [4,16]");
  ops::MoeShared other{rt().empty({16, H}, DType::bf16), rt().empty({H, 8}, DType::bf16)};
  expect_error_containing([&] { ops::moe_decode(rt(), x, b.router, b.ex, &other, r, y); },
                          "must be stored as the routed experts (f32)");
  ops::MoeShared wrong{rt().empty({15, H}), rt().empty({H, 8})};
  expect_error_containing([&] { ops::moe_decode(rt(), x, b.router, b.ex, &wrong, r, y); },
                          "moe_decode: shared experts gate_up [15,16] f32 and down [16,8] f32 must be");
  Tensor y_bad = rt().empty({3, H});
  expect_error_containing([&] { ops::moe_decode(rt(), x, b.router, b.ex, &b.shared, r, y_bad); }, "moe_decode: y is");
  ops::MoeInputNorm n{Tensor{}, Tensor{}, rt().empty({H + 1}), 1e-6f, rt().empty({2, H})};
  expect_error_containing([&] { ops::moe_decode(rt(), x, b.router, b.ex, &b.shared, r, y, &n); },
                          "moe_decode: norm weight is [17] f32, expected f32 [16]");
  n.weight = rt().empty({H});
  n.xn = rt().empty({2, H + 1});
  expect_error_containing([&] { ops::moe_decode(rt(), x, b.router, b.ex, &b.shared, r, y, &n); },
                          "moe_decode: norm output is [2,17] f32, expected f32 [2,16]");
  n.xn = rt().empty({2, H});
  n.b = rt().empty({2, H});
  expect_error_containing([&] { ops::moe_decode(rt(), x, b.router, b.ex, &b.shared, r, y, &n); }, "(b only with a)");
}
