#include "ocr/page.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include "model/deepencoder.h"
#include "model/generate.h"
#include "model/preprocess.h"
#include "ocr/prompt.h"
#include "runtime/error.h"

namespace dsocr {
namespace fs = std::filesystem;

std::string effective_mode(const OcrOptions& o) {
  mode_spec(o.mode);  // validates
  return (o.mode == "gundam" && !o.crop) ? std::string("base") : o.mode;
}

OcrEngine load_engine(Runtime& rt, const std::string& dir, WeightStorage storage) {
  const std::string tj = (fs::path(dir) / "tokenizer.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(tj, ec)) throw Error(fmt::format("checkpoint {} has no tokenizer.json", dir));
  Tokenizer tok = Tokenizer::from_file(tj);
  OcrEngine e{load_model(rt, dir, storage), std::move(tok), -1, 0, 1, {}};
  const LmConfig& lm = e.model.cfg.lm;
  e.image_id = e.tok.token_id("<image>");
  if (e.image_id < 0) throw Error(fmt::format("{}: the tokenizer has no <image> token", tj));
  if (e.tok.vocab_size() > lm.vocab_size)
    throw Error(
        fmt::format("{}: the tokenizer has {} ids but the model's vocabulary {} (tokenizer.json and "
                    "config.json do not belong together)",
                    dir, e.tok.vocab_size(), lm.vocab_size));
  e.bos_id = static_cast<int32_t>(lm.bos_token_id);
  e.eos_id = static_cast<int32_t>(lm.eos_token_id);
  for (const char* t : {"<td>", "</td>"})
    if (int32_t id = e.tok.token_id(t); id >= 0) e.ngram_whitelist.push_back(id);
  return e;
}

namespace {
using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

namespace {

// A page's result before its vision: size, mode, views, grid and prompt ids; Error when the
// page cannot run (a mode of the other model version, a prompt that fills the context).
PreparedPage page_before_vision(OcrEngine& e, const PageInput& in, Views& made) {
  PreparedPage pp;
  PageResult& r = pp.r;
  const OcrOptions& o = *in.opts;
  r.width = in.image->width;
  r.height = in.image->height;
  r.mode = effective_mode(o);
  if (const int want = e.model.cfg.is_v2() ? 2 : 1; mode_spec(r.mode).version != want)
    throw Error(fmt::format("mode {} is not a mode of this {} checkpoint (use {})", r.mode,
                            want == 2 ? "DeepSeek-OCR-2" : "DeepSeek-OCR", want == 2 ? "ocr2" : "gundam or base"));
  const auto t0 = Clock::now();
  if (!in.views) made = make_views(*in.image, r.mode, o.max_tiles);
  const Views& v = in.views ? *in.views : made;
  r.t.preprocess_s = in.views ? in.views_s : secs(t0, Clock::now());
  r.cols = v.cols;
  r.rows = v.rows;
  r.n_tiles = v.n_tiles;
  // The prompt first: a page that cannot fit the context fails before the encoder runs.
  r.n_image_tokens = image_token_count(r.mode, v.cols, v.rows, v.n_tiles);
  r.prompt_ids = build_prompt_ids(e.tok, *in.prompt, r.n_image_tokens, e.bos_id, e.image_id);
  const int64_t ctx = e.model.cfg.lm.max_position_embeddings;
  const int64_t room = ctx - static_cast<int64_t>(r.prompt_ids.size());
  if (room < 1)
    throw Error(fmt::format("the prompt ({} tokens, {} of them image) fills the model's context of {} tokens",
                            r.prompt_ids.size(), r.n_image_tokens, ctx));
  GenerateOptions& go = pp.gen;
  go.max_new_tokens = r.max_new_tokens = std::min<int64_t>(o.max_new_tokens, room);
  go.ngram_size = o.ngram_size;
  go.ngram_window = o.ngram_window;
  go.ngram_whitelist = e.ngram_whitelist;
  go.eos_id = e.eos_id;
  go.kv = o.kv;
  return pp;
}

}  // namespace

std::vector<PreparedOrError> prepare_pages(Runtime& rt, OcrEngine& e, const std::vector<PageInput>& in) {
  // Seconds spent building or loading kernel programs so far: taken out of every stage's time.
  auto compiled = [&] { return rt.programs().stats().seconds; };
  const double c0 = compiled();
  std::vector<PreparedOrError> out(in.size());
  std::vector<Views> made(in.size());
  std::vector<const Views*> views;
  std::vector<size_t> which;  // out index of each entry of views
  for (size_t i = 0; i < in.size(); ++i) {
    try {
      out[i].page = page_before_vision(e, in[i], made[i]);
      views.push_back(in[i].views ? in[i].views : &made[i]);
      which.push_back(i);
    } catch (const OutOfDeviceMemory&) {
      throw;
    } catch (const Error& err) {
      out[i].error = err.what();
    }
  }
  if (views.empty()) return out;
  const auto t1 = Clock::now();
  const double c1 = compiled();
  std::vector<Tensor> embeds = vision_embeddings_batch(rt, e.model.vision, views);
  rt.finish();
  rt.trim();  // the encoder's freed activations are not needed by the decoder
  const double vision_s = std::max(0.0, secs(t1, Clock::now()) - (compiled() - c1));
  const double compile_s = compiled() - c0;
  for (size_t j = 0; j < which.size(); ++j) {
    PreparedPage& pp = *out[which[j]].page;
    if (embeds[j].dim(0) != pp.r.n_image_tokens)
      throw Error(fmt::format("the vision encoder gave {} image tokens, the {} layout needs {}", embeds[j].dim(0),
                              pp.r.mode, pp.r.n_image_tokens));
    pp.image_embeds = std::move(embeds[j]);
    pp.r.t.vision_s = vision_s / static_cast<double>(which.size());
    pp.r.t.compile_s = compile_s / static_cast<double>(which.size());
    pp.r.vision_batch = static_cast<int>(which.size());
  }
  return out;
}

PreparedPage prepare_page(Runtime& rt, OcrEngine& e, const RgbImage& image, const std::string& prompt,
                          const OcrOptions& o, const Views* views, double views_s) {
  std::vector<PreparedOrError> p = prepare_pages(rt, e, {PageInput{&image, &prompt, &o, views, views_s}});
  if (!p[0].page) throw Error(p[0].error);
  return std::move(*p[0].page);
}

void finish_page(Runtime& rt, const OcrEngine& e, PageResult& r) {
  r.eos = !r.generated.empty() && r.generated.back() == e.eos_id;
  std::vector<int32_t> body(r.generated.begin(), r.generated.end() - (r.eos ? 1 : 0));
  r.text = e.tok.decode(body);
  r.host_rss_bytes = host_rss_bytes();
  r.device_live_bytes = rt.memory().current;
  r.device_held_bytes = rt.memory().current + rt.memory().cached;
}

PageResult ocr_image(Runtime& rt, OcrEngine& e, const RgbImage& image, const std::string& prompt, const OcrOptions& o,
                     const std::function<void(int32_t)>& on_token) {
  PreparedPage pp = prepare_page(rt, e, image, prompt, o);
  PageResult& r = pp.r;
  auto compiled = [&] { return rt.programs().stats().seconds; };
  Clock::time_point first{}, last{};
  double c_first = 0, c_last = 0;
  int64_t n = 0;
  auto t3 = Clock::now();
  const double c3 = compiled();
  r.generated = generate(rt, e.model.lm, r.prompt_ids, &pp.image_embeds, e.image_id, pp.gen, [&](int32_t id) {
    last = Clock::now();
    c_last = compiled();
    if (n++ == 0) {
      first = last;
      c_first = c_last;
    }
    if (on_token) on_token(id);
  });
  auto t4 = Clock::now();
  if (n == 0) {
    first = last = t4;
    c_first = c_last = compiled();
  }
  r.t.prefill_s = std::max(0.0, secs(t3, first) - (c_first - c3));
  r.t.decode_s = std::max(0.0, secs(first, last) - (c_last - c_first));
  r.t.compile_s += compiled() - c3;
  finish_page(rt, e, r);
  return r;
}

uint64_t host_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

nlohmann::ordered_json page_json(const PageResult& r, const PageReport& rep) {
  using json = nlohmann::ordered_json;
  json boxes = json::array();
  for (auto& b : rep.boxes)
    boxes.push_back({{"label", b.label},
                     {"box", {b.px[0], b.px[1], b.px[2], b.px[3]}},
                     {"box_999", {b.grid[0], b.grid[1], b.grid[2], b.grid[3]}}});
  const int64_t g = static_cast<int64_t>(r.generated.size());
  const double tok_s = (g > 1 && r.t.decode_s > 0) ? (g - 1) / r.t.decode_s : 0.0;
  json j = {
      {"source", rep.source},
      {"page", rep.page > 0 ? json(rep.page) : json(nullptr)},
      {"width", r.width},
      {"height", r.height},
      {"mode", r.mode},
      {"grid", {r.cols, r.rows}},
      {"tiles", r.n_tiles},
      {"prompt", rep.prompt},
      {"text", r.text},
      {"markdown", rep.markdown},
      {"boxes", boxes},
      {"images", rep.images},
      {"tokens", {{"prompt", r.prompt_ids.size()}, {"image", r.n_image_tokens}, {"generated", g}}},
      {"generated_ids", r.generated},
      {"stop", r.eos ? "eos" : "max_new_tokens"},
      {"timings",
       {{"load_s", rep.load_s},
        {"preprocess_s", r.t.preprocess_s},
        {"vision_s", r.t.vision_s},
        {"vision_batch", r.vision_batch},
        {"prefill_s", r.t.prefill_s},
        {"decode_s", r.t.decode_s},
        {"decode_tok_s", tok_s},
        {"compile_s", r.t.compile_s}}},
      {"memory",
       {{"host_rss_bytes", r.host_rss_bytes},
        {"device_live_bytes", r.device_live_bytes},
        {"device_held_bytes", r.device_held_bytes}}},
  };
  return j;
}

}  // namespace dsocr
