// One page end to end on a loaded engine: views, vision, prompt, generation; and its JSON.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/image.h"
#include "model/model.h"
#include "model/preprocess.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "ocr/grounding.h"
#include "runtime/runtime.h"

namespace dsocr {

struct OcrOptions {
  std::string mode = "gundam";             // tiny | small | base | large | gundam (v1); ocr2 (v2)
  int max_tiles = 6;                       // gundam grids of 2..max_tiles tiles (vLLM's MAX_CROPS)
  bool crop = true;                        // false: gundam's global view only (the same views as base)
  int64_t max_new_tokens = 8192;           // capped to the model's context
  int ngram_size = 30, ngram_window = 90;  // the v1 image script's no-repeat rule; 0 = off
  DType kv = DType::f16;                   // KV cache storage (f16 default; f32 = the reference's)
};

// The mode whose views are used: gundam without crop is base (same global view, no tiles).
std::string effective_mode(const OcrOptions& o);

// Stage times exclude building or loading kernel programs (first use in a process: compiled on the
// first run, loaded from the program cache later), which is counted in compile_s alone. They are
// exact when a build observer finishes the queue before each build (as dsocr ocr's does): device
// work queued before a build then does not overlap the time taken out.
struct PageTimings {
  double preprocess_s = 0, vision_s = 0, prefill_s = 0, decode_s = 0;
  double compile_s = 0;
};

struct PageResult {
  int width = 0, height = 0;  // the page image
  std::string mode;           // effective
  int cols = 1, rows = 1, n_tiles = 0;
  int n_image_tokens = 0;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated;  // as generated, EOS included when reached
  bool eos = false;
  int64_t max_new_tokens = 0;  // after the context cap
  std::string text;            // decode(generated without EOS)
  PageTimings t;
  int vision_batch = 1;  // pages whose views went through the encoder together with this one's
  // Memory once the page is done: the process's resident set (0 where /proc is absent), and the
  // device memory live and held (live + the runtime's pool of freed buffers).
  uint64_t host_rss_bytes = 0, device_live_bytes = 0, device_held_bytes = 0;
};

// The process's resident set size from /proc/self/status (0 where unavailable).
uint64_t host_rss_bytes();

// Everything needed to run pages: the model, its tokenizer and the ids the prompt needs.
struct OcrEngine {
  OcrModel model;
  Tokenizer tok;
  int32_t image_id = -1, bos_id = 0, eos_id = 1;
  std::vector<int32_t> ngram_whitelist;  // <td>, </td> where the tokenizer has them
};
// Loads dir/tokenizer.json and the model; throws Error naming what is wrong.
OcrEngine load_engine(Runtime& rt, const std::string& dir, WeightStorage storage = WeightStorage::compact);

// A page made ready for generation (prepare_page): its result so far (size, mode, grid, image
// tokens, prompt ids, max_new_tokens after the context cap, preprocess and vision times), its
// image embeddings [n_image_tokens, hidden] and the generation options.
struct PreparedPage {
  PageResult r;
  Tensor image_embeds;
  GenerateOptions gen;
};
// Views, vision embeddings and prompt of one image: the part of ocr_image before generation.
// views (optional): made ahead, on another thread, with make_views(image, effective_mode(o),
// o.max_tiles), in views_s seconds (reported as the page's preprocessing time).
PreparedPage prepare_page(Runtime& rt, OcrEngine& e, const RgbImage& image, const std::string& prompt,
                          const OcrOptions& o, const Views* views = nullptr, double views_s = 0);

// prepare_page for several pages, their vision in one vision_embeddings_batch (each page's
// embeddings are those it gets alone; vision_s and compile_s are the batch's, shared evenly).
// A page's own failure (its mode, its prompt: Error) is its entry's error, the others go on;
// device failures and OutOfDeviceMemory propagate. The pointers must outlive the call.
struct PageInput {
  const RgbImage* image = nullptr;
  const std::string* prompt = nullptr;
  const OcrOptions* opts = nullptr;
  const Views* views = nullptr;  // optional, as prepare_page's
  double views_s = 0;
};
struct PreparedOrError {
  std::optional<PreparedPage> page;
  std::string error;  // when !page
};
std::vector<PreparedOrError> prepare_pages(Runtime& rt, OcrEngine& e, const std::vector<PageInput>& in);
// After generation (r.generated filled): eos, text, and the memory figures.
void finish_page(Runtime& rt, const OcrEngine& e, PageResult& r);

// One image: views, vision embeddings, prompt, generation. on_token gets each generated id.
PageResult ocr_image(Runtime& rt, OcrEngine& e, const RgbImage& image, const std::string& prompt, const OcrOptions& o,
                     const std::function<void(int32_t)>& on_token = {});

// The JSON object of one page (see docs in apps/cmd_ocr.cpp's usage): source, page, size, mode,
// grid, prompt, text, markdown, boxes, images, token counts, generated ids, stop, timings.
struct PageReport {
  std::string source;
  int page = 0;  // 1-based PDF page, 0 for an image
  std::string prompt, markdown;
  std::vector<PixelBox> boxes;
  std::vector<std::string> images;  // crops written, relative to the output folder
  double load_s = 0;
};
nlohmann::ordered_json page_json(const PageResult& r, const PageReport& rep);

}  // namespace dsocr
