#include "runtime/ops/rel_pos.h"

#include <fmt/format.h>

namespace dsocr::ops {

namespace {
constexpr int kWK = 32, kWN = 8, kDMax = 128;  // rel_pos.cl's work-group shape and RP_DMAX
}

void rel_pos_terms(Runtime& rt, const AttnView& q, const Tensor& tab_h, const Tensor& tab_w, int kh, int kw,
                   Tensor& rel_h, Tensor& rel_w) {
  if (kh < 1 || kw < 1) throw Error(fmt::format("rel_pos_terms: grid {}x{} is empty", kh, kw));
  q.check("rel_pos_terms", "q");
  const int64_t B = q.B, H = q.H, N = q.N, D = q.D;
  if (N != static_cast<int64_t>(kh) * kw)
    throw Error(fmt::format("rel_pos_terms: q {} has {} tokens, expected the grid {}x{} = {}", shape_str(q.shape()), N,
                            kh, kw, static_cast<int64_t>(kh) * kw));
  if (D > kDMax) throw NotImplemented(fmt::format("rel_pos_terms: head dim {} over the supported {}", D, kDMax));
  auto expect = [](const char* name, const Tensor& t, const Shape& want) {
    if (!t.defined() || t.dtype != DType::f32 || t.shape != want)
      throw Error(fmt::format("rel_pos_terms: {} is {} {}, expected f32 {}", name,
                              t.defined() ? dtype_name(t.dtype) : "undefined", t.defined() ? shape_str(t.shape) : "",
                              shape_str(want)));
  };
  expect("tab_h", tab_h, {2 * kh - 1, D});
  expect("tab_w", tab_w, {2 * kw - 1, D});
  expect("rel_h", rel_h, {B, H, N, kh});
  expect("rel_w", rel_w, {B, H, N, kw});
  if (B * H * N * (kh + kw) > INT32_MAX) throw NotImplemented("rel_pos_terms: too many elements for 32-bit indices");

  auto& k =
      rt.kernel("rel_pos.cl", "rel_pos_terms_f32",
                {{"RP_WK", std::to_string(kWK)}, {"RP_WN", std::to_string(kWN)}, {"RP_DMAX", std::to_string(kDMax)}});
  rt.launch(k, cl::NDRange(round_up(kh + kw, kWK), round_up(N, kWN), B * H), cl::NDRange(kWK, kWN, 1), q.t,
            static_cast<int64_t>(q.offset), q.sb, q.sh, q.sn, tab_h, tab_w, rel_h, rel_w, static_cast<cl_int>(H),
            static_cast<cl_int>(kh), static_cast<cl_int>(kw), static_cast<cl_int>(D));
}

}  // namespace dsocr::ops
