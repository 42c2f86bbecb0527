#include "runtime/ops/activation.h"

#include <fmt/format.h>

namespace dsocr::ops {

Act parse_act(const std::string& name) {
  if (name == "gelu") return Act::gelu;
  if (name == "quick_gelu") return Act::quick_gelu;
  if (name == "silu") return Act::silu;
  throw Error(fmt::format("unknown activation '{}' (expected gelu, quick_gelu or silu)", name));
}

void activation(Runtime& rt, Act act, const Tensor& x, Tensor& y) {
  if (x.numel() != y.numel()) throw Error(fmt::format("activation: x {} and y {} differ", shape_str(x.shape), shape_str(y.shape)));
  const char* name = act == Act::gelu ? "gelu_f32" : act == Act::quick_gelu ? "quick_gelu_f32" : "silu_f32";
  auto& k = rt.kernel("activation.cl", name);
  size_t n = static_cast<size_t>(x.numel());
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), x, y, static_cast<cl_int>(n));
}

void swiglu(Runtime& rt, const Tensor& gate, const Tensor& up, Tensor& y, int rows, int width, int ld, int gate_off,
            int up_off) {
  if (y.numel() < static_cast<int64_t>(rows) * width) throw Error("swiglu: y too small");
  auto& k = rt.kernel("activation.cl", "swiglu_f32");
  rt.launch(k, cl::NDRange(round_up(width, 64), rows), cl::NDRange(64, 1), gate, up, y, rows, width, ld, gate_off,
            up_off);
}

}  // namespace dsocr::ops
