// dsocr ocr: images and PDF pages to text, markdown or JSON, streamed as tokens are generated.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "apps/ocr_args.h"
#include "apps/progress.h"
#include "apps/runtime_setup.h"
#include "model/config.h"
#include "model/hf_cache.h"
#include "model/preprocess.h"
#include "ocr/corpus.h"
#include "ocr/draw.h"
#include "ocr/ocr.h"
#include "ocr/page_batch.h"
#include "ocr/pipeline.h"

namespace dsocr {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Pages to stdout, separated by "<--- Page Split --->" (text and markdown), flushed as written.
struct Writer {
  StatusLine* status = nullptr;  // its in-place line is cleared before output reaches a terminal
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
    if (status && stdout_is_terminal()) status->clear();
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
    last = s.back();
    any = true;
  }
};

// One input: a file (or stdin) whose format is known, or why it cannot be read.
struct Input {
  std::string path, name;
  InputKind kind = InputKind::unsupported;
  std::vector<uint8_t> bytes;  // standard input, read once
  std::string error;           // set: this input fails with this message, the others still run
};

std::vector<Input> open_inputs(const std::vector<std::string>& args, const Shard& shard) {
  std::vector<Input> inputs;
  const std::vector<InputPath> all = expand_inputs(args);
  for (size_t at = 0; at < all.size(); ++at) {
    if (!shard.takes(at)) continue;
    const InputPath& p = all[at];
    Input in{p.path, p.path == "-" ? "<stdin>" : p.path, InputKind::unsupported, {}, p.error};
    if (in.error.empty()) {
      try {
        std::vector<uint8_t> head;
        if (in.path == "-") {
          in.bytes = read_file_bytes("-");
          head = in.bytes;
        } else {
          head = read_file_bytes(in.path, 1024);
        }
        std::string what;
        in.kind = sniff_format(head, &what);
        if (in.kind == InputKind::unsupported)
          in.error = fmt::format("{}: unsupported input ({}); dsocr ocr reads PNG, JPEG and PDF", in.name, what);
        else if (in.kind == InputKind::pdf && !pdf_supported())
          in.error = fmt::format("{}: this dsocr was built without PDF support (-DDSOCR_PDF=OFF)", in.name);
      } catch (const Error& e) {
        in.error = e.what();
      }
    }
    inputs.push_back(std::move(in));
  }
  return inputs;
}

std::string page_path(const std::string& path, int index, bool several) {
  if (!several) return path;
  fs::path p(path);
  return (p.parent_path() / fmt::format("{}-{}{}", p.stem().string(), index, p.extension().string())).string();
}

// Runs the pages of every input on one model, loaded when the first page is ready (a run whose
// inputs all fail never touches the device). An input's failure is reported and counted; a
// failure to load the model or open the device ends the run.
class OcrRun {
 public:
  explicit OcrRun(const OcrSettings& s)
      : s_(s), status_(s.quiet), show_generation_(!s.quiet && (!stdout_is_terminal() || s.format == "json")) {
    out_.status = &status_;
  }
  int run(std::vector<Input>& inputs);

 private:
  void load();
  void on_build(const BuildEvent& e);
  void compile_summary(const std::string& what);
  void run_input(Input& in);
  void run_pdf(Input& in);
  // The pages --pages selects (Error when none); dropped_note: the warning when it asks for more.
  std::vector<int> pdf_pages(const PdfDocument& doc, const std::string& name, std::string& dropped_note) const;
  void run_page(const RgbImage& img, const std::string& name, int page);
  int run_batched(std::vector<Input>& inputs);
  int run_each(std::vector<Input>& inputs);  // one page at a time
  void page_done(const BatchPage& p, PageOutput& po);
  bool already_done(const std::string& name, int page);  // --results holds the page: skipped
  void emit_page(const std::string& name, int page, const std::string& content);
  void report_page(const PageResult& r, const RgbImage& img, const std::string& where,
                   const std::vector<PixelBox>& boxes);
  void fail(const std::string& name, int page, const std::string& message);
  void warn(const std::string& s) {
    status_.clear();
    std::fprintf(stderr, "dsocr ocr: warning: %s\n", s.c_str());
  }

