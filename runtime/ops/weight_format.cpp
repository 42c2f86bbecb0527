#include "runtime/ops/weight_format.h"

namespace dsocr::ops {

bool is_weight_dtype(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::q8 || t == DType::q4;
}

void add_weight_define(Defines& d, DType t) {
  switch (t) {
    case DType::f16:
      d["WEIGHT_F16"] = "1";
      break;
    case DType::bf16:
      d["WEIGHT_BF16"] = "1";
      break;
    case DType::q8:
      d["WEIGHT_Q8"] = "1";
      break;
    case DType::q4:
      d["WEIGHT_Q4"] = "1";
      break;
    default:
      break;
  }
}

void add_kv_define(Defines& d, DType t) {
  if (t == DType::f16) d["KV_F16"] = "1";
  if (t == DType::bf16) d["KV_BF16"] = "1";
}

}  // namespace dsocr::ops
