#include "model/model.h"

#include <filesystem>

#include "model/safetensors.h"

namespace dsocr {

OcrModel load_model(Runtime& rt, const std::string& dir, WeightStorage storage) {
  OcrModel m;
  m.cfg = load_config((std::filesystem::path(dir) / "config.json").string());
  WeightStore store = WeightStore::open_dir(dir);
  StoreWeights root(store, "", storage);
  m.vision = load_deepencoder(rt, SubWeights(root, "model."), m.cfg);
  m.lm = load_lm(rt, root, m.cfg.lm);
  m.storage = storage;
  m.load_notes = root.notes();
  return m;
}

}  // namespace dsocr