  const OcrSettings& s_;
  StatusLine status_;
  const bool show_generation_;
  Writer out_;
  ModelLocation loc_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<OcrEngine> engine_;
  double load_s_ = 0;
  bool several_pages_ = false;
  int page_no_ = 0, crop_no_ = 0;
  bool input_failed_ = false, load_failed_ = false;
  std::unique_ptr<ResultStore> results_;  // --results
  int64_t written_ = 0, skipped_ = 0;
  // kernel programs compiled (not loaded from the cache) since the last summary
  int compiled_ = 0;
  double compile_s_ = 0;
  Clock::time_point compile_start_{};
};

void OcrRun::on_build(const BuildEvent& e) {
  if (!e.done) {
    rt_->finish();  // nothing queued runs while the build is timed (model/ocr.h: PageTimings)
    return;
  }
  if (!e.compiled) return;
  if (compiled_++ == 0) {
    compile_start_ = Clock::now() - std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(e.seconds));  // the first build began then
    const ProgramCache& pc = rt_->programs();
    status_.note(pc.enabled() ? fmt::format("dsocr: compiling kernels (first run only; cached in {})", pc.dir())
                              : "dsocr: compiling kernels (the program cache is off: every run compiles)");
    status_.restart();
  }
  compile_s_ += e.seconds;
  status_.update(fmt::format("dsocr: compiling kernels: {} program{} in {:.0f} s (last: {})", compiled_,
                             compiled_ == 1 ? "" : "s", secs_since(compile_start_), e.file));
}

void OcrRun::compile_summary(const std::string& what) {
  if (compiled_ == 0) return;
  status_.note(fmt::format("dsocr: compiled {} kernel program{} in {:.1f} s{}", compiled_, compiled_ == 1 ? "" : "s",
                           compile_s_, what));
  compiled_ = 0;
  compile_s_ = 0;
}

void OcrRun::load() {
  if (engine_) return;
  load_failed_ = true;  // until the engine is there
  auto t_load = Clock::now();
  rt_ = open_runtime(s_.ro);
  rt_->programs().set_build_observer([this](const BuildEvent& e) { on_build(e); });
  status_.note(fmt::format("dsocr: device {}", rt_->device().label()));
  status_.note(fmt::format("dsocr: loading {}", loc_.origin));
  const double c0 = rt_->programs().stats().seconds;
  engine_ = std::make_unique<OcrEngine>(load_engine(*rt_, loc_.dir, s_.storage));
  load_s_ = secs_since(t_load) - (rt_->programs().stats().seconds - c0);
  compile_summary(" (not counted in the load time)");
  for (const std::string& n : engine_->model.load_notes) status_.note("dsocr: " + n);
  status_.note(fmt::format("dsocr: loaded in {:.1f} s, {} weights ({})", load_s_,
                           weight_storage_name(engine_->model.storage), rt_->memory_summary()));
  load_failed_ = false;
}

