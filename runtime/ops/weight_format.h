// Which storage formats the matrix kernels read (kernels/weights.cl), and the program defines
// that select one. Shared by the linear and MoE ops.
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// f32, f16, bf16, q8 or q4.
bool is_weight_dtype(DType t);
// Adds the WEIGHT_* define of t (none for f32).
void add_weight_define(Defines& d, DType t);

}  // namespace dsocr::ops
