// The OCR pipeline above the model (model-spec §3-§4): task prompts, the `plain` prompt ids,
// streaming UTF-8 decoding, the grounding tags (<|ref|>label<|/ref|><|det|>[[x1,y1,x2,y2]]<|/det|>
// on a 0-999 grid) and the official markdown post-processing, input discovery (PNG, JPEG, PDF,
// folders, stdin), PDF page rendering through poppler-cpp, one page end to end, and its JSON.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/image.h"
#include "model/model.h"
#include "model/text_stream.h"
#include "model/tokenizer.h"
#include "runtime/runtime.h"

namespace dsocr {

// ---------------------------------------------------------------- prompts
// Task names: markdown, ocr, free, figure, describe, locate (model-spec §4, official prompts).
const std::vector<std::string>& ocr_tasks();
// The official prompt of a task; `ref` fills locate's <|ref|>...<|/ref|>. Throws Error for an
// unknown task, locate without ref, or ref with another task.
std::string task_prompt(const std::string& task, const std::string& ref = {});

// The `plain` template: [bos] + enc(text before "<image>") + [image_id] * n_image_tokens +
// enc(text after), no EOS. The text must hold exactly one "<image>" (Error otherwise).
std::vector<int32_t> build_prompt_ids(const Tokenizer& tok, const std::string& text, int n_image_tokens, int32_t bos_id,
                                      int32_t image_id);

// ---------------------------------------------------------------- grounding
using Box999 = std::array<double, 4>;  // x1, y1, x2, y2 on the 0-999 grid

// One match of (<\|ref\|>(.*?)<\|/ref\|><\|det\|>(.*?)<\|/det\|>) with DOTALL.
struct RefMatch {
  size_t begin = 0, end = 0;  // byte range of the whole match in the text
  std::string label, det;     // the two groups
  bool det_ok = false;        // det parsed as a list of boxes
  std::vector<Box999> boxes;  // the boxes of 4 numbers (others are skipped)
};

// Every match, left to right (re.findall order).
std::vector<RefMatch> find_refs(const std::string& text);

// Parses a det group as the official script's eval() would: a Python list of [x1,y1,x2,y2]
// lists (a single flat [x1,y1,x2,y2] is accepted too), integer or float literals. Boxes that are
// not 4 numbers are skipped. Returns false when the text is not such a list.
bool parse_det(const std::string& det, std::vector<Box999>& boxes);

// pixel = int(c / 999 * W) (x) or int(c / 999 * H) (y), truncated towards zero as Python's int().
struct PixelBox {
  std::string label;
  std::array<int, 4> px{};  // x1, y1, x2, y2 in pixels (not clipped to the image)
  Box999 grid{};            // as generated
};
std::array<int, 4> scale_box(const Box999& b, int width, int height);
std::vector<PixelBox> pixel_boxes(const std::string& text, int width, int height);

// ---------------------------------------------------------------- markdown
// The official post-processing (R1 run_dpsk_ocr_image.py), streaming: every ref/det match is
// replaced by on_image(match) when its label is `image`, and removed otherwise; then \coloneqq
// becomes := and \eqqcolon becomes =:. Text is held back only while it may still become part of a
// match or of one of those words. The result equals the batch post-processing of the whole text.
class MarkdownStream {
 public:
  using ImageFn = std::function<std::string(const RefMatch&)>;
  explicit MarkdownStream(ImageFn on_image = {}) : on_image_(std::move(on_image)) {}
  std::string push(const std::string& text);
  std::string flush();

 private:
  std::string stage1(bool final);
  std::string stage2(const std::string& in, bool final);
  ImageFn on_image_;
  std::string raw_, mid_;
};
// Batch form: push(text) + flush().
std::string postprocess_markdown(const std::string& text, const MarkdownStream::ImageFn& on_image = {});

// The official handling of an `image` match: each box, scaled to the page and clipped, is saved
// as OUT_DIR/images/K.jpg (K = counter++, OUT_DIR/images created when needed), and the match
// becomes "![](images/K.jpg)\n" per box. `written` gets "images/K.jpg" for each file; boxes empty
// after clipping are skipped and described in *skipped.
std::string save_image_crops(const RefMatch& m, const RgbImage& page, const std::string& out_dir, int& counter,
                             std::vector<std::string>& written, std::vector<std::string>* skipped = nullptr);

// ---------------------------------------------------------------- inputs
enum class InputKind { png, jpeg, pdf, unsupported };
// From the leading bytes; `what` (optional) names an unsupported format when it is recognised.
InputKind sniff_format(const std::vector<uint8_t>& head, std::string* what = nullptr);
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes = 0);  // "-" = stdin; 0 = all

// Expands the command line's inputs: files as given, "-" as is, a folder as its PNG, JPEG and PDF
// files (by extension, case-insensitive), sorted by name, not recursive. An argument that gives
// no file (a path that does not exist, a folder that cannot be listed or holds no such file)
// becomes one entry with `error` set, in its place, so that the others still run.
struct InputPath {
  std::string path;
  std::string error;  // why this argument gives no input ("" when it is one)
};
std::vector<InputPath> expand_inputs(const std::vector<std::string>& args);

// Page selection "1-5", "3", "2,4,7-", "-3" (1-based) for a document of n pages: the selected
// pages in increasing order, without repeats; pages past the end are dropped (*dropped counts
// them). Throws Error for a malformed spec.
std::vector<int> parse_pages(const std::string& spec, int n_pages, int* dropped = nullptr);
void check_pages_spec(const std::string& spec);  // the syntax only

// ---------------------------------------------------------------- PDF
bool pdf_supported();  // built with poppler-cpp (DSOCR_PDF=ON)

// A PDF document; pages rendered as PyMuPDF's get_pixmap(Matrix(dpi/72, dpi/72), alpha=False)
// would be: antialiased, on white. Throws Error for a corrupt, encrypted or empty file, and for a
// page larger than max_pixels at the requested resolution.
class PdfDocument {
 public:
  static PdfDocument open_file(const std::string& path);
  static PdfDocument open_bytes(std::vector<uint8_t> bytes, const std::string& name);
  ~PdfDocument();
  PdfDocument(PdfDocument&&) noexcept;
  PdfDocument& operator=(PdfDocument&&) noexcept;
  int pages() const;
  RgbImage render(int page, double dpi, int64_t max_pixels = int64_t(1) << 27) const;  // page: 1-based

 private:
  PdfDocument();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- one page
struct OcrOptions {
  std::string mode = "gundam";             // tiny | small | base | large | gundam
  int max_tiles = 6;                       // gundam grids of 2..max_tiles tiles (vLLM's MAX_CROPS)
  bool crop = true;                        // false: gundam's global view only (the same views as base)
  int64_t max_new_tokens = 8192;           // capped to the model's context
  int ngram_size = 30, ngram_window = 90;  // the v1 image script's no-repeat rule; 0 = off
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
