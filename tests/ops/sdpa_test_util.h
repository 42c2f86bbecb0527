// Shared by the sdpa test's parts (test_sdpa.cpp, sdpa_masks.cpp): the double-precision
// reference and gathering a strided view's elements (the latter also by test_rel_pos.cpp).
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/ops/sdpa.h"

namespace dsocr::test {

constexpr double kAtol = 1e-5, kRtol = 1e-4;  // the bespoke cases (descriptors carry their own tolerance)

// Element (b,h,n,d) of a view over host data, gathered into a dense [B,H,N,D] double array.
inline std::vector<double> gather(const std::vector<float>& data, const ops::AttnView& v) {
  std::vector<double> out(static_cast<size_t>(v.B * v.H * v.N * v.D));
  size_t o = 0;
  for (int64_t b = 0; b < v.B; ++b)
    for (int64_t h = 0; h < v.H; ++h)
      for (int64_t n = 0; n < v.N; ++n)
        for (int64_t d = 0; d < v.D; ++d) out[o++] = data[v.offset + b * v.sb + h * v.sh + n * v.sn + d];
  return out;
}

struct RefBias {
  const std::vector<float>* dense = nullptr;  // [bB,bH,bQ,Nk], each of bB, bH, bQ full or 1
  int64_t bB = 1, bH = 1, bQ = 0;             // bQ 0: Nq
  const std::vector<float>* rel_h = nullptr;  // [B,H,Nq,kh]
  const std::vector<float>* rel_w = nullptr;  // [B,H,Nq,kw]
  int64_t kh = 0, kw = 0;
  int64_t prefix = 0;  // with causal: keys j < prefix visible to every query (SdpaParams::causal_prefix)
};

// out [B,H,Nq,D] from q [B,H,Nq,D], k and v [B,Hkv,Nk,D]; rows with no visible key are zero.
inline std::vector<double> ref_sdpa(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                             int64_t B, int64_t H, int64_t Hkv, int64_t Nq, int64_t Nk, int64_t D, double scale,
                             bool causal, const RefBias& rb = {}) {
  std::vector<double> out(static_cast<size_t>(B * H * Nq * D), 0.0), s(Nk);
  const double ninf = -std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t hk = h / (H / Hkv);
      const double* kb = &k[((b * Hkv + hk) * Nk) * D];
      const double* vb = &v[((b * Hkv + hk) * Nk) * D];
      for (int64_t i = 0; i < Nq; ++i) {
        const double* qi = &q[((b * H + h) * Nq + i) * D];
        double m = ninf;
        for (int64_t j = 0; j < Nk; ++j) {
          if (causal && j > i + Nk - Nq && j >= rb.prefix) {
            s[j] = ninf;
            continue;
          }
          double acc = 0;
          for (int64_t d = 0; d < D; ++d) acc += qi[d] * kb[j * D + d];
          acc *= scale;
          if (rb.dense) {
            const int64_t bQ = rb.bQ ? rb.bQ : Nq;
            const int64_t row = ((rb.bB == 1 ? 0 : b) * rb.bH + (rb.bH == 1 ? 0 : h)) * bQ + (bQ == 1 ? 0 : i);
            acc += (*rb.dense)[row * Nk + j];
          }
          if (rb.rel_h) {
            int64_t row = (b * H + h) * Nq + i;
            acc += (*rb.rel_h)[row * rb.kh + j / rb.kw] + (*rb.rel_w)[row * rb.kw + j % rb.kw];
          }
          s[j] = acc;
          m = std::max(m, acc);
        }
        if (m == ninf) continue;  // fully masked row: zeros
        double l = 0;
        double* oi = &out[((b * H + h) * Nq + i) * D];
        for (int64_t j = 0; j < Nk; ++j) {
          if (s[j] == ninf) continue;
          double p = std::exp(s[j] - m);
          l += p;
          for (int64_t d = 0; d < D; ++d) oi[d] += p * vb[j * D + d];
        }
        for (int64_t d = 0; d < D; ++d) oi[d] /= l;
      }
    }
  return out;
}

}  // namespace dsocr::test
