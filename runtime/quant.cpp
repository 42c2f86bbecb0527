#include "runtime/quant.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/error.h"
#include "runtime/half.h"

namespace dsocr {
namespace {

void check_n(DType t, int64_t n) {
  if (n < 0 || n % kQuantGroup != 0)
    throw Error(fmt::format("{} quantisation: {} values are not whole groups of {}", dtype_name(t), n, kQuantGroup));
}

void put_half(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }
uint16_t get_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

int code_at(DType t, const uint8_t* codes, int j) {
  if (t == DType::q8) return codes[j];
  return (codes[j >> 1] >> (4 * (j & 1))) & 0xf;
}

}  // namespace

int quant_bits(DType t) {
  if (t == DType::q8) return 8;
  if (t == DType::q4) return 4;
  throw Error(fmt::format("{} is not a quantised dtype", dtype_name(t)));
}

size_t quant_code_bytes(DType t) { return static_cast<size_t>(kQuantGroup * quant_bits(t) / 8); }
size_t quant_block_bytes(DType t) { return quant_code_bytes(t) + 4; }

bool quantizable(const float* w, int64_t n) {
  if (n % kQuantGroup != 0) return false;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i]) || std::fabs(w[i]) >= 65504.0f) return false;
  return true;
}

std::vector<uint8_t> quantize(DType t, const float* w, int64_t n) {
  check_n(t, n);
  const int levels = (1 << quant_bits(t)) - 1;
  const size_t cb = quant_code_bytes(t), bb = quant_block_bytes(t);
  std::vector<uint8_t> out(static_cast<size_t>(n / kQuantGroup) * bb, 0);
  for (int64_t g = 0; g < n / kQuantGroup; ++g) {
    const float* x = w + g * kQuantGroup;
    auto [lo_it, hi_it] = std::minmax_element(x, x + kQuantGroup);
    if (!std::isfinite(*lo_it) || !std::isfinite(*hi_it) || std::fabs(*lo_it) >= 65504.0f ||
        std::fabs(*hi_it) >= 65504.0f)
      throw Error(fmt::format("{} quantisation: group {} holds a value outside fp16's range", dtype_name(t), g));
    // The scale and offset as the kernels will see them (fp16), codes rounded against those.
    const uint16_t s16 = f32_to_f16((*hi_it - *lo_it) / static_cast<float>(levels));
    const uint16_t b16 = f32_to_f16(*lo_it);
    const float s = f16_to_f32(s16), b = f16_to_f32(b16);
    uint8_t* blk = out.data() + g * bb;
    for (int j = 0; j < kQuantGroup; ++j) {
      int q = s > 0.0f ? static_cast<int>(std::lround((x[j] - b) / s)) : 0;
      q = std::clamp(q, 0, levels);
      if (t == DType::q8)
        blk[j] = static_cast<uint8_t>(q);
      else
        blk[j >> 1] |= static_cast<uint8_t>(q << (4 * (j & 1)));
    }
    put_half(blk + cb, s16);
    put_half(blk + cb + 2, b16);
  }
  return out;
}

std::vector<float> dequantize(DType t, const uint8_t* blocks, int64_t n) {
  check_n(t, n);
  const size_t cb = quant_code_bytes(t), bb = quant_block_bytes(t);
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t g = 0; g < n / kQuantGroup; ++g) {
    const uint8_t* blk = blocks + g * bb;
    const float s = f16_to_f32(get_half(blk + cb)), b = f16_to_f32(get_half(blk + cb + 2));
    for (int j = 0; j < kQuantGroup; ++j) out[g * kQuantGroup + j] = s * static_cast<float>(code_at(t, blk, j)) + b;
  }
  return out;
}

std::vector<uint8_t> blocks_from_parts(DType t, const uint8_t* codes, const uint16_t* scales, const uint16_t* offsets,
                                       int64_t n) {
  check_n(t, n);
  const size_t cb = quant_code_bytes(t), bb = quant_block_bytes(t);
  std::vector<uint8_t> out(static_cast<size_t>(n / kQuantGroup) * bb);
  for (int64_t g = 0; g < n / kQuantGroup; ++g) {
    uint8_t* blk = out.data() + g * bb;
    std::memcpy(blk, codes + g * cb, cb);
    put_half(blk + cb, scales[g]);
    put_half(blk + cb + 2, offsets[g]);
  }
  return out;
}

void blocks_to_parts(DType t, const uint8_t* blocks, int64_t n, std::vector<uint8_t>& codes,
                     std::vector<uint16_t>& scales, std::vector<uint16_t>& offsets) {
  check_n(t, n);
  const size_t cb = quant_code_bytes(t), bb = quant_block_bytes(t);
  const size_t groups = static_cast<size_t>(n / kQuantGroup);
  codes.resize(groups * cb);
  scales.resize(groups);
  offsets.resize(groups);
  for (size_t g = 0; g < groups; ++g) {
    const uint8_t* blk = blocks + g * bb;
    std::memcpy(codes.data() + g * cb, blk, cb);
    scales[g] = get_half(blk + cb);
    offsets[g] = get_half(blk + cb + 2);
  }
}

}  // namespace dsocr
