// The command line of dsocr ocr: its usage text and its options, checked before any work starts.
#pragma once
#include <string>
#include <vector>

#include "apps/commands.h"
#include "model/weights.h"
#include "ocr/page.h"
#include "runtime/runtime.h"

namespace dsocr {

extern const char* const kOcrUsage;

// Everything the command line says, checked before any work starts (UsageError otherwise).
struct OcrSettings {
  RuntimeOptions ro;
  std::string model_spec;
  OcrOptions opts;
  std::string prompt, task, format, out_dir, boxes_path, pages_spec;
  WeightStorage storage = WeightStorage::compact;
  double dpi = 144;
  bool explicit_max = false, quiet = false;
  std::vector<std::string> inputs;
  std::string from_checkpoint;  // what the checkpoint's config chose (mode, prompt), for the log
};

// Parses and checks every option (UsageError naming the option otherwise). The view mode and the
// prompt default to what the checkpoint's config.json names ("dsocr_demo"), else gundam and the
// markdown task.
OcrSettings parse_ocr(Args& a);

}  // namespace dsocr
