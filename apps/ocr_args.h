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

// The options of the model, the device, the views, the prompt and the generation, shared by
// dsocr ocr and dsocr serve: --model, --device, --weights, --mode, --max-tiles, --no-crop, --task,
// --ref, --prompt, --max-new-tokens, --ngram, --ngram-window, --kv.
struct ModelSettings {
  RuntimeOptions ro;
  std::string model_spec;
  OcrOptions opts;
  std::string prompt, task;
  WeightStorage storage = WeightStorage::compact;
  bool explicit_max = false;
  std::string from_checkpoint;  // what the checkpoint's config chose (mode, prompt), for the log
  std::string model_note;       // why the demo model is used (no --model, the released one not downloaded)
};

// Everything the command line of dsocr ocr says, checked before any work starts (UsageError
// otherwise).
struct OcrSettings : ModelSettings {
  std::string format, out_dir, boxes_path, pages_spec;
  double dpi = 144;
  int max_batch = 8;  // pages decoded together (several pages only)
  std::string manifest, shard, results_dir;  // a corpus: inputs listed in a file, this run's share, per-page files
  bool quiet = false;
  std::vector<std::string> inputs;
};

// Takes the ModelSettings options out of a and checks them (UsageError naming the option
// otherwise). The view mode and the prompt default to what the checkpoint's config.json names
// ("dsocr_demo"), else gundam and the markdown task.
ModelSettings parse_model_settings(Args& a);

// Parses and checks every option of dsocr ocr.
OcrSettings parse_ocr(Args& a);

}  // namespace dsocr
