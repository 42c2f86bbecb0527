// dsocr convert: a checkpoint written once in a compact storage, so that later loads skip the
// conversion. int8/int4 quantise the language model's linears (the names lm_linear_name()
// accepts, the same matrices MatrixRole::lm_linear marks in the loader) into the file layout of
// runtime/quant.h (X.weight U32 codes, X.scales, X.biases F16; config.json gains
// "quantization": {"group_size": 32, "bits": b, "mode": "affine"}); fp16 converts every 2-D
// matrix that fits half's range. Every other tensor is copied as it is, and so are the other
// files of the directory (tokenizer, generation and processor configs).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/weights.h"

namespace dsocr {

// model.layers.N.self_attn.{q,k,v,o}_proj.weight and model.layers.N.mlp.(shared_experts. |
// experts.E. | ){gate,up,down}_proj.weight.
bool lm_linear_name(const std::string& name);

struct ConvertReport {
  uint64_t bytes_in = 0, bytes_out = 0;  // tensor data read, written
  int converted = 0, copied = 0;
  std::vector<std::string> notes;  // tensors kept as they were, and why
};

// Writes dst/model.safetensors, dst/config.json and the other files of src. dst must not hold a
// checkpoint already. storage: fp16, int8 or int4 (others: Error). on_tensor (optional) is called
// with each tensor's name as it is written.
ConvertReport convert_checkpoint(const std::string& src, const std::string& dst, WeightStorage storage,
                                 const std::function<void(const std::string&)>& on_tensor = {});

}  // namespace dsocr
