// The whole DeepSeek-OCR v1 model on one device: config, vision encoder and language model,
// loaded from a checkpoint directory in the official Hugging Face layout (config.json plus
// *.safetensors, sharded through model.safetensors.index.json).
#pragma once
#include <string>
#include <vector>

#include "model/config.h"
#include "model/decoder.h"
#include "model/deepencoder.h"
#include "model/weights.h"

namespace dsocr {

struct OcrModel {
  ModelConfig cfg;
  DeepEncoder vision;
  LanguageModel lm;
  WeightStorage storage = WeightStorage::bf16;
  std::vector<std::string> load_notes;  // what the storage could not do as asked (StoreWeights::notes)
};

// Throws Error naming the file or tensor that is missing, malformed or of the wrong shape.
// storage: how weight matrices are kept (model/weights.h WeightStorage; bf16 = as stored).
OcrModel load_model(Runtime& rt, const std::string& dir, WeightStorage storage = WeightStorage::compact);

}  // namespace dsocr
