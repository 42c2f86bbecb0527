// DeepSeek-OCR-2's Qwen2 "causal flow" encoder (model-spec §1.3, §5 "v2 encoder"), fp32 on the
// device: N SAM tokens followed by N learned queries go through Qwen2 decoder layers (RMSNorm,
// GQA with half-rotation RoPE at positions 0..2N-1, SwiGLU) under the mask
//
//   image -> image allowed, image -> query blocked, query -> image allowed, query_i -> query_j iff j <= i
//
// (SdpaParams{causal, causal_prefix = N}: a rule in the attention kernel, no mask in memory);
// only the query rows are kept, then the final norm.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "runtime/ops/rope.h"
#include "runtime/runtime.h"

namespace dsocr {

struct Qwen2EncoderLayer {
  Tensor in_norm, post_norm;  // [hidden]
  Tensor qkv_w;               // [(H + 2*Hkv)*hd, hidden]: q_proj | k_proj | v_proj rows
  Tensor qkv_b;               // [(H + 2*Hkv)*hd]: q | k | v biases
  Tensor o_w;                 // [hidden, H*hd], no bias
  Tensor gate_up;             // [2*I, hidden]: gate_proj | up_proj rows
  Tensor down;                // [hidden, I]
};

struct Qwen2Encoder {
  Qwen2EncoderConfig cfg;
  std::vector<Qwen2EncoderLayer> layers;
  Tensor norm;                          // [hidden]
  Tensor query_768;                     // [tile_queries, hidden]   (tiles: N = 144 in the checkpoint)
  Tensor query_1024;                    // [global_queries, hidden] (global view: N = 256)
  ops::RopeFreqs rope;                  // inverse frequencies [head_dim/2] for rope_theta
  std::map<int64_t, Tensor> positions;  // N -> [2N] i32 0..2N-1, made at load for both tables
};

// Weights named relative to the encoder (prefix "model.qwen2_model." in the official checkpoint):
// model.model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj, input_layernorm,
// post_attention_layernorm}, model.model.norm.weight, query_768.weight, query_1024.weight. Throws
// Error for an inconsistent config (heads not dividing hidden, kv heads not dividing heads, an odd
// head dim, equal query counts) and, from the source, for a missing tensor or a wrong shape.
Qwen2Encoder load_qwen2_encoder(Runtime& rt, const WeightSource& w, const Qwen2EncoderConfig& cfg);

// The learned queries for a view of N image tokens: query_768 when N = tile_queries, query_1024
// when N = global_queries; Error naming both counts otherwise.
const Tensor& qwen2_queries(const Qwen2Encoder& enc, int64_t N);

// One layer, in place on x [B, 2N, hidden] (N image tokens then N queries); positions [2N] i32:
//   x += o_proj(attn(rope(q), rope(k), v)) of rms_norm(x), mask causal with prefix N (see the top);
//   x += down(silu(gate(h)) * up(h)), h = rms_norm(x).
void qwen2_encoder_layer_forward(Runtime& rt, const Qwen2EncoderConfig& cfg, const Qwen2EncoderLayer& l,
                                 const ops::RopeFreqs& rope, Tensor& x, const Tensor& positions, int64_t N);

// features [B, N, hidden] (SAM's net_3 output flattened row-major, N = tile_queries or
// global_queries) -> [B, N, hidden]: the query rows after the last layer and the final norm.
// taps (optional): "inputs" [B,2N,hidden] (features | queries), "layers.N" [B,2N,hidden] after
// layer N (image rows included, no norm), "norm" [B,N,hidden] (the output).
Tensor qwen2_encoder_forward(Runtime& rt, const Qwen2Encoder& enc, const Tensor& features,
                             std::map<std::string, Tensor>* taps = nullptr);

}  // namespace dsocr
