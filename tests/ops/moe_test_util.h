// Shared by the MoE tests (test_moe.cpp, test_moe_decode.cpp): double-precision references after
// reference/dsocr_ref/ops.py moe_route and moe, random experts uploaded in every storage, routing.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "harness/harness.h"
#include "runtime/ops/moe.h"
#include "runtime/quant.h"

namespace dsocr::test {

struct Route {
  std::vector<int32_t> ids;
  std::vector<double> w;
  double min_gap = 1;  // smallest relative gap between consecutive probabilities up to rank k
};

// moe_route: softmax over E, stable descending sort (ties: lower id first), top-k.
inline Route ref_route(const std::vector<float>& logits, int64_t T, int64_t E, int k, bool norm, double scale) {
  Route r;
  for (int64_t t = 0; t < T; ++t) {
    const float* l = &logits[t * E];
    double m = *std::max_element(l, l + E), s = 0;
    std::vector<double> p(E);
    for (int64_t e = 0; e < E; ++e) s += p[e] = std::exp(double(l[e]) - m);
    for (auto& v : p) v /= s;
    std::vector<int32_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    double sum = 0;
    for (int i = 0; i < k; ++i) sum += p[order[i]];
    for (int i = 0; i < k; ++i) {
      r.ids.push_back(order[i]);
      r.w.push_back(k > 1 && norm ? p[order[i]] / (sum + 1e-20) : p[order[i]] * scale);
    }
    for (int i = 0; i < k && i + 1 < E; ++i)
      r.min_gap = std::min(r.min_gap, (p[order[i]] - p[order[i + 1]]) / p[order[i]]);
  }
  return r;
}

// Host copy of the experts: gate_up [E,2I,H], down [E,H,I] as the device reads them.
struct HostExperts {
  int64_t E, I, H;
  std::vector<float> gate_up, down;
};

inline HostExperts make_experts(int64_t E, int64_t I, int64_t H, uint32_t seed) {
  float a = 1.f / std::sqrt(float(H)), b = 1.f / std::sqrt(float(I));
  return {E, I, H, random_floats(E * 2 * I * H, seed, -a, a), random_floats(E * H * I, seed + 1, -2 * b, 2 * b)};
}

// Uploads the weights as dt: f32 as they are; f16 or bf16 rounded to nearest even (what the device
// reads back, given in *rounded for the reference) and uploaded as their 16-bit patterns.
inline ops::MoeExperts upload(const HostExperts& h, DType dt, HostExperts* rounded = nullptr) {
  ops::MoeExperts ex;
  ex.E = h.E;
  ex.I = h.I;
  ex.H = h.H;
  Shape gu{h.E, 2 * h.I, h.H}, dn{h.E, h.H, h.I};
  if (dt == DType::f32) {
    ex.gate_up = rt().upload(h.gate_up, gu);
    ex.down = rt().upload(h.down, dn);
    if (rounded) *rounded = h;
    return ex;
  }
  auto narrow = [dt](const std::vector<float>& v, std::vector<float>& back) {
    std::vector<uint16_t> out(v.size());
    back.resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      out[i] = dt == DType::f16 ? float_to_half(v[i]) : float_to_bf16(v[i]);
      back[i] = dt == DType::f16 ? half_to_float(out[i]) : bf16_to_float(out[i]);
    }
    return out;
  };
  HostExperts r{h.E, h.I, h.H, {}, {}};
  auto gu16 = narrow(h.gate_up, r.gate_up), dn16 = narrow(h.down, r.down);
  ex.gate_up = rt().upload(gu16.data(), gu, dt);
  ex.down = rt().upload(dn16.data(), dn, dt);
  if (rounded) *rounded = std::move(r);
  return ex;
}

