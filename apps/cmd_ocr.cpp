// dsocr ocr: images and PDF pages to text, markdown or JSON, streamed as tokens are generated.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>

#include "apps/commands.h"
#include "model/draw.h"
#include "model/hf_cache.h"
#include "model/ocr.h"
#include "model/preprocess.h"

namespace dsocr {
namespace {
namespace fs = std::filesystem;

const char* kUsage =
    R"(usage: dsocr ocr INPUT... [options]

Reads PNG and JPEG images and PDF pages and writes what DeepSeek-OCR reads in them to stdout,
token by token. INPUT is a file, a folder (its PNG, JPEG and PDF files, sorted by name) or - for
standard input. Progress goes to stderr.

model and device:
  --model M             checkpoint directory (Hugging Face layout: config.json, tokenizer.json,
                        *.safetensors) or a repo id in the Hugging Face cache
                        ($HF_HOME/hub, ~/.cache/huggingface/hub); default $DSOCR_MODEL, else
                        deepseek-ai/DeepSeek-OCR (download: huggingface-cli download deepseek-ai/DeepSeek-OCR)
  --device SPEC         OpenCL device (see dsocr devices); default $DSOCR_DEVICE, else the first GPU
  --weights S           compact (default): bf16 weight matrices kept as the checkpoint stores them
                        (exact, half the memory); f32: everything widened to fp32 on the device

what to ask:
  --task T              markdown (default): <|grounding|>Convert the document to markdown.
                        ocr: <|grounding|>OCR this image.   free: Free OCR.
                        figure: Parse the figure.   describe: Describe this image in detail.
                        locate: Locate <|ref|>TEXT<|/ref|> in the image. (needs --ref TEXT)
  --ref TEXT            what --task locate looks for
  --prompt TEXT         a raw prompt instead of --task; must hold <image> once ("\n" = newline)

image views:
  --mode M              tiny (512, 64 tokens), small (640, 100), base (1024, 256), large (1280, 400),
                        gundam (default: 1024 global view + 640 tiles)
  --max-tiles N         gundam tile grids of 2..N tiles, N in 2..9 (default 6, as the official vLLM
                        scripts; the Hugging Face infer() uses 9)
  --no-crop             gundam without tiles (the global view only, which is base mode)
  --dpi D               PDF rendering resolution (default 144, as the official PDF script)
  --pages LIST          PDF pages, e.g. 1-5, 3, 2,4,7- (default all)

generation:
  --max-new-tokens N    at most N generated tokens per page (default 8192; capped to the context)
  --ngram N             no-repeat n-gram size over the generated ids, 0 = off (default 30)
  --ngram-window W      how far back the n-gram rule looks (default 90); <td>, </td> are exempt

output:
  --format F            text: the model's output as generated (grounding tags kept);
                        markdown: the official post-processing (image regions cropped to
                        OUT-DIR/images/K.jpg and linked as ![](images/K.jpg), other <|ref|>/<|det|>
                        tags removed, \coloneqq -> :=, \eqqcolon -> =:);
                        json: one JSON object per page and line (text, markdown, boxes in pixels,
                        token counts, generated ids, timings).
                        Default: markdown for --task markdown, text otherwise.
  --out-dir DIR         where image crops go (default ./dsocr-out; created when needed)
  --boxes FILE.png      draw the grounding boxes over the page; with several pages FILE-1.png, ...
  --quiet, -q           no progress on stderr
Pages are separated by a line "<--- Page Split --->" (text and markdown).
Exit status: 0 success, 1 an input or the model failed (the others are still processed), 2 usage.
)";

struct Writer {
  bool any = false, page_break = false;
  char last = '\n';
  void new_page() { page_break = any; }
  void write(const std::string& s) {
    if (s.empty()) return;
    if (page_break) {
      raw(last == '\n' ? "\n<--- Page Split --->\n\n" : "\n\n<--- Page Split --->\n\n");
      page_break = false;
    }
    raw(s);
  }
  void raw(const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    last = s.back();
    any = true;
  }
};

int64_t int_option(Args& a, const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  std::string v = a.value(name);
  if (v.empty()) return fallback;
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || used == 0) throw UsageError(fmt::format("{} {}: not an integer", name, v));
  if (x < lo || x > hi) throw UsageError(fmt::format("{} {}: must be in {}..{}", name, v, lo, hi));
  return x;
}

std::string page_path(const std::string& path, int index, bool several) {
  if (!several) return path;
  fs::path p(path);
  return (p.parent_path() / fmt::format("{}-{}{}", p.stem().string(), index, p.extension().string())).string();
}

}  // namespace

