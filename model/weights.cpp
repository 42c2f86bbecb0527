#include "model/weights.h"

#include <fmt/format.h>

#include <cstring>

#include "runtime/half.h"
#include "runtime/quant.h"

namespace dsocr {
namespace {

// "x.weight" -> "x.scales" / "x.biases" (the file layout of quantised matrices), or "" otherwise.
std::string sibling(const std::string& name, const char* part) {
  const std::string suffix = ".weight";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return {};
  return name.substr(0, name.size() - suffix.size() + 1) + part;
}

std::vector<uint16_t> halves(const TensorView& t) {
  std::vector<uint16_t> h(static_cast<size_t>(t.numel()));
  if (t.dtype == StDType::f16) {
    std::memcpy(h.data(), t.data, h.size() * 2);
  } else {
    std::vector<float> f = WeightStore::to_f32(t);
    for (size_t i = 0; i < f.size(); ++i) h[i] = f32_to_f16(f[i]);
  }
  return h;
}

}  // namespace

WeightStorage weight_storage_from_string(const std::string& s) {
  if (s == "bf16" || s == "compact") return WeightStorage::bf16;
  if (s == "fp16" || s == "f16") return WeightStorage::fp16;
  if (s == "int8") return WeightStorage::int8;
  if (s == "int4") return WeightStorage::int4;
  if (s == "f32") return WeightStorage::f32;
  throw Error(fmt::format(
      "unknown weight storage '{}': use bf16 (as stored; alias compact), fp16, int8, int4 or f32", s));
}

const char* weight_storage_name(WeightStorage s) {
  switch (s) {
    case WeightStorage::bf16:
      return "bf16";
    case WeightStorage::fp16:
      return "fp16";
    case WeightStorage::int8:
      return "int8";
    case WeightStorage::int4:
      return "int4";
    case WeightStorage::f32:
      return "f32";
  }
  return "?";
}

DType weight_storage_dtype(WeightStorage s, MatrixRole role) {
  switch (s) {
    case WeightStorage::fp16:
      return DType::f16;
    case WeightStorage::int8:
      return role == MatrixRole::lm_linear ? DType::q8 : DType::bf16;
    case WeightStorage::int4:
      return role == MatrixRole::lm_linear ? DType::q4 : DType::bf16;
    case WeightStorage::f32:
      return DType::f32;
    default:
      return DType::bf16;
  }
}

// A matrix written quantised (X.weight U32 codes, X.scales, X.biases; runtime/quant.h).
Tensor StoreWeights::load_quantized_file(Runtime& rt, const std::string& full, const Shape& expected) const {
  const TensorView& w = store_.get(full);
  const TensorView& sc = store_.get(sibling(full, "scales"));
  const TensorView& of = store_.get(sibling(full, "biases"));
  const int64_t N = expected.at(0), K = expected.at(1);
  const bool words = w.dtype == StDType::u32 && w.shape.size() == 2 && w.shape[0] == N && K % kQuantGroup == 0;
  const int64_t bits = words ? w.shape[1] * 32 / K : 0;
  const Shape groups{N, K / kQuantGroup};
  if (!words || (bits != 8 && bits != 4) || w.shape[1] * 32 != bits * K || sc.shape != groups || of.shape != groups ||
      (sc.dtype != StDType::f16 && sc.dtype != StDType::bf16) || of.dtype != sc.dtype)
    throw Error(fmt::format(
        "tensor {} is quantised ({} {}, scales {} {}, biases {} {}), but not as [{}, {}*bits/32] U32 codes with "
        "F16/BF16 scales and biases [{}, {}] (group 32, 8 or 4 bits) for the config's shape {}",
        full, st_dtype_name(w.dtype), shape_str(w.shape), st_dtype_name(sc.dtype), shape_str(sc.shape),
        st_dtype_name(of.dtype), shape_str(of.shape), N, K, N, K / kQuantGroup, shape_str(expected)));
  const DType t = bits == 8 ? DType::q8 : DType::q4;
  auto blocks = blocks_from_parts(t, w.data, halves(sc).data(), halves(of).data(), N * K);
  if (storage_ == WeightStorage::f32) {
    auto f = dequantize(t, blocks.data(), N * K);
    return rt.upload(f.data(), expected, DType::f32, full);
  }
  return rt.upload(blocks.data(), expected, t, full);
}

Tensor StoreWeights::load_matrix(Runtime& rt, const std::string& name, const Shape& expected, MatrixRole role) const {
  const std::string full = prefix_ + name;
  const std::string scales = sibling(full, "scales");
  if (!scales.empty() && store_.has(scales) && expected.size() == 2) return load_quantized_file(rt, full, expected);
  const DType want = weight_storage_dtype(storage_, role);
  const StDType stored = store_.stored_dtype(full, expected);
  auto as_stored = [&] {
    if (stored == StDType::bf16) return store_.upload(rt, full, expected, DType::bf16);
    if (stored == StDType::f16) return store_.upload(rt, full, expected, DType::f16);
    return store_.upload(rt, full, expected);
  };
  if (want == DType::f32) return store_.upload(rt, full, expected);
  if (want == DType::bf16 || (want == DType::f16 && stored == StDType::f16)) return as_stored();
  std::vector<float> f = WeightStore::to_f32(store_.get(full, expected));
  if (want == DType::f16) {
    const int64_t bad = first_beyond_half(f.data(), static_cast<int64_t>(f.size()));
    if (bad >= 0) {
      notes_->push_back(fmt::format("{} kept as {}: {} is beyond fp16's range", full, st_dtype_name(stored), f[bad]));
      return as_stored();
    }
    std::vector<uint16_t> h(f.size());
    for (size_t i = 0; i < f.size(); ++i) h[i] = f32_to_f16(f[i]);
    return rt.upload(h.data(), expected, DType::f16, full);
  }
  // q8 / q4
  if (expected.size() != 2 || expected[1] % kQuantGroup != 0 || !quantizable(f.data(), static_cast<int64_t>(f.size()))) {
    notes_->push_back(fmt::format("{} kept as {}: not quantisable ({}; needs an input size that is a multiple of 32 "
                                  "and every value finite within fp16's range)",
                                  full, st_dtype_name(stored), shape_str(expected)));
    return as_stored();
  }
  auto blocks = quantize(want, f.data(), static_cast<int64_t>(f.size()));
  return rt.upload(blocks.data(), expected, want, full);
}

}  // namespace dsocr
