// Host conversions between fp32 and the 16-bit float formats of checkpoints and compact weights:
// IEEE binary16 (fp16) and bfloat16 (bf16, the top half of an fp32). The one implementation for
// the library, the tests and the tools; the same bits as PyTorch's conversions and the device's
// (kernels/convert.cl).
//   widening (f16_to_f32, bf16_to_f32): exact; fp16 subnormals become normal fp32 values, inf and
//     NaN keep their sign and payload (fp16's 10 payload bits become the top of fp32's 23).
//   narrowing (f32_to_f16, f32_to_bf16): round to nearest, ties to even; overflow gives ±inf;
//     -0 stays -0; NaN stays NaN with the quiet bit set and the sign kept (f32_to_f16 keeps no
//     payload: sign | 0x7e00; f32_to_bf16 keeps the top 7 payload bits). f32_to_f16 rounds into
//     fp16's subnormals; at most half the smallest one (2^-25) becomes ±0.
#pragma once
#include <cstdint>
#include <cstring>

namespace dsocr {

inline uint32_t f32_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return x;
}

inline float f32_from_bits(uint32_t x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_bits(f);
  // NaN: truncate and set the quiet bit (rounding could carry a payload into inf or the sign)
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;  // ±0
    } else {     // subnormal: normalise the mantissa (fp32 has the exponent range for it)
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000 | (mant << 13);  // inf, NaN (payload kept)
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return f32_from_bits(x);
}

inline uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));  // inf, NaN
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);                                        // overflow
  if (exp <= 0) {  // fp16 subnormal (or zero): shift the mantissa with its implicit bit, round to even
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // normal: a carry out of the mantissa rounds up into the exponent (and to inf from the largest)
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// Index of the first of n values that is finite but beyond half's range (f32_to_f16 makes it
// ±inf), or -1 when all of them convert to finite halves (or were not finite to begin with).
inline int64_t first_beyond_half(const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t e = (f32_bits(v[i]) >> 23) & 0xff;
    if (e != 0xff && (f32_to_f16(v[i]) & 0x7fff) == 0x7c00) return i;
  }
  return -1;
}

}  // namespace dsocr
