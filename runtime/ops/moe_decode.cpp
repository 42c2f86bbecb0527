#include "runtime/ops/moe_decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "runtime/ops/weight_format.h"

namespace dsocr::ops {
namespace {

// kernels/moe_decode.cl's work-group size DWG (its default); LANES, the work-items per output:
// Tuning::moe_lanes_for. Where it equals linear()'s (Tuning::gemv_lanes_for: the default on a CPU),
// a router logit is the matrix-vector kernel's.
constexpr size_t kDWG = 128;

Defines lane_defines(const Runtime& rt, size_t& feats) {
  const int lanes = rt.tuning().moe_lanes_for(rt.device().is_gpu);
  feats = kDWG / static_cast<size_t>(lanes);
  return Defines{{"LANES", std::to_string(lanes)}};
}

void check_input_norm(const char* op, const Tensor& x, const MoeInputNorm& n) {
  const int64_t H = x.dim(-1);
  auto f32_like_x = [&](const Tensor& t) { return t.dtype == DType::f32 && t.shape == x.shape; };
  if (!n.weight.defined() || n.weight.dtype != DType::f32 || n.weight.shape != Shape{H})
    throw Error(fmt::format("{}: norm weight is {}, expected f32 [{}]", op, tensor_str(n.weight), H));
  if (!n.xn.defined() || !f32_like_x(n.xn))
    throw Error(fmt::format("{}: norm output is {}, expected f32 {}", op, tensor_str(n.xn), shape_str(x.shape)));
  if ((n.a.defined() && !f32_like_x(n.a)) || (n.b.defined() && (!n.a.defined() || !f32_like_x(n.b))))
    throw Error(fmt::format("{}: residual parts {} and {} must be f32 {} (b only with a)", op, tensor_str(n.a),
                            tensor_str(n.b), shape_str(x.shape)));
}

}  // namespace

bool moe_decode_takes(const MoeExperts& ex, const MoeShared* shared) {
  return !shared || (shared->gate_up.dtype == ex.gate_up.dtype && shared->down.dtype == ex.gate_up.dtype);
}

void moe_decode_experts(Runtime& rt, const Tensor& x, const MoeExperts& ex, const Tensor& ids, const Tensor& weights,
                        const MoeShared* shared, Tensor& y) {
  const int64_t T = x.dim(0), K = ids.dim(1), NE = T * K, I = ex.I, H = ex.H;
  const int64_t Is = shared ? shared->down.dim(1) : 0;
  if (T == 0) return;
  size_t feats = 0;
  Defines defs = lane_defines(rt, feats);
  add_weight_define(defs, ex.gate_up.dtype);
  Tensor h = rt.empty({NE, I}, DType::f32, "moe hidden");
  Tensor hs = shared ? rt.empty({T, Is}, DType::f32, "moe shared hidden") : h;  // unused without shared
  const Tensor& ws = shared ? shared->gate_up : ex.gate_up;
  const Tensor& wsd = shared ? shared->down : ex.down;
  const cl_int cH = static_cast<cl_int>(H), cI = static_cast<cl_int>(I), cK = static_cast<cl_int>(K),
               cE = static_cast<cl_int>(ex.E), cT = static_cast<cl_int>(T), cIs = static_cast<cl_int>(Is);
  const size_t entries = static_cast<size_t>(NE + (Is > 0 ? T : 0));
  rt.launch(rt.kernel("moe_decode.cl", "moe_decode_gate_up_f32", defs),
            cl::NDRange(kDWG * entries, ceil_div(static_cast<size_t>(std::max(I, Is)), feats)), cl::NDRange(kDWG, 1), x,
            ids, ex.gate_up, h, cH, cI, cK, cE, cT, ws, hs, cIs);
  rt.launch(rt.kernel("moe_decode.cl", "moe_decode_down_f32", defs),
            cl::NDRange(kDWG * static_cast<size_t>(T), ceil_div(static_cast<size_t>(H), feats)), cl::NDRange(kDWG, 1),
            h, ids, weights, ex.down, y, cI, cH, cK, cE, hs, wsd, cIs);
}

void moe_decode(Runtime& rt, const Tensor& x, const Tensor& router_w, const MoeExperts& ex, const MoeShared* shared,
                const MoeRouting& routing, Tensor& y, const MoeInputNorm* in_norm) {
  constexpr const char* op = "moe_decode";
  check_moe_experts(op, x, ex, y);
  const int64_t T = x.dim(0), E = ex.E, H = ex.H, k = routing.top_k;
  const DType rt_dt = router_w.dtype;
  if (!router_w.defined() || router_w.shape != Shape{E, H} || !is_weight_dtype(rt_dt) ||
      (dtype_is_quantized(rt_dt) && H % 32 != 0))
    throw Error(fmt::format("{}: router weight is {}, expected [{},{}] f32, f16, bf16, q8 or q4", op,
                            tensor_str(router_w), E, H));
  if (shared) {
    const int64_t Is = shared->down.defined() ? shared->down.dim(-1) : 0;
    if (Is < 1 || shared->down.shape != Shape{H, Is} || shared->gate_up.shape != Shape{2 * Is, H})
      throw Error(fmt::format("{}: shared experts gate_up {} and down {} must be [2*Is,{}] and [{},Is]", op,
                              tensor_str(shared->gate_up), tensor_str(shared->down), H, H));
    if (!moe_decode_takes(ex, shared))
      throw Error(fmt::format("{}: shared experts ({}, {}) must be stored as the routed experts ({})", op,
                              tensor_str(shared->gate_up), tensor_str(shared->down), dtype_name(ex.gate_up.dtype)));
  }
  if (k < 1 || k > E) throw Error(fmt::format("{}: top_k = {} must be in [1, E = {}]", op, k, E));
  const size_t local = 4 * (static_cast<size_t>(E) + k + kDWG) + 64;
  if (local > rt.device().local_mem)
    throw NotImplemented(fmt::format("{}: E = {} needs {} bytes of local memory, the device has {}", op, E, local,
                                     rt.device().local_mem));
  if (in_norm) check_input_norm(op, x, *in_norm);
  if (T == 0) return;
  Tensor ids = rt.empty({T, k}, DType::i32, "moe topk ids"), w = rt.empty({T, k}, DType::f32, "moe topk weights");
  size_t feats = 0;
  Defines defs = lane_defines(rt, feats);
  add_weight_define(defs, rt_dt);
  const cl_int norm = routing.norm_topk_prob && k > 1 ? 1 : 0;
  const cl::NDRange global(kDWG * static_cast<size_t>(T)), local_range(kDWG);
  const cl_int cH = static_cast<cl_int>(H), cE = static_cast<cl_int>(E), ck = static_cast<cl_int>(k);
  const cl_float scale = routing.routed_scaling_factor;
  const auto p = cl::Local(4 * static_cast<size_t>(E)), sel = cl::Local(4 * static_cast<size_t>(k));
  if (!in_norm) {
    rt.launch(rt.kernel("moe_decode.cl", "moe_route_x_f32", defs), global, local_range, x, router_w, ids, w, cH, cE, ck,
              norm, scale, p, sel);
    moe_decode_experts(rt, x, ex, ids, w, shared, y);
    return;
  }
  defs["X_NORM"] = "1";
  const MoeInputNorm& n = *in_norm;
  const cl_int nadd = n.a.defined() ? (n.b.defined() ? 2 : 1) : 0;
  const Tensor& a = n.a.defined() ? n.a : x;  // unused when nadd says so
  const Tensor& b = n.b.defined() ? n.b : a;
  rt.launch(rt.kernel("moe_decode.cl", "moe_route_x_f32", defs), global, local_range, x, a, b, nadd, n.weight,
            static_cast<cl_float>(n.eps), n.xn, router_w, ids, w, cH, cE, ck, norm, scale, p, sel);
  moe_decode_experts(rt, n.xn, ex, ids, w, shared, y);
}

}  // namespace dsocr::ops