int cmd_ocr(const std::vector<std::string>& argv) {
  using Clock = std::chrono::steady_clock;
  Args a(argv);
  if (a.flag("--help") || a.flag("-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  RuntimeOptions ro;
  ro.device = a.value("--device");
  const char* env_model = std::getenv("DSOCR_MODEL");
  std::string model_spec = a.value("--model", env_model && *env_model ? env_model : "deepseek-ai/DeepSeek-OCR");
  OcrOptions opts;
  opts.mode = a.value("--mode", "gundam");
  opts.max_tiles = static_cast<int>(int_option(a, "--max-tiles", 6, 2, 9));
  opts.crop = !a.flag("--no-crop");
  std::string task = a.value("--task"), ref = a.value("--ref"), raw_prompt = a.value("--prompt");
  std::string format = a.value("--format");
  std::string out_dir = a.value("--out-dir", "dsocr-out");
  std::string boxes_path = a.value("--boxes");
  std::string pages_spec = a.value("--pages");
  const WeightStorage storage = weight_storage_from_string(a.value("--weights", "compact"));
  std::string dpi_s = a.value("--dpi", "144");
  const bool explicit_max = [&] {
    for (auto& s : argv)
      if (s == "--max-new-tokens" || s.rfind("--max-new-tokens=", 0) == 0) return true;
    return false;
  }();
  opts.max_new_tokens = int_option(a, "--max-new-tokens", 8192, 1, 1 << 20);
  opts.ngram_size = static_cast<int>(int_option(a, "--ngram", 30, 0, 1 << 16));
  opts.ngram_window = static_cast<int>(int_option(a, "--ngram-window", 90, 0, 1 << 20));
  const bool quiet = a.flag("--quiet") | a.flag("-q");
  std::vector<std::string> args = a.positional();

  // ---- check the command line before touching the model or the device
  if (args.empty())
    throw UsageError("no input (a PNG, JPEG or PDF file, a folder, or - for stdin); see dsocr ocr --help");
  try {
    mode_spec(opts.mode);
  } catch (const Error& e) {
    throw UsageError(std::string("--mode: ") + e.what());
  }
  std::string prompt;
  if (!raw_prompt.empty()) {
    if (!task.empty() || !ref.empty()) throw UsageError("--prompt replaces --task and --ref; give one or the other");
    for (size_t i = 0; (i = raw_prompt.find("\\n", i)) != std::string::npos;) raw_prompt.replace(i, 2, "\n");
    size_t at = raw_prompt.find("<image>");
    if (at == std::string::npos || raw_prompt.find("<image>", at + 7) != std::string::npos)
      throw UsageError("--prompt must hold <image> exactly once (where the image goes), e.g. \"<image>\\nFree OCR.\"");
    prompt = raw_prompt;
  } else {
    if (task.empty()) task = "markdown";
    try {
      prompt = task_prompt(task, ref);
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  if (format.empty()) format = task == "markdown" ? "markdown" : "text";
  if (format != "text" && format != "markdown" && format != "json")
    throw UsageError(fmt::format("--format {}: expected text, markdown or json", format));
  double dpi = 0;
  try {
    size_t used = 0;
    dpi = std::stod(dpi_s, &used);
    if (used != dpi_s.size()) dpi = 0;
  } catch (const std::exception&) {
    dpi = 0;
  }
  if (!(dpi >= 10 && dpi <= 1200)) throw UsageError(fmt::format("--dpi {}: expected a number in 10..1200", dpi_s));
  if (!pages_spec.empty()) {
    try {
      check_pages_spec(pages_spec);
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  if (std::count(args.begin(), args.end(), "-") > 1) throw UsageError("- (standard input) can be read only once");

  auto note = [&](const std::string& s) {
    if (!quiet) std::fprintf(stderr, "%s\n", s.c_str());
  };
  auto warn = [&](const std::string& s) { std::fprintf(stderr, "dsocr ocr: warning: %s\n", s.c_str()); };

  // ---- inputs: every file must exist and be PNG, JPEG or PDF
  struct Input {
    std::string path, name;
    InputKind kind;
    std::vector<uint8_t> bytes;  // standard input, read once
  };
  std::vector<Input> inputs;
  for (auto& p : expand_inputs(args)) {
    Input in{p, p == "-" ? "<stdin>" : p, InputKind::unsupported, {}};
    std::vector<uint8_t> head;
    if (p == "-") {
      in.bytes = read_file_bytes("-");
      head = in.bytes;
    } else {
      head = read_file_bytes(p, 1024);
    }
    std::string what;
    in.kind = sniff_format(head, &what);
    if (in.kind == InputKind::unsupported)
      throw Error(fmt::format("{}: unsupported input ({}); dsocr ocr reads PNG, JPEG and PDF", in.name, what));
    if (in.kind == InputKind::pdf && !pdf_supported())
      throw Error(fmt::format("{}: this dsocr was built without PDF support (-DDSOCR_PDF=OFF)", in.name));
    inputs.push_back(std::move(in));
  }
  bool any_pdf = false;
  for (auto& in : inputs) any_pdf |= in.kind == InputKind::pdf;
  if (!pages_spec.empty() && !any_pdf) warn("--pages applies to PDF inputs only; there is none");

  // ---- model and device: located now, opened and loaded when the first page is ready (so that
  // a run whose inputs are all unreadable fails at once); a failure there ends the run.
  ModelLocation loc = resolve_model(model_spec);
  std::unique_ptr<Runtime> rt_holder;
  std::unique_ptr<OcrEngine> engine_holder;
  bool load_failed = false;
  double load_s = 0;
  auto load = [&] {
    if (engine_holder) return;
    load_failed = true;
    auto t_load = Clock::now();
    rt_holder = std::make_unique<Runtime>(ro);
    note(fmt::format("dsocr: device {}", rt_holder->device().label()));
    note(fmt::format("dsocr: loading {}", loc.origin));
    engine_holder = std::make_unique<OcrEngine>(load_engine(*rt_holder, loc.dir, storage));
    load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
    note(fmt::format("dsocr: loaded in {:.1f} s ({})", load_s, rt_holder->memory_summary()));
    load_failed = false;
  };

  const bool several_pages = inputs.size() > 1 || any_pdf;
  Writer out;
  int page_no = 0, crop_no = 0, failed = 0;

  auto run_page = [&](const RgbImage& img, const std::string& name, int page) {
    load();
    Runtime& rt = *rt_holder;
    OcrEngine& engine = *engine_holder;
    ++page_no;
    std::string where = page > 0 ? fmt::format("{} page {}", name, page) : name;
    note(fmt::format("[{}] {}: {}x{}", page_no, where, img.width, img.height));
    std::vector<std::string> images;
    auto on_image = [&](const RefMatch& m) {
      std::vector<std::string> skipped;
      std::string rep = save_image_crops(m, img, out_dir, crop_no, images, &skipped);
      for (auto& w : skipped) warn(where + ": " + w);
      return rep;
    };
    out.new_page();
    TextStream ts(engine.tok);
    MarkdownStream md(on_image);
    auto on_token = [&](int32_t id) {
      if (id == engine.eos_id) return;
      if (format == "text")
        out.write(ts.push(id));
      else if (format == "markdown")
        out.write(md.push(ts.push(id)));
    };
    PageResult r = ocr_image(rt, engine, img, prompt, opts, on_token);
    std::string markdown;
    if (format == "text") {
      out.write(ts.flush());
    } else if (format == "markdown") {
      out.write(md.push(ts.flush()));
      out.write(md.flush());
    } else {
      markdown = postprocess_markdown(r.text, on_image);
    }
    if (format != "json" && out.any && out.last != '\n') out.write("\n");
    auto boxes = pixel_boxes(r.text, img.width, img.height);
    if (format == "json") {
      PageReport rep{name, page, prompt, markdown, boxes, images, load_s};
      out.raw(page_json(r, rep).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
    const int64_t g = static_cast<int64_t>(r.generated.size());
    note(fmt::format("[{}] done: {}{}, {} image tokens; vision {:.2f} s, prefill {:.2f} s, {} tokens at {:.1f} tok/s",
                     page_no, r.mode, r.n_tiles ? fmt::format(" {}x{} tiles", r.cols, r.rows) : std::string(),
                     r.n_image_tokens, r.t.preprocess_s + r.t.vision_s, r.t.prefill_s, g,
                     g > 1 && r.t.decode_s > 0 ? (g - 1) / r.t.decode_s : 0.0));
    if (r.max_new_tokens < opts.max_new_tokens && explicit_max)
      warn(fmt::format("{}: --max-new-tokens capped to {} by the model's context", where, r.max_new_tokens));
    if (!r.eos)
      warn(fmt::format("{}: stopped after {} tokens without an end-of-sequence token (output may be cut short)", where,
                       g));
    if (!boxes_path.empty()) {
      std::vector<LabelledBox> lb;
      for (auto& b : boxes) lb.push_back({b.label, b.px[0], b.px[1], b.px[2], b.px[3]});
      RgbImage canvas = img;
      draw_boxes(canvas, lb);
      std::string p = page_path(boxes_path, page_no, several_pages);
      write_png(p, canvas);
      note(fmt::format("    {} box{} drawn in {}", lb.size(), lb.size() == 1 ? "" : "es", p));
    }
  };

  for (auto& in : inputs) {
    try {
      if (in.kind == InputKind::pdf) {
        PdfDocument doc =
            in.path == "-" ? PdfDocument::open_bytes(std::move(in.bytes), in.name) : PdfDocument::open_file(in.path);
        int dropped = 0;
        std::vector<int> pages;
        if (pages_spec.empty()) {
          for (int p = 1; p <= doc.pages(); ++p) pages.push_back(p);
        } else {
          pages = parse_pages(pages_spec, doc.pages(), &dropped);
        }
        if (pages.empty())
          throw Error(fmt::format("{}: --pages {} selects none of its {} pages", in.name, pages_spec, doc.pages()));
        if (dropped) warn(fmt::format("{} has {} pages; --pages {} asks for more", in.name, doc.pages(), pages_spec));
        for (int p : pages) run_page(doc.render(p, dpi), in.name, p);
      } else {
        RgbImage img = decode_image(in.path == "-" ? in.bytes : read_file_bytes(in.path), in.name);
        run_page(img, in.name, 0);
      }
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      if (load_failed) throw;  // no page can run
      std::fprintf(stderr, "dsocr ocr: error: %s\n", e.what());
      ++failed;
    }
  }
  if (failed && inputs.size() > 1) std::fprintf(stderr, "dsocr ocr: %d of %zu inputs failed\n", failed, inputs.size());
  return failed ? 1 : 0;
}

}  // namespace dsocr
