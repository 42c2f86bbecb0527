#include "runtime/ops/rope.h"

#include <fmt/format.h>

#include <climits>
#include <cmath>

#include "runtime/ops/weight_format.h"

namespace dsocr::ops {
namespace {

constexpr size_t kWG = 64;

bool same_view(const AttnView& a, const AttnView& b) {
  return a.t.buffer == b.t.buffer && a.offset == b.offset && a.shape() == b.shape() && a.sb == b.sb && a.sh == b.sh &&
         a.sn == b.sn;
}

// [first, last) elements spanned by a view.
std::pair<int64_t, int64_t> span(const AttnView& v) {
  int64_t first = static_cast<int64_t>(v.offset);
  return {first, first + (v.B - 1) * v.sb + (v.H - 1) * v.sh + (v.N - 1) * v.sn + v.D};
}

}  // namespace

std::vector<float> rope_inv_freq(int64_t D, float theta) {
  if (D < 2 || D % 2 != 0) throw Error(fmt::format("rope: head dim D={} must be even and positive", D));
  std::vector<float> f(static_cast<size_t>(D / 2));
  const float fd = static_cast<float>(D);
  for (size_t k = 0; k < f.size(); ++k) {
    // torch: arange(0, D, 2).float() / D, then theta ** that, then 1.0 / that, all in fp32.
    float e = static_cast<float>(2 * k) / fd;
    float p = std::pow(theta, e);  // the float overload (powf)
    f[k] = 1.0f / p;
  }
  return f;
}

RopeFreqs RopeFreqs::make(Runtime& rt, int64_t D, float theta) {
  std::vector<float> f = rope_inv_freq(D, theta);
  RopeFreqs r;
  r.inv_freq = rt.upload(f.data(), {D / 2}, DType::f32, "rope inv_freq");
  r.D = D;
  r.theta = theta;
  return r;
}

void rope(Runtime& rt, const AttnView& x, const Tensor& positions, const RopeFreqs& freqs, const AttnView& y) {
  x.check("rope", "x");
  y.check("rope", "y");
  if (y.shape() != x.shape())
    throw Error(fmt::format("rope: y is {}, expected the shape of x {}", shape_str(y.shape()), shape_str(x.shape())));
  if (x.D % 2 != 0) throw Error(fmt::format("rope: head dim D={} of x {} must be even", x.D, shape_str(x.shape())));
  if (positions.dtype != DType::i32 || positions.rank() != 1 || positions.dim(0) != x.N)
    throw Error(fmt::format("rope: positions is {} {}, expected [{}] i32 (N of x {})", shape_str(positions.shape),
                            dtype_name(positions.dtype), x.N, shape_str(x.shape())));
  if (!freqs.inv_freq.defined() || freqs.D != x.D || freqs.inv_freq.dtype != DType::f32 ||
      freqs.inv_freq.numel() != x.D / 2)
    throw Error(fmt::format("rope: inv_freq table {} (D={}) does not match head dim D={} of x {}",
                            shape_str(freqs.inv_freq.shape), freqs.D, x.D, shape_str(x.shape())));
  if (!same_view(x, y) && x.t.buffer == y.t.buffer) {
    auto [x0, x1] = span(x);
    auto [y0, y1] = span(y);
    if (x0 < y1 && y0 < x1)
      throw Error("rope: y overlaps x in the same tensor without being the same view (in place needs y == x)");
  }
  const int64_t half = x.D / 2, total = x.B * x.H * x.N * half;
  if (total > INT_MAX) throw NotImplemented(fmt::format("rope: {} pairs exceed the 32-bit index range", total));
  auto off = [](const AttnView& a) { return static_cast<int64_t>(a.offset); };
  auto& k = rt.kernel("rope.cl", "rope_neox_f32");
  rt.launch(k, cl::NDRange(round_up(static_cast<size_t>(total), kWG)), cl::NDRange(kWG),  //
            x.t, off(x), x.sb, x.sh, x.sn, y.t, off(y), y.sb, y.sh, y.sn, positions, freqs.inv_freq,
            static_cast<cl_int>(x.H), static_cast<cl_int>(x.N), static_cast<cl_int>(half), static_cast<cl_int>(total));
}

void rope(Runtime& rt, const AttnView& x, const Tensor& positions, float theta, const AttnView& y) {
  x.check("rope", "x");
  if (x.D % 2 != 0) throw Error(fmt::format("rope: head dim D={} of x {} must be even", x.D, shape_str(x.shape())));
  rope(rt, x, positions, RopeFreqs::make(rt, x.D, theta), y);
}

void rope_kv_append(Runtime& rt, Tensor& qkv, int64_t Hq, int64_t Hkv, const Tensor& positions, const RopeFreqs& freqs,
                    Tensor& kv_cache, int64_t past, const Tensor* rows) {
  const int64_t D = freqs.D;
  if (Hq < 1 || Hkv < 1 || D < 2 || D % 2 != 0)
    throw Error(fmt::format("rope_kv_append: {} q heads, {} kv heads, head dim {}", Hq, Hkv, D));
  const int64_t Htot = Hq + 2 * Hkv;
  if (qkv.dtype != DType::f32 || qkv.numel() % (Htot * D) != 0 || qkv.dim(-1) % D != 0)
    throw Error(fmt::format("rope_kv_append: qkv {} {} is not f32 [T, {}*{}]", shape_str(qkv.shape),
                            dtype_name(qkv.dtype), Htot, D));
  const int64_t T = qkv.numel() / (Htot * D);
  const DType kt = kv_cache.dtype;
  if ((kt != DType::f32 && kt != DType::f16 && kt != DType::bf16) || kv_cache.rank() != 4 || kv_cache.dim(1) != 2 ||
      kv_cache.dim(2) != Hkv || kv_cache.dim(3) != D)
    throw Error(fmt::format("rope_kv_append: the cache {} {} must be f32, f16 or bf16 [cap,2,{},{}]",
                            dtype_name(kt), shape_str(kv_cache.shape), Hkv, D));
  if (rows && (rows->dtype != DType::i32 || rows->numel() != T))
    throw Error(fmt::format("rope_kv_append: rows is {} {}, expected [{}] i32", shape_str(rows->shape),
                            dtype_name(rows->dtype), T));
  if (!rows && (past < 0 || past + T > kv_cache.dim(0)))
    throw Error(fmt::format("rope_kv_append: rows {}..{} outside the cache of {}", past, past + T, kv_cache.dim(0)));
  if (positions.dtype != DType::i32 || positions.numel() != T)
    throw Error(fmt::format("rope_kv_append: positions is {} {}, expected [{}] i32", shape_str(positions.shape),
                            dtype_name(positions.dtype), T));
  if (!freqs.inv_freq.defined() || freqs.inv_freq.numel() != D / 2)
    throw Error(fmt::format("rope_kv_append: inv_freq table {} does not match head dim {}",
                            shape_str(freqs.inv_freq.shape), D));
  const int64_t total = T * Htot * (D / 2);
  if (total > INT_MAX || past + T > INT_MAX)
    throw NotImplemented(fmt::format("rope_kv_append: {} pairs exceed the 32-bit index range", total));
  if (total == 0) return;
  Defines d;
  add_kv_define(d, kt);
  auto& k = rt.kernel("rope.cl", "rope_kv_append_f32", d);
  // rows' values are the caller's (the batched decoder's, each < capacity): the kernel trusts them.
  rt.launch(k, cl::NDRange(round_up(static_cast<size_t>(total), kWG)), cl::NDRange(kWG), qkv, kv_cache, positions,
            rows ? *rows : positions, static_cast<cl_int>(rows ? 1 : 0), freqs.inv_freq, static_cast<cl_int>(Hq),
            static_cast<cl_int>(Hkv), static_cast<cl_int>(D / 2), static_cast<cl_int>(rows ? 0 : past),
            static_cast<cl_int>(total));
}

}  // namespace dsocr::ops
