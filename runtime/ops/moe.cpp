#include "runtime/ops/moe.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>

#include "runtime/ops/moe_decode.h"
#include "runtime/ops/weight_format.h"

namespace dsocr::ops {
namespace {

// Constants of kernels/moe.cl (its defaults; the grid arithmetic below depends on them).
constexpr size_t kWG = 64;         // WG: router work-group size
constexpr size_t kGroupWG = 256;   // GROUP_WG: grouping kernels
constexpr int64_t kBM = 32;        // BM: row tile of the grouped GEMMs (segment padding)
constexpr int64_t kGateUpBN = 64;  // columns of I per moe_gate_up_f32 work-group
constexpr int64_t kDownBN = 128;   // columns of H per moe_down_f32 work-group
// Bounds the grouping scan's loops (Mesa llvmpipe's loop limiter: 65535 iterations per work-item;
// the scan runs about NE/256 + NE/32 + E of them) and keeps every index within 32 bits.
constexpr int64_t kMaxEntries = 1 << 20;

void expect(bool ok, const char* op, const char* name, const Tensor& t, const std::string& want) {
  if (!ok) throw Error(fmt::format("{}: {} is {}, expected {}", op, name, tensor_str(t), want));
}

}  // namespace

void moe_route(Runtime& rt, const Tensor& logits, int top_k, bool norm_topk_prob, float routed_scaling_factor,
               Tensor& ids, Tensor& weights) {
  constexpr const char* op = "moe_route";
  expect(logits.defined() && logits.rank() == 2 && logits.dtype == DType::f32, op, "logits", logits, "[T,E] f32");
  const int64_t T = logits.dim(0), E = logits.dim(1);
  if (E < 1) throw Error(fmt::format("{}: logits {} has no experts", op, shape_str(logits.shape)));
  if (top_k < 1 || top_k > E)
    throw Error(
        fmt::format("{}: top_k = {} must be in [1, E = {}] (logits {})", op, top_k, E, shape_str(logits.shape)));
  const std::string want = fmt::format("[{},{}]", T, top_k);
  expect(ids.defined() && ids.shape == Shape{T, top_k} && ids.dtype == DType::i32, op, "ids", ids, want + " i32");
  expect(weights.defined() && weights.shape == Shape{T, top_k} && weights.dtype == DType::f32, op, "weights", weights,
         want + " f32");
  if (E > INT_MAX / 4 || T > INT_MAX)
    throw NotImplemented(fmt::format("{}: logits {} exceeds the 32-bit index range", op, shape_str(logits.shape)));
  size_t local = 4 * (static_cast<size_t>(E) + top_k + kWG) + 64;
  if (local > rt.device().local_mem)
    throw NotImplemented(fmt::format("{}: E = {} needs {} bytes of local memory, the device has {}", op, E, local,
                                     rt.device().local_mem));
  if (T == 0) return;
  auto& k = rt.kernel("moe.cl", "moe_route_f32");
  const cl_int norm = norm_topk_prob && top_k > 1 ? 1 : 0;
  rt.launch(k, cl::NDRange(static_cast<size_t>(T) * kWG), cl::NDRange(kWG), logits, ids, weights,
            static_cast<cl_int>(E), static_cast<cl_int>(top_k), norm, static_cast<cl_float>(routed_scaling_factor),
            cl::Local(4 * static_cast<size_t>(E)), cl::Local(4 * static_cast<size_t>(top_k)));
}

void check_moe_experts(const char* op, const Tensor& x, const MoeExperts& ex, const Tensor& y) {
  const int64_t E = ex.E, I = ex.I, H = ex.H;
  if (E < 1 || I < 1 || H < 1) throw Error(fmt::format("{}: experts have E = {}, I = {}, H = {}", op, E, I, H));
  const DType wt = ex.gate_up.dtype;
  expect(ex.gate_up.defined() && ex.gate_up.shape == Shape{E, 2 * I, H} &&
             is_weight_dtype(wt) && (!dtype_is_quantized(wt) || (H % 32 == 0 && I % 32 == 0)),
         op, "gate_up", ex.gate_up,
         fmt::format("[{},{},{}] f32, f16, bf16, q8 or q4 (quantised: H and I multiples of 32)", E, 2 * I, H));
  expect(ex.down.defined() && ex.down.shape == Shape{E, H, I} && ex.down.dtype == wt, op, "down", ex.down,
         fmt::format("[{},{},{}] {} (the dtype of gate_up)", E, H, I, dtype_name(wt)));
  expect(x.defined() && x.rank() == 2 && x.dim(1) == H && x.dtype == DType::f32, op, "x", x,
         fmt::format("[T,{}] f32", H));
  const int64_t T = x.dim(0);
  expect(y.defined() && y.shape == Shape{T, H} && y.dtype == DType::f32, op, "y", y, fmt::format("[{},{}] f32", T, H));
}

void moe_experts(Runtime& rt, const Tensor& x, const MoeExperts& ex, const Tensor& ids, const Tensor& weights,
                 Tensor& y, MoePath path) {
  constexpr const char* op = "moe_experts";
  check_moe_experts(op, x, ex, y);
  const int64_t E = ex.E, I = ex.I, H = ex.H, T = x.dim(0);
  const DType wt = ex.gate_up.dtype;
  expect(ids.defined() && ids.rank() == 2 && ids.dim(0) == T && ids.dim(1) >= 1 && ids.dtype == DType::i32, op, "ids",
         ids, fmt::format("[{},k] i32", T));
  const int64_t K = ids.dim(1);
  expect(weights.defined() && weights.shape == Shape{T, K} && weights.dtype == DType::f32, op, "weights", weights,
         fmt::format("[{},{}] f32", T, K));
  const int64_t NE = T * K;
  if (NE > kMaxEntries || NE * std::max(H, I) > INT_MAX || E * 2 * I > INT_MAX)
    throw NotImplemented(
        fmt::format("{}: T = {}, k = {}, E = {}, I = {}, H = {} exceeds the supported range "
                    "(at most {} token-slot entries; split the tokens)",
                    op, T, K, E, I, H, kMaxEntries));
  if (T == 0) return;
  if (path == MoePath::automatic) path = T <= kMoeDecodeMaxTokens ? MoePath::decode : MoePath::grouped;
  if (path == MoePath::decode) {
    moe_decode_experts(rt, x, ex, ids, weights, nullptr, y);
    return;
  }

  Defines defs;
  add_weight_define(defs, wt);
  const cl_int cH = static_cast<cl_int>(H), cI = static_cast<cl_int>(I), cK = static_cast<cl_int>(K),
               cE = static_cast<cl_int>(E);
  Tensor h = rt.empty({NE, I}, DType::f32, "moe hidden");

  // Grouped: sort the entries by expert (segments padded to kBM rows), then the tiled GEMMs.
  const int64_t NB = static_cast<int64_t>(ceil_div(NE, kGroupWG));
  const int64_t NT = static_cast<int64_t>(ceil_div(NE, kBM)) + E;  // worst-case row tiles
  if (8 * E + 64 > static_cast<int64_t>(rt.device().local_mem))
    throw NotImplemented(fmt::format("{}: E = {} experts need {} bytes of local memory, the device has {}", op, E,
                                     8 * E + 64, rt.device().local_mem));
  Tensor rank = rt.empty({NE}, DType::i32, "moe rank in block");
  Tensor blk = rt.empty({NB, E}, DType::i32, "moe block counts");
  Tensor seg = rt.empty({E}, DType::i32, "moe segment starts");
  Tensor tile_expert = rt.empty({NT}, DType::i32, "moe tile experts");
  Tensor perm = rt.empty({NT * kBM}, DType::i32, "moe permutation");
  Tensor o = rt.empty({NE, H}, DType::f32, "moe expert outputs");
  const cl_int cNE = static_cast<cl_int>(NE);
  rt.launch(rt.kernel("moe.cl", "moe_group_count_i32", defs), cl::NDRange(NB * kGroupWG), cl::NDRange(kGroupWG), ids,
            rank, blk, cNE, cE);
  rt.launch(rt.kernel("moe.cl", "moe_group_scan_i32", defs), cl::NDRange(kGroupWG), cl::NDRange(kGroupWG), blk, seg,
            tile_expert, perm, cE, static_cast<cl_int>(NB), static_cast<cl_int>(NT), cl::Local(8 * E));
  rt.launch(rt.kernel("moe.cl", "moe_group_scatter_i32", defs), cl::NDRange(round_up(NE, kGroupWG)),
            cl::NDRange(kGroupWG), ids, rank, blk, seg, perm, cNE, cE);
  rt.launch(rt.kernel("moe.cl", "moe_gate_up_f32", defs), cl::NDRange(16 * ceil_div(I, kGateUpBN), 16 * NT),
            cl::NDRange(16, 16), x, ex.gate_up, perm, tile_expert, h, cH, cI, cK);
  rt.launch(rt.kernel("moe.cl", "moe_down_f32", defs), cl::NDRange(16 * ceil_div(H, kDownBN), 16 * NT),
            cl::NDRange(16, 16), h, ex.down, perm, tile_expert, o, cI, cH);
  rt.launch(rt.kernel("moe.cl", "moe_combine_f32", defs), cl::NDRange(round_up(H, 64), T), cl::NDRange(64, 1), o, ids,
            weights, y, cH, cK, cE);
}

}  // namespace dsocr::ops
