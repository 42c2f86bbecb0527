// Elementwise activations (kernels/activation.cl).
#pragma once
#include <string>

#include "runtime/runtime.h"

namespace dsocr::ops {

enum class Act { gelu, quick_gelu, silu };
Act parse_act(const std::string& name);  // "gelu" | "quick_gelu" | "silu"

// y = act(x), any shape; y may alias x.
void activation(Runtime& rt, Act act, const Tensor& x, Tensor& y);

// y [rows, width] = silu(gate) * up, where gate/up are [rows, width] dense (ld = width) or
// halves of one [rows, 2*width] tensor (pass the same tensor and the column offsets).
void swiglu(Runtime& rt, const Tensor& gate, const Tensor& up, Tensor& y, int rows, int width, int ld,
            int gate_off = 0, int up_off = 0);

}  // namespace dsocr::ops