// The same as q8/q4 blocks (runtime/quant.h); *rounded gets what the kernels read.
inline ops::MoeExperts upload_quantized(const HostExperts& h, DType dt, HostExperts* rounded) {
  ops::MoeExperts ex;
  ex.E = h.E;
  ex.I = h.I;
  ex.H = h.H;
  auto gu = quantize(dt, h.gate_up.data(), static_cast<int64_t>(h.gate_up.size()));
  auto dn = quantize(dt, h.down.data(), static_cast<int64_t>(h.down.size()));
  *rounded = {h.E, h.I, h.H, dequantize(dt, gu.data(), static_cast<int64_t>(h.gate_up.size())),
              dequantize(dt, dn.data(), static_cast<int64_t>(h.down.size()))};
  ex.gate_up = rt().upload(gu.data(), {h.E, 2 * h.I, h.H}, dt);
  ex.down = rt().upload(dn.data(), {h.E, h.H, h.I}, dt);
  return ex;
}

// Weight storages every expert test runs through.
constexpr DType kWeightTypes[] = {DType::f32, DType::f16, DType::bf16};

// y[t] = sum_s w[t,s] * down(silu(gate x) * up x) of expert ids[t,s]; ids outside [0,E) skipped.
inline std::vector<double> ref_experts(const std::vector<float>& x, const HostExperts& h,
                                       const std::vector<int32_t>& ids, const std::vector<float>& w, int64_t T,
                                       int64_t k) {
  const int64_t I = h.I, H = h.H;
  std::vector<double> y(T * H, 0.0), act(I);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < k; ++s) {
      int32_t e = ids[t * k + s];
      if (e < 0 || e >= h.E) continue;
      const float* xr = &x[t * H];
      for (int64_t j = 0; j < I; ++j) {
        const float* g = &h.gate_up[(e * 2 * I + j) * H];
        const float* u = &h.gate_up[(e * 2 * I + I + j) * H];
        double gs = 0, us = 0;
        for (int64_t c = 0; c < H; ++c) {
          gs += double(xr[c]) * g[c];
          us += double(xr[c]) * u[c];
        }
        act[j] = gs / (1 + std::exp(-gs)) * us;
      }
      for (int64_t n = 0; n < H; ++n) {
        const float* d = &h.down[(e * H + n) * I];
        double acc = 0;
        for (int64_t j = 0; j < I; ++j) acc += act[j] * d[j];
        y[t * H + n] += double(w[t * k + s]) * acc;
      }
    }
  return y;
}

// Per token, k distinct experts in random order, and positive weights.
inline void random_routing(int64_t T, int64_t E, int k, uint32_t seed, std::vector<int32_t>& ids,
                           std::vector<float>& w) {
  std::mt19937 gen(seed);
  ids.clear();
  std::vector<int32_t> all(E);
  for (int64_t t = 0; t < T; ++t) {
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), gen);
    ids.insert(ids.end(), all.begin(), all.begin() + k);
  }
  w = random_floats(T * k, seed + 7, 0.05f, 0.5f);
}

// Logits with well-separated values (no near-ties): a random permutation of 0.1*e plus jitter.
inline std::vector<float> distinct_logits(int64_t T, int64_t E, uint32_t seed) {
  std::mt19937 gen(seed);
  auto jitter = random_floats(T * E, seed + 1, -0.02f, 0.02f);
  std::vector<float> l(T * E);
  std::vector<int> perm(E);
  for (int64_t t = 0; t < T; ++t) {
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), gen);
    for (int64_t e = 0; e < E; ++e) l[t * E + e] = 0.1f * perm[e] - 2.f + jitter[t * E + e];
  }
  return l;
}

inline std::vector<float> run_experts(const std::vector<float>& x, const ops::MoeExperts& ex,
                                      const std::vector<int32_t>& ids, const std::vector<float>& w, int64_t T,
                                      int64_t k, ops::MoePath path) {
  Tensor xt = rt().upload(x, {T, ex.H}), it = rt().upload(ids, {T, k}), wt = rt().upload(w, {T, k});
  Guarded y(rt(), {T, ex.H});
  ops::moe_experts(rt(), xt, ex, it, wt, y, path);
  return y.read_f32();
}

}  // namespace dsocr::test