void OcrRun::fail(const std::string& name, int page, const std::string& message) {
  input_failed_ = true;
  status_.clear();
  std::fprintf(stderr, "dsocr ocr: error: %s\n", message.c_str());
  if (s_.format == "json") {
    nlohmann::ordered_json j = {
        {"source", name}, {"page", page > 0 ? nlohmann::ordered_json(page) : nullptr}, {"error", message}};
    out_.raw(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
}

bool OcrRun::already_done(const std::string& name, int page) {
  if (!results_ || !results_->has(name, page)) return false;
  ++skipped_;
  return true;
}

// A page's output: to its own file with --results, else to stdout (json: its line; text and
// markdown: the rest of the page, which was streamed when it was not batched).
void OcrRun::emit_page(const std::string& name, int page, const std::string& content) {
  if (!results_) return;
  results_->write(name, page, content);
  ++written_;
}

void OcrRun::run_page(const RgbImage& img, const std::string& name, int page) {
  load();
  ++page_no_;
  const std::string where = page > 0 ? fmt::format("{} page {}", name, page) : name;
  status_.note(fmt::format("[{}] {}: {}x{}", page_no_, where, img.width, img.height));
  out_.new_page();
  PageRequest req{s_.prompt, s_.opts, output_format_from_string(s_.format), s_.out_dir, name, page, load_s_};
  const auto t_page = Clock::now();
  Clock::time_point t_first{};
  PageEvents ev;
  if (!results_) ev.text = [&](const std::string& piece) { out_.write(piece); };
  ev.warning = [&](const std::string& w) { warn(w); };
  ev.token = [&](int64_t n, int32_t) {
    if (n == 1) t_first = Clock::now();
    if (show_generation_ && n > 1)
      status_.update(fmt::format("[{}] {} tokens, {:.1f} tok/s, {:.1f} s", page_no_, n,
                                 (n - 1) / std::max(1e-9, secs_since(t_first)), secs_since(t_page)));
  };
  status_.restart();
  PageOutput po = dsocr::run_page(*rt_, *engine_, img, req, crop_no_, ev);
  status_.clear();
  if (results_)
    emit_page(name, page, req.format == OutputFormat::json ? po.json + "\n" : po.text);
  else if (req.format == OutputFormat::json)
    out_.raw(po.json + "\n");
  else if (out_.any && out_.last != '\n')
    out_.write("\n");
  report_page(po.result, img, where, po.boxes);
}

// Pages of every input, several at once (ocr/page_batch.h), printed in order as each is complete.
// Inputs and pages that cannot be read fail in their turn, as in the page-by-page path; the model
// is loaded with the first page that can run. After that page, `next` runs on run_page_batch's
// reader thread: it touches only the inputs, the PDF being read and the skipped count.
int OcrRun::run_batched(std::vector<Input>& inputs) {
  std::vector<char> failed(inputs.size(), 0);
  size_t ii = 0, pi = 0;
  std::unique_ptr<PdfDocument> doc;
  std::vector<int> pages;
  auto next = [&]() -> std::optional<BatchPage> {
    while (ii < inputs.size()) {
      Input& in = inputs[ii];
      BatchPage bp;
      bp.tag = static_cast<int>(ii);
      bp.req = PageRequest{s_.prompt, s_.opts, output_format_from_string(s_.format), s_.out_dir, in.name, 0, load_s_};
      try {
        if (!in.error.empty()) {
          ++ii;
          bp.error = in.error;
          return bp;
        }
        if (in.kind != InputKind::pdf) {
          ++ii;
          if (already_done(in.name, 0)) continue;
          bp.image = decode_image(in.path == "-" ? in.bytes : read_file_bytes(in.path), in.name);
          return bp;
        }
        if (!doc) {
          ++ii;  // until the document is open: an error here ends the input
          doc = std::make_unique<PdfDocument>(in.path == "-" ? PdfDocument::open_bytes(std::move(in.bytes), in.name)
                                                             : PdfDocument::open_file(in.path));
          std::string dropped;
          pages = pdf_pages(*doc, in.name, dropped);
          if (!dropped.empty()) bp.notes.push_back(dropped);  // (the reader thread's: reported with the page)
          --ii;
          pi = 0;
        }
        if (pi >= pages.size()) {
          doc.reset();
          ++ii;
          continue;
        }
        bp.req.page = pages[pi++];
        if (already_done(in.name, bp.req.page)) continue;
        bp.image = doc->render(bp.req.page, s_.dpi);  // one page that cannot be rendered: the others still run
        return bp;
      } catch (const Error& e) {
        if (bp.req.page == 0) doc.reset();
        bp.error = e.what();
        return bp;
      }
    }
    return std::nullopt;
  };

  // Failures before the first page that can run are reported before the model loads.
  std::optional<BatchPage> first;
  while ((first = next()) && !first->error.empty()) {
    fail(first->req.source, first->req.page, first->error);
    failed[first->tag] = 1;
  }
  if (first) {
    load();
    first->req.load_s = load_s_;
    const int64_t ctx = engine_->model.cfg.lm.max_position_embeddings;
    const int slots = page_batch_slots(*rt_, *engine_, s_.max_batch, ctx, s_.opts.kv);
    const double slot_mib = kv_cache_bytes(engine_->model.cfg.lm, ctx, s_.opts.kv) / 1048576.0;
    status_.note(fmt::format("dsocr: up to {} pages at once (--max-batch {}; KV cache {:.0f} MiB per page)", slots,
                             s_.max_batch, slot_mib));
    PageBatchEvents ev;
    ev.done = [&](const BatchPage& p, PageOutput& po) { page_done(p, po); };
    ev.failed = [&](const BatchPage& p, const std::string& message) {
      fail(p.req.source, p.req.page, message);
      failed[p.tag] = 1;
    };
    ev.warning = [&](const std::string& w) { warn(w); };
    const auto t0 = Clock::now();
    ev.progress = [&](int active, int64_t done, int64_t tokens) {
      if (show_generation_)
        status_.update(fmt::format("{} page{} decoding, {} done, {} tokens, {:.1f} tok/s", active,
                                   active == 1 ? "" : "s", done, tokens, tokens / std::max(1e-9, secs_since(t0))));
    };
    bool pending = true;
    auto source = [&]() -> std::optional<BatchPage> {
      if (pending) {
        pending = false;
        return std::move(first);
      }
      return next();
    };
    status_.restart();
    run_page_batch(*rt_, *engine_, slots, source, crop_no_, ev);
    status_.clear();
  }
  const int n_failed = static_cast<int>(std::count(failed.begin(), failed.end(), 1));
  if (n_failed && inputs.size() > 1)
    std::fprintf(stderr, "dsocr ocr: %d of %zu inputs failed (the others were processed)\n", n_failed,
                 inputs.size());
  return n_failed ? 1 : 0;
}

void OcrRun::page_done(const BatchPage& p, PageOutput& po) {
  ++page_no_;
  const std::string where = p.req.page > 0 ? fmt::format("{} page {}", p.req.source, p.req.page) : p.req.source;
  status_.clear();
  status_.note(fmt::format("[{}] {}: {}x{}", page_no_, where, p.image.width, p.image.height));
  out_.new_page();
  if (results_) {
    emit_page(p.req.source, p.req.page, p.req.format == OutputFormat::json ? po.json + "\n" : po.text);
  } else if (p.req.format == OutputFormat::json) {
    out_.raw(po.json + "\n");
  } else {
    out_.write(po.text);
    if (out_.any && out_.last != '\n') out_.write("\n");
  }
  report_page(po.result, p.image, where, po.boxes);
}

void OcrRun::report_page(const PageResult& r, const RgbImage& img, const std::string& where,
                         const std::vector<PixelBox>& boxes) {
  const int64_t g = static_cast<int64_t>(r.generated.size());
  compile_summary(" (first use; not counted in the times below)");
  status_.note(fmt::format(
      "[{}] done: {}{}, {} image tokens; vision {:.2f} s, prefill {:.2f} s, {} tokens at {:.1f} tok/s", page_no_,
      r.mode, r.n_tiles ? fmt::format(" {}x{} tiles", r.cols, r.rows) : std::string(), r.n_image_tokens,
      r.t.preprocess_s + r.t.vision_s, r.t.prefill_s, g, g > 1 && r.t.decode_s > 0 ? (g - 1) / r.t.decode_s : 0.0));
  if (r.max_new_tokens < s_.opts.max_new_tokens && s_.explicit_max)
    warn(fmt::format("{}: --max-new-tokens capped to {} by the model's context", where, r.max_new_tokens));
  if (!r.eos) {
    if (s_.explicit_max && r.max_new_tokens == s_.opts.max_new_tokens)
      status_.note(
          fmt::format("[{}] stopped at --max-new-tokens {}, as asked (no end-of-sequence token yet)", page_no_, g));
    else
      warn(fmt::format("{}: stopped after {} tokens without an end-of-sequence token (output may be cut short)", where,
                       g));
  }
  if (!s_.boxes_path.empty()) {
    std::vector<LabelledBox> lb;
    for (auto& b : boxes) lb.push_back({b.label, b.px[0], b.px[1], b.px[2], b.px[3]});
    RgbImage canvas = img;
    draw_boxes(canvas, lb);
    std::string p = page_path(s_.boxes_path, page_no_, several_pages_);
    write_image(p, canvas);
    status_.note(fmt::format("    {} box{} drawn in {}", lb.size(), lb.size() == 1 ? "" : "es", p));
  }
}

std::vector<int> OcrRun::pdf_pages(const PdfDocument& doc, const std::string& name, std::string& dropped_note) const {
  int dropped = 0;
  std::vector<int> pages;
  if (s_.pages_spec.empty()) {
    for (int p = 1; p <= doc.pages(); ++p) pages.push_back(p);
  } else {
    pages = parse_pages(s_.pages_spec, doc.pages(), &dropped);
  }
  if (pages.empty())
    throw Error(fmt::format("{}: --pages {} selects none of its {} pages", name, s_.pages_spec, doc.pages()));
  if (dropped)
    dropped_note = fmt::format("{} has {} pages; --pages {} asks for more", name, doc.pages(), s_.pages_spec);
  return pages;
}

void OcrRun::run_pdf(Input& in) {
  PdfDocument doc =
      in.path == "-" ? PdfDocument::open_bytes(std::move(in.bytes), in.name) : PdfDocument::open_file(in.path);
  std::string dropped;
  const std::vector<int> pages = pdf_pages(doc, in.name, dropped);
  if (!dropped.empty()) warn(dropped);
  for (int p : pages) {
    if (already_done(in.name, p)) continue;
    RgbImage img;
    try {
      img = doc.render(p, s_.dpi);
    } catch (const Error& e) {  // one page that cannot be rendered: the others still run
      fail(in.name, p, e.what());
      continue;
    }
    run_page(img, in.name, p);
  }
}

void OcrRun::run_input(Input& in) {
  if (!in.error.empty()) throw Error(in.error);
  if (in.kind == InputKind::pdf) return run_pdf(in);
  if (already_done(in.name, 0)) return;
  RgbImage img = decode_image(in.path == "-" ? in.bytes : read_file_bytes(in.path), in.name);
  run_page(img, in.name, 0);
}

int OcrRun::run(std::vector<Input>& inputs) {
  bool any_pdf = false;
  for (auto& in : inputs) any_pdf |= in.kind == InputKind::pdf;
  if (!s_.pages_spec.empty() && !any_pdf) warn("--pages applies to PDF inputs only; there is none");
  several_pages_ = inputs.size() > 1 || any_pdf;
  // Located now (a missing model fails at once), opened and loaded with the first page.
  if (!s_.model_note.empty()) status_.note("dsocr: " + s_.model_note);
  loc_ = resolve_model(s_.model_spec);
  if (!s_.from_checkpoint.empty())
    status_.note(fmt::format("dsocr: {} (the checkpoint's config.json; --mode, --task or --prompt override)",
                             s_.from_checkpoint));
  if (!s_.results_dir.empty())
    results_ = std::make_unique<ResultStore>(
        s_.results_dir, s_.format == "json" ? "json" : s_.format == "markdown" ? "md" : "txt");
  const int rc = several_pages_ && s_.max_batch > 1 ? run_batched(inputs) : run_each(inputs);
  if (results_)
    status_.note(fmt::format("dsocr: results in {}: {} page{} written, {} already there (skipped)", results_->dir(),
                             written_, written_ == 1 ? "" : "s", skipped_));
  return rc;
}

int OcrRun::run_each(std::vector<Input>& inputs) {
  int failed = 0;
  for (auto& in : inputs) {
    input_failed_ = false;
    try {
      run_input(in);
    } catch (const std::exception& e) {
      if (load_failed_) throw;  // the model or the device failed: no page can run
      fail(in.name, 0, e.what());
    }
    failed += input_failed_;
  }
  if (failed && inputs.size() > 1)
    std::fprintf(stderr, "dsocr ocr: %d of %zu inputs failed (the others were processed)\n", failed, inputs.size());
  return failed ? 1 : 0;
}

}  // namespace

int cmd_ocr(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kOcrUsage, stdout);
    return 0;
  }
  OcrSettings s = parse_ocr(a);
  std::vector<Input> inputs = open_inputs(s.inputs, s.shard.empty() ? Shard{} : parse_shard(s.shard));
  if (inputs.empty()) {  // a shard with nothing to take: nothing to do
    if (!s.quiet) std::fprintf(stderr, "dsocr ocr: shard %s takes none of the inputs\n", s.shard.c_str());
    return 0;
  }
  OcrRun run(s);
  return run.run(inputs);
}

}  // namespace dsocr
