// Golden case files (HDF5, schema version 1), per the contract in docs/golden-contract.md:
// root attributes, /inputs, /weights, /outputs, /taps.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace dsocr {

// A golden file that cannot be run (missing, not HDF5, wrong format/version, missing dataset,
// bad shape): the runner reports it and exits with status 2.
class GoldenError : public Error {
 public:
  using Error::Error;
};

// A dense C-order array read from a golden file. Floating data is held as float, integer data
// as int64 (token ids, expert ids, grids), uint8 (pixels, text) as int64 too.
struct HostArray {
  enum class Kind { f32, i64 } kind = Kind::f32;
  Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;
  std::string stored_type;  // the file's type: "float32", "int64", "uint8", ...
  int64_t numel() const { return shape_numel(shape); }
};

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

struct GoldenCase {
  std::string path, op;
  std::map<std::string, AttrValue> attrs;
  std::map<std::string, HostArray> inputs, weights, outputs, taps;

  bool has_attr(const std::string& k) const { return attrs.count(k) != 0; }
  int64_t attr_int(const std::string& k, int64_t fallback) const;
  int64_t attr_int(const std::string& k) const;  // required
  double attr_float(const std::string& k, double fallback) const;
  double attr_float(const std::string& k) const;  // required
  std::string attr_str(const std::string& k, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& k, const std::vector<int64_t>& fallback) const;

  const HostArray& input(const std::string& k) const;  // throws GoldenError naming file and dataset
  const HostArray* input_opt(const std::string& k) const;
  const HostArray& weight(const std::string& k) const;
  const HostArray* weight_opt(const std::string& k) const;
};

// Reads the whole file. Throws GoldenError with the file, the dataset and what was expected.
GoldenCase read_golden(const std::string& path);
// The same from the bytes of a file held in memory (HDF5's core driver); `name` stands for the
// path in messages. For tools and the fuzz target.
GoldenCase read_golden_bytes(const std::vector<uint8_t>& bytes, const std::string& name);

}  // namespace dsocr
