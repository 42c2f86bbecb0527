// Group-wise affine quantisation of weight matrices (int8 and int4 storage, `--weights int8|int4`).
//
// A matrix [N, K] (K a multiple of 32) is cut into groups of kQuantGroup = 32 consecutive elements
// along K. Each group keeps an fp16 scale s and an fp16 offset b (the group's minimum) and one code
// q in [0, 2^bits - 1] per element:   w ~= s * q + b,   s = (max - min) / (2^bits - 1).
// The rounding error of one element is at most s / 2 (plus the fp16 rounding of s and b).
//
// Device layout (DType::q8 / q4, kernels/weights.cl): one block per group, the codes then s then b:
//   q8: 32 code bytes, scale, offset               = 36 bytes
//   q4: 16 code bytes (element 2i in the low nibble of byte i, 2i+1 in the high one), s, b = 20 bytes
// Blocks follow each other in row-major element order, so element i of a stacked tensor lives in
// block i / 32 whatever its shape (the kernels index a flat element number).
//
// File layout (dsocr convert, model/quantized_io.h): MLX's affine layout with group 32, per weight
// `X.weight` U32 [N, K * bits / 32] (codes packed little-endian: element j of a word at bits
// bits * j, so the same bytes as the device codes), `X.scales` and `X.biases` F16 [N, K / 32].
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.h"

namespace dsocr {

constexpr int64_t kQuantGroup = 32;

int quant_bits(DType t);              // 8 (q8) or 4 (q4); Error for other dtypes
size_t quant_block_bytes(DType t);    // 36 or 20
size_t quant_code_bytes(DType t);     // code bytes per block: 32 or 16

// Whether n values can be quantised: n a multiple of 32 and every value finite with |w| < 65504
// (the scale and offset are fp16).
bool quantizable(const float* w, int64_t n);

// n values (quantizable) to n / 32 blocks of t's device layout.
std::vector<uint8_t> quantize(DType t, const float* w, int64_t n);
// n values back from blocks (what the kernels compute, element by element: s * q + b in fp32).
std::vector<float> dequantize(DType t, const uint8_t* blocks, int64_t n);

// Between the device blocks and the file layout's three arrays (codes, scales, offsets as fp16 bits).
std::vector<uint8_t> blocks_from_parts(DType t, const uint8_t* codes, const uint16_t* scales, const uint16_t* offsets,
                                       int64_t n);
void blocks_to_parts(DType t, const uint8_t* blocks, int64_t n, std::vector<uint8_t>& codes,
                     std::vector<uint16_t>& scales, std::vector<uint16_t>& offsets);

}  // namespace dsocr
