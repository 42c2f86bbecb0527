// A golden case's /weights group as a WeightSource: names relative to the module under test.
#pragma once
#include <string>

#include "model/weights.h"
#include "parity/golden.h"

namespace dsocr {

class GoldenWeights : public WeightSource {
 public:
  GoldenWeights(const GoldenCase& c, std::string prefix = {}) : c_(c), prefix_(std::move(prefix)) {}
  bool has(const std::string& name) const override { return c_.weights.count(prefix_ + name) != 0; }
  Tensor load(Runtime& rt, const std::string& name, const Shape& expected) const override;
  std::string describe(const std::string& name) const override { return c_.path + ": /weights/" + prefix_ + name; }

 private:
  const GoldenCase& c_;
  std::string prefix_;
};

}  // namespace dsocr
