// Embedding lookup (kernels/embedding.cl): y[t] = table[ids[t]].
#pragma once
#include "runtime/runtime.h"

namespace dsocr::ops {

// table [V,C] f32, f16 or bf16; ids [T] i32; y [T,C] f32 (fp16 and bf16 rows are widened exactly).
// The op does not read ids back: callers validate token ids on the host before uploading them.
// As a device-side guard, an id outside [0,V) yields a row of zeros (never an out-of-bounds read).
// Throws Error on mismatched shapes or dtypes.
void embedding(Runtime& rt, const Tensor& table, const Tensor& ids, Tensor& y);

}  // namespace dsocr::ops
