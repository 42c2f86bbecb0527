// Fuzz target: one .safetensors file (8-byte header length, JSON header, data) opened as a
// checkpoint, then every tensor looked up and the floating ones converted to fp32 as the model
// loader does. A hostile header must be refused (dsocr::Error) before anything is allocated for it.
#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

using namespace dsocr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  DSOCR_FUZZ_EXPECT_ERRORS({
    WeightStore ws = WeightStore::open_files({path});
    uint64_t total = ws.total_bytes();
    for (const std::string& name : ws.names()) {
      const TensorView& t = ws.get(name, ws.get(name).shape);
      if (t.numel() < 0 || static_cast<uint64_t>(t.numel()) * st_dtype_size(t.dtype) != t.bytes || t.bytes > total)
        __builtin_trap();  // the header check let an inconsistent tensor through
      if (t.dtype == StDType::f32 || t.dtype == StDType::f16 || t.dtype == StDType::bf16) {
        std::vector<float> f = WeightStore::to_f32(t);
        if (f.size() != static_cast<size_t>(t.numel())) __builtin_trap();
      }
    }
  });
  return 0;
}
