// Which storage formats the matrix kernels read (kernels/weights.cl) and the KV cache is kept in
// (kernels/kv_storage.cl), and the program defines that select one. Shared by the linear, MoE,
// rope and sdpa ops.
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// f32, f16, bf16, q8 or q4.
bool is_weight_dtype(DType t);
// Adds the WEIGHT_* define of t (none for f32).
void add_weight_define(Defines& d, DType t);
// Adds the KV_* define of a KV cache stored as t (kernels/kv_storage.cl: KV_F16, KV_BF16; none for
// f32), shared by the programs that write the cache (rope.cl) and read it (sdpa.cl).
void add_kv_define(Defines& d, DType t);

}  // namespace dsocr::ops
