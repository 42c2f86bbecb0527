// Fuzz target: model.safetensors.index.json of a sharded checkpoint. The input is the index; the
// folder also holds two shards it may name: a.safetensors (tensors "x" F32 [2,3] and "y" BF16 [4])
// and b.safetensors (tensor "z" F16 [5]). Shard names with '/' or ".." must be refused.
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

using namespace dsocr;
namespace fs = std::filesystem;

namespace {

void write_shard(const fs::path& p, const std::string& header, size_t data_bytes) {
  std::ofstream out(p, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\x11');
}

const fs::path& folder() {
  static fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "dsocr-fuzz-index-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    fs::path d(tmpl);
    write_shard(d / "a.safetensors",
                R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                R"("y":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})",
                32);
    write_shard(d / "b.safetensors", R"({"z":{"dtype":"F16","shape":[5],"data_offsets":[0,10]}})", 10);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(folder(), ec);
    });
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& dir = folder();
  {
    std::ofstream out(dir / "model.safetensors.index.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  DSOCR_FUZZ_EXPECT_ERRORS({
    WeightStore ws = WeightStore::open_dir(dir.string());
    for (const std::string& name : ws.names()) {
      const TensorView& t = ws.get(name);
      if (fs::path(t.file).parent_path() != dir) __builtin_trap();  // a shard outside the folder
    }
  });
  return 0;
}
