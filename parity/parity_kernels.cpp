// Parity ops for the kernel-level entries of the contract's vocabulary that have no home in
// parity_ops.cpp: conv2d, sdpa, unfold, resize_bicubic_aa, resize_linear.
#include <fmt/format.h>

#include <cmath>

#include "parity/parity.h"
#include "runtime/ops/conv2d.h"
#include "runtime/ops/resize.h"
#include "runtime/ops/sdpa.h"

namespace dsocr {
namespace {

int int_attr(const GoldenCase& c, const char* name, int64_t lo) {
  int64_t v = c.attr_int(name);
  if (v < lo || v > (1 << 20)) throw GoldenError(fmt::format("{}: attribute {} = {} is out of range", c.path, name, v));
  return static_cast<int>(v);
}

ParityOutputs op_conv2d(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1, -1});
  const auto& w = c.weight("weight");
  expect_shape(c, "weights/weight", w, {-1, x.shape[1], -1, -1});
  int stride = int_attr(c, "stride", 1), pad = int_attr(c, "padding", 0);
  int64_t Ho = (x.shape[2] + 2 * pad - w.shape[2]) / stride + 1, Wo = (x.shape[3] + 2 * pad - w.shape[3]) / stride + 1;
  if (Ho < 1 || Wo < 1) throw GoldenError(fmt::format("{}: kernel larger than the padded input", c.path));
  Tensor xt = to_device(rt, x, "x"), wt = to_device(rt, w, "weight"), bt;
  if (auto* b = c.weight_opt("bias")) {
    expect_shape(c, "weights/bias", *b, {w.shape[0]});
    bt = to_device(rt, *b, "bias");
  }
  Tensor y = rt.empty({x.shape[0], w.shape[0], Ho, Wo});
  ops::conv2d(rt, xt, wt, bt.defined() ? &bt : nullptr, y, stride, pad);
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_unfold(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1, -1});
  int k = int_attr(c, "kernel", 1), stride = int_attr(c, "stride", 1), pad = int_attr(c, "padding", 0);
  int64_t Ho = (x.shape[2] + 2 * pad - k) / stride + 1, Wo = (x.shape[3] + 2 * pad - k) / stride + 1;
  if (Ho < 1 || Wo < 1) throw GoldenError(fmt::format("{}: kernel larger than the padded input", c.path));
  Tensor xt = to_device(rt, x, "x"), y = rt.empty({x.shape[0], x.shape[1] * k * k, Ho * Wo});
  ops::unfold(rt, xt, k, stride, pad, y);
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_sdpa(Runtime& rt, const GoldenCase& c) {
  const auto& q = c.input("q");
  const auto& k = c.input("k");
  const auto& v = c.input("v");
  expect_shape(c, "inputs/q", q, {-1, -1, -1, -1});
  expect_shape(c, "inputs/k", k, {q.shape[0], -1, -1, q.shape[3]});
  expect_shape(c, "inputs/v", v, k.shape);
  if (k.shape[1] < 1 || q.shape[1] % k.shape[1] != 0)
    throw GoldenError(fmt::format("{}: q heads {} are not a multiple of k heads {}", c.path, q.shape[1], k.shape[1]));
  Tensor qt = to_device(rt, q, "q"), kt = to_device(rt, k, "k"), vt = to_device(rt, v, "v"), bt;
  if (auto* b = c.input_opt("bias")) {
    // Broadcastable to [B,H,Nq,Nk]: leading dims 1 or full; kept as the file's shape.
    Shape full{q.shape[0], q.shape[1], q.shape[2], k.shape[2]};
    if (b->shape.size() < 2 || b->shape.size() > 4)
      throw GoldenError(fmt::format("{}: inputs/bias must have rank 2..4", c.path));
    for (size_t i = 0; i < b->shape.size(); ++i) {
      int64_t want = full[4 - b->shape.size() + i];
      if (b->shape[i] != want && b->shape[i] != 1)
        throw GoldenError(
            fmt::format("{}: inputs/bias {} does not broadcast to {}", c.path, shape_str(b->shape), shape_str(full)));
    }
    if (b->shape.back() != k.shape[2])
      throw GoldenError(fmt::format("{}: inputs/bias must span all {} keys", c.path, k.shape[2]));
    bt = to_device(rt, *b, "bias");
  }
  Tensor out = rt.empty(q.shape);
  float scale = static_cast<float>(c.attr_float("scale", 1.0 / std::sqrt(static_cast<double>(q.shape[3]))));
  ops::SdpaParams p;
  p.scale = scale;
  p.causal = c.attr_int("causal", 0) != 0;
  p.causal_prefix = c.attr_int("causal_prefix", 0);
  if (p.causal_prefix < 0 || p.causal_prefix > k.shape[2] || (p.causal_prefix > 0 && !p.causal))
    throw GoldenError(fmt::format("{}: attrs/causal_prefix {} must be in 0..Nk = {} and needs causal = 1", c.path,
                                  p.causal_prefix, k.shape[2]));
  if (bt.defined()) p.bias = ops::AttnBias::dense(bt);
  ops::sdpa(rt, ops::AttnView::bhnd(qt), ops::AttnView::bhnd(kt), ops::AttnView::bhnd(vt), ops::AttnView::bhnd(out),
            p);
  return {{"out", from_device_f32(rt, out)}};
}

ParityOutputs op_resize_bicubic_aa(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1, -1});
  int oh = int_attr(c, "out_h", 1), ow = int_attr(c, "out_w", 1);
  Tensor xt = to_device(rt, x, "x"), y = rt.empty({x.shape[0], x.shape[1], oh, ow});
  ops::resize_bicubic_aa(rt, xt, y);
  return {{"y", from_device_f32(rt, y)}};
}

ParityOutputs op_resize_linear(Runtime& rt, const GoldenCase& c) {
  const auto& x = c.input("x");
  expect_shape(c, "inputs/x", x, {-1, -1, -1});
  int n = int_attr(c, "out_len", 1);
  Tensor xt = to_device(rt, x, "x"), y = rt.empty({x.shape[0], x.shape[1], n});
  ops::resize_linear(rt, xt, y);
  return {{"y", from_device_f32(rt, y)}};
}

}  // namespace

void register_kernel_parity_ops(std::map<std::string, ParityFn>& table) {
  table["conv2d"] = op_conv2d;
  table["unfold"] = op_unfold;
  table["sdpa"] = op_sdpa;
  table["resize_bicubic_aa"] = op_resize_bicubic_aa;
  table["resize_linear"] = op_resize_linear;
}

}  // namespace dsocr
