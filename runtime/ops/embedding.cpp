#include "runtime/ops/embedding.h"

#include <fmt/format.h>

#include <climits>

namespace dsocr::ops {

void embedding(Runtime& rt, const Tensor& table, const Tensor& ids, Tensor& y) {
  if (table.rank() != 2 || (table.dtype != DType::f32 && table.dtype != DType::f16 && table.dtype != DType::bf16))
    throw Error(fmt::format("embedding: table is {} {}, expected [V,C] f32, f16 or bf16", shape_str(table.shape),
                            dtype_name(table.dtype)));
  const int64_t V = table.dim(0), C = table.dim(1);
  if (ids.rank() != 1 || ids.dtype != DType::i32)
    throw Error(fmt::format("embedding: ids is {} {}, expected [T] i32", shape_str(ids.shape), dtype_name(ids.dtype)));
  const int64_t T = ids.dim(0);
  if (y.dtype != DType::f32 || y.shape != Shape{T, C})
    throw Error(
        fmt::format("embedding: y is {} {}, expected [{},{}] f32", shape_str(y.shape), dtype_name(y.dtype), T, C));
  if (V > INT_MAX || C > INT_MAX || T > INT_MAX)
    throw NotImplemented(fmt::format("embedding: table {} or ids {} exceed the 32-bit index range",
                                     shape_str(table.shape), shape_str(ids.shape)));
  if (T == 0 || C == 0) return;
  const Defines defs{{"WEIGHT_F16", table.dtype == DType::f16 ? "1" : "0"},
                     {"WEIGHT_BF16", table.dtype == DType::bf16 ? "1" : "0"}};
  auto& k = rt.kernel("embedding.cl", "embedding_gather_f32", defs);
  constexpr size_t kWG = 64;
  rt.launch(k, cl::NDRange(round_up(static_cast<size_t>(C), kWG), static_cast<size_t>(T)), cl::NDRange(kWG, 1), table,
            ids, y, static_cast<cl_int>(V), static_cast<cl_int>(C));
}

}  // namespace dsocr::ops
