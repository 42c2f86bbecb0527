// Fuzz target: a golden case file (HDF5) through the golden reader, from memory (HDF5's core
// driver: the same reader as read_golden, without a file per input). HDF5 itself is not
// instrumented; a crash inside libhdf5 is still reported.
#include "fuzz/fuzz_util.h"
#include "model/golden.h"

using namespace dsocr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  DSOCR_FUZZ_EXPECT_ERRORS({
    GoldenCase c = read_golden_bytes(bytes, "fuzz.h5");
    for (auto* group : {&c.inputs, &c.weights, &c.outputs, &c.taps})
      for (auto& [name, a] : *group) {
        size_t n = a.kind == HostArray::Kind::f32 ? a.f.size() : a.i.size();
        if (static_cast<int64_t>(n) != a.numel()) __builtin_trap();
      }
    (void)c.attr_int("seed", 0);
    (void)c.attr_str("op", "");
    (void)c.attr_ints("shape", {});
  });
  return 0;
}
