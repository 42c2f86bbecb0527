// The MoE block of DeepSeek-V2 for a few tokens (decode), kernels/moe_decode.cl: router, routing,
// routed experts and shared experts (and, with in_norm, the RMSNorm before them) in three launches
// instead of six (or seven), reading only the chosen experts' weights.
#pragma once
#include "runtime/ops/moe.h"

namespace dsocr::ops {

// The shared experts: one SwiGLU MLP of Is = n_shared_experts * I rows.
struct MoeShared {
  Tensor gate_up;  // [2*Is, H]: shared_experts.gate_proj rows, then up_proj rows
  Tensor down;     // [H, Is]
};

struct MoeRouting {
  int top_k = 1;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
};

// y [T,H] = sum_s weights[t,s] * E_{ids[t,s]}(x[t]) + shared(x[t]), x [T,H] f32, where ids and
// weights are moe_route's of the logits x router_w^T (router_w [E,H]) and shared is added when
// given. Each output has the arithmetic of the sequence it replaces: linear() of the router
// (matrix-vector path), moe_route, moe_experts (decode path), the shared MLP by linear() and
// linear_swiglu() (matrix-vector path), routed + shared (bit for bit on rusticl; PoCL's compiler
// rounds some storages differently in the two programs, within 1e-6). Each token's row is its
// one-token result bit for bit. The shared matrices must
// be in the experts' storage (moe_decode_takes).
//
// in_norm (given): the RMSNorm in front of the block is done by the router's launch, one launch
// fewer. x is then the residual stream: x += in_norm->a (+ in_norm->b where defined; neither when
// a is undefined), written back, and the block runs on rms_norm(x) * in_norm->weight, left in
// in_norm->xn [T,H] (norm.cl's add_rms_norm_wide_f32 arithmetic over a work-group of 128: within
// rounding of ops::add_rms_norm, and the same for every token count).
struct MoeInputNorm {
  Tensor a, b;    // residual parts still to add, [T,H] f32, or undefined
  Tensor weight;  // [H] f32
  float eps = 1e-6f;
  Tensor xn;  // [T,H] f32: receives the normalised input
};
void moe_decode(Runtime& rt, const Tensor& x, const Tensor& router_w, const MoeExperts& ex, const MoeShared* shared,
                const MoeRouting& routing, Tensor& y, const MoeInputNorm* in_norm = nullptr);

// Whether moe_decode takes these shared experts: none, or both matrices in the experts' dtype.
bool moe_decode_takes(const MoeExperts& ex, const MoeShared* shared);

// The expert launches of moe_decode for given ids and weights [T,k] (moe_experts' decode path,
// inputs checked by the caller); shared as in moe_decode.
void moe_decode_experts(Runtime& rt, const Tensor& x, const MoeExperts& ex, const Tensor& ids, const Tensor& weights,
                        const MoeShared* shared, Tensor& y);

}  // namespace dsocr::ops
