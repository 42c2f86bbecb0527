// `dsocr parity`: runs golden cases (model/golden.h) on a device and compares, per the contract.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "parity/golden.h"
#include "runtime/runtime.h"

namespace dsocr {

using ParityOutputs = std::map<std::string, HostArray>;
// Runs one case's op on the device: returns the outputs (and any taps) it produced.
using ParityFn = std::function<ParityOutputs(Runtime&, const GoldenCase&)>;

// The op table: every op of the contract's vocabulary that this build can run.
const std::map<std::string, ParityFn>& parity_ops();
// Ops of the contract that are known but not implemented yet (reported as "not implemented").
const std::vector<std::string>& parity_ops_pending();

struct ParityOptions {
  bool verbose = false;
};

struct ParityTotals {
  int passed = 0, failed = 0, unrunnable = 0;
  int exit_code() const { return unrunnable ? 2 : failed ? 1 : 0; }
};

// Runs the files, printing one line per output and the closing "N passed, M failed" line.
ParityTotals run_parity(Runtime& rt, const std::vector<std::string>& files, const ParityOptions& opts);

// Helpers for op implementations.
Tensor to_device(Runtime& rt, const HostArray& a, const std::string& what);  // f32, or i32 for integers
HostArray from_device_f32(Runtime& rt, const Tensor& t);
HostArray from_device_i32(Runtime& rt, const Tensor& t);
// Throws GoldenError unless a.shape == want (each -1 matches anything).
void expect_shape(const GoldenCase& c, const std::string& name, const HostArray& a, const Shape& want);

// A case's image views on the device: inputs/global_view, optional inputs/tiles (absent or empty:
// none) and inputs/grid (cols, rows; absent: 1, 1).
struct CaseViews {
  Tensor global, tiles;  // tiles undefined when there are none
  int cols = 1, rows = 1;
  const Tensor* tiles_or_null() const { return tiles.defined() ? &tiles : nullptr; }
};
CaseViews case_views(Runtime& rt, const GoldenCase& c, const HostArray& global_view);

}  // namespace dsocr
