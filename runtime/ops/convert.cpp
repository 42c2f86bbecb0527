#include "runtime/ops/convert.h"

#include <fmt/format.h>

#include <climits>

namespace dsocr {

void widen_to_f32(Runtime& rt, const Tensor& src, Tensor& dst) {
  if (dst.dtype != DType::f32 || dst.numel() != src.numel())
    throw Error(fmt::format("widen_to_f32: dst is {} {}, expected f32 with the {} elements of src {} {}",
                            shape_str(dst.shape), dtype_name(dst.dtype), src.numel(), shape_str(src.shape),
                            dtype_name(src.dtype)));
  const char* name = src.dtype == DType::f16    ? "widen_f16"
                     : src.dtype == DType::bf16 ? "widen_bf16"
                     : src.dtype == DType::f32  ? "copy_f32"
                                                : nullptr;
  if (!name)
    throw Error(fmt::format("widen_to_f32: src is {} {}, expected f32, f16 or bf16", shape_str(src.shape),
                            dtype_name(src.dtype)));
  size_t n = static_cast<size_t>(src.numel());
  if (n > static_cast<size_t>(INT_MAX))
    throw NotImplemented(fmt::format("widen_to_f32: {} elements exceed the 32-bit index range", n));
  if (n == 0) return;
  auto& k = rt.kernel("convert.cl", name);
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), src, dst, static_cast<cl_int>(n));
}

void narrow_to_bf16(Runtime& rt, const Tensor& src, Tensor& dst) {
  if (src.dtype != DType::f32)
    throw Error(fmt::format("narrow_to_bf16: src is {} {}, expected f32", shape_str(src.shape), dtype_name(src.dtype)));
  if (dst.dtype != DType::bf16 || dst.numel() != src.numel())
    throw Error(fmt::format("narrow_to_bf16: dst is {} {}, expected bf16 with the {} elements of src {}",
                            shape_str(dst.shape), dtype_name(dst.dtype), src.numel(), shape_str(src.shape)));
  size_t n = static_cast<size_t>(src.numel());
  if (n > static_cast<size_t>(INT_MAX))
    throw NotImplemented(fmt::format("narrow_to_bf16: {} elements exceed the 32-bit index range", n));
  if (n == 0) return;
  auto& k = rt.kernel("convert.cl", "narrow_bf16");
  rt.launch(k, cl::NDRange(round_up(n, 256)), cl::NDRange(256), src, dst, static_cast<cl_int>(n));
}

}  // namespace dsocr
