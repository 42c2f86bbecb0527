#include "runtime/ops/argmax.h"

#include <fmt/format.h>

#include <climits>

namespace dsocr::ops {

void argmax(Runtime& rt, const Tensor& x, const Tensor* banned, int nb, Tensor& idx, bool per_row) {
  if (x.rank() != 2 || x.dtype != DType::f32)
    throw Error(fmt::format("argmax: x is {} {}, expected [R,N] f32", shape_str(x.shape), dtype_name(x.dtype)));
  const int64_t R = x.dim(0), N = x.dim(1);
  if (N < 1) throw Error(fmt::format("argmax: x {} has empty rows", shape_str(x.shape)));
  if (idx.dtype != DType::i32 || idx.shape != Shape{R})
    throw Error(fmt::format("argmax: idx is {} {}, expected [{}] i32 (rows of x {})", shape_str(idx.shape),
                            dtype_name(idx.dtype), R, shape_str(x.shape)));
  if (nb < 0) throw Error(fmt::format("argmax: nb = {} banned ids must not be negative", nb));
  if (nb > 0) {
    if (!banned || !banned->defined()) throw Error(fmt::format("argmax: nb = {} banned ids but no banned tensor", nb));
    if (!per_row && (banned->dtype != DType::i32 || banned->rank() != 1 || banned->numel() < nb))
      throw Error(fmt::format("argmax: banned is {} {}, expected i32 [>= {}] (nb)", shape_str(banned->shape),
                              dtype_name(banned->dtype), nb));
    if (per_row && (banned->dtype != DType::i32 || banned->numel() < R * nb))
      throw Error(fmt::format("argmax: banned is {} {}, expected i32 [{}, {}] (a list per row)",
                              shape_str(banned->shape), dtype_name(banned->dtype), R, nb));
  }
  if (N > INT_MAX - 65536 || R > INT_MAX)
    throw NotImplemented(fmt::format("argmax: x {} exceeds the 32-bit index range", shape_str(x.shape)));
  if (R == 0) return;
  constexpr size_t kWG = 256;
  auto& k = rt.kernel("argmax.cl", "argmax_rows_f32", {{"WG", std::to_string(kWG)}});
  const Tensor& ban = nb > 0 ? *banned : x;  // an unused placeholder buffer when nothing is banned
  rt.launch(k, cl::NDRange(static_cast<size_t>(R) * kWG), cl::NDRange(kWG), x, static_cast<cl_int>(N), ban,
            static_cast<cl_int>(nb), static_cast<cl_int>(per_row ? nb : 0), idx);
}

}  // namespace dsocr::ops
