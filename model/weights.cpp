#include "model/weights.h"

#include <fmt/format.h>

namespace dsocr {

WeightStorage weight_storage_from_string(const std::string& s) {
  if (s == "compact" || s == "bf16") return WeightStorage::compact;
  if (s == "f32") return WeightStorage::f32;
  throw Error(fmt::format("unknown weight storage '{}': use compact (bf16/f16 matrices kept as stored) or f32", s));
}

const char* weight_storage_name(WeightStorage s) { return s == WeightStorage::compact ? "compact" : "f32"; }

Tensor StoreWeights::load_matrix(Runtime& rt, const std::string& name, const Shape& expected) const {
  if (storage_ == WeightStorage::compact) {
    StDType t = store_.stored_dtype(prefix_ + name, expected);
    if (t == StDType::bf16) return store_.upload(rt, prefix_ + name, expected, DType::bf16);
    if (t == StDType::f16) return store_.upload(rt, prefix_ + name, expected, DType::f16);
  }
  return store_.upload(rt, prefix_ + name, expected);
}

}  // namespace dsocr
