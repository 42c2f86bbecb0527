// Mixture of experts of DeepSeek-V2 (kernels/moe.cl): softmax router with greedy top-k, and the
// routed SwiGLU experts. The router logits (x W_gate^T) and the shared experts are the caller's.
#pragma once
#include <cstdint>

#include "runtime/runtime.h"

namespace dsocr::ops {

// Every routed expert's weights stacked on the device (f32, f16, bf16 bits or q8/q4 blocks; both
// the same dtype).
struct MoeExperts {
  Tensor gate_up;  // [E, 2*I, H]: rows 0..I-1 = experts.e.gate_proj.weight, rows I..2I-1 = experts.e.up_proj.weight
  Tensor down;     // [E, H, I] = experts.e.down_proj.weight
  int64_t E = 0, I = 0, H = 0;
};

// logits [T,E] f32 -> softmax over E in fp32 -> top-k. ids [T,k] i32 and weights [T,k] f32, ordered
// by descending probability, ties: lower expert id first (as reference moe_route). weights =
// p * routed_scaling_factor, or p / (sum of the k p + 1e-20) when norm_topk_prob and k > 1.
void moe_route(Runtime& rt, const Tensor& logits, int top_k, bool norm_topk_prob, float routed_scaling_factor,
               Tensor& ids, Tensor& weights);

// How moe_experts computes: automatic picks decode for T <= kMoeDecodeMaxTokens, else grouped.
enum class MoePath {
  automatic,
  decode,   // matrix-vector kernels per (token, slot): reads only the chosen experts' weights
  grouped,  // entries sorted by expert on the device, tiled grouped GEMMs, deterministic combine
};
constexpr int64_t kMoeDecodeMaxTokens = 4;

// y [T,H] = sum_s weights[t,s] * E_{ids[t,s]}(x[t]),  E(x) = down(silu(gate x) * up x).
// x [T,H] f32; ids [T,k] i32; weights [T,k] f32; y [T,H] f32 (overwritten). ids and weights are
// read on the device only (no host round trip); an id outside [0,E) contributes nothing; y may
// alias x.
// Routed experts only: the caller adds the shared experts (or uses moe_decode, moe_decode.h).
void moe_experts(Runtime& rt, const Tensor& x, const MoeExperts& ex, const Tensor& ids, const Tensor& weights,
                 Tensor& y, MoePath path = MoePath::automatic);

// Throws Error (naming op) unless ex is a consistent set of experts (f32, f16, bf16, q8 or q4; both
// matrices alike; quantised: H and I multiples of 32), x is f32 [T,H] and y f32 [T,H].
void check_moe_experts(const char* op, const Tensor& x, const MoeExperts& ex, const Tensor& y);

}  // namespace dsocr::ops
