// Exact dtype conversions on the device (kernels/convert.cl): weights widened for CLBlast, or
// narrowed to bf16 for compact storage.
#pragma once
#include "runtime/runtime.h"

namespace dsocr {

// dst (f32) = src (f16, bf16 or f32) widened, exactly; as many elements (shapes may differ).
void widen_to_f32(Runtime& rt, const Tensor& src, Tensor& dst);

// dst (bf16 bits) = src (f32) rounded to nearest, ties to even; overflow gives ±inf, NaN stays NaN
// (quiet), -0 stays -0. As many elements. Makes weights bf16 on the device.
void narrow_to_bf16(Runtime& rt, const Tensor& src_f32, Tensor& dst_bf16);

}  // namespace dsocr
