// Start-up as a user meets it: `dsocr ocr` on a checkpoint folder, run as a child process from
// process start to exit, with an empty kernel program cache and empty driver caches (NVIDIA's
// compute cache, PoCL's and Mesa's, all in a temporary folder: the first run a user ever makes),
// then twice with the caches it filled (every later run). Each run's stage times come from its JSON
// (--format json): load, compile, preprocess, vision, prefill, decode; the first token's time is the wall time less the
// decode (first to last token) and the exit.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace dsocr::bench {

struct StartupOptions {
  std::string checkpoint;  // a checkpoint folder (e.g. a full-size one with random weights)
  std::string device;      // --device for the child; empty: its default
  std::string image;       // the page; empty: a generated 1024x1024 page
  std::string mode = "base";
  int64_t tokens = 32;  // --max-new-tokens
  bool cold = true;     // false: only the two warm runs, with the environment's caches as they are
};

struct StartupRun {
  std::string cache;  // "cold" (empty program and driver caches) or "warm"
  double wall_s = 0, first_token_s = 0;
  double load_s = 0, compile_s = 0, preprocess_s = 0, vision_s = 0, prefill_s = 0, decode_s = 0;
  double decode_tok_s = 0;
  int64_t tokens = 0;
};

// Three runs (cold, warm, warm; without cold, two warm runs on the environment's program cache)
// of the running executable's `ocr`; Error with the child's stderr when one fails.
std::vector<StartupRun> bench_startup(const StartupOptions& o);

}  // namespace dsocr::bench
