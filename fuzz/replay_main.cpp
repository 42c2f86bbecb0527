// Standalone driver for a fuzz target without libFuzzer: runs LLVMFuzzerTestOneInput once on every
// file given on the command line (a folder: every file in it, sorted by name), so that the seed
// corpus and every past finding (fuzz/regressions/<stem>/) replay in the normal test run with any
// compiler. Prints one line per folder; a crash or sanitizer report ends the process, and the test
// fails naming the input last started.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace fs = std::filesystem;

static bool run_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", p.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay: %s (%zu bytes)\n", p.c_str(), bytes.size());
  // A copy of exactly the file's size, so that AddressSanitizer sees any read past its end.
  std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size() ? bytes.size() : 1]);
  std::copy(bytes.begin(), bytes.end(), exact.get());
  LLVMFuzzerTestOneInput(exact.get(), bytes.size());
  return true;
}

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
    return 2;
  }
  bool ok = true;
  for (int a = 1; a < argc; ++a) {
    fs::path arg(argv[a]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (auto& e : fs::directory_iterator(arg, ec))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (auto& f : files) ok = run_file(f) && ok;
      std::printf("replay: %zu inputs from %s: no crash\n", files.size(), arg.c_str());
    } else if (fs::exists(arg, ec)) {
      ok = run_file(arg) && ok;
    } else {
      std::fprintf(stderr, "replay: %s does not exist\n", arg.c_str());
      ok = false;
    }
  }
  return ok ? 0 : 1;
}
