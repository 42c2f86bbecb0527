#include "bench/quality.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bench/bench.h"
#include "model/generate.h"
#include "model/image.h"
#include "model/preprocess.h"
#include "ocr/page.h"
#include "ocr/prompt.h"

namespace dsocr::bench {
namespace {

// A model under test with the prompt of the page: a checkpoint's (its tokenizer builds the prompt)
// or the random-weight model (bos, the image tokens, a few fixed ids).
struct Subject {
  OcrModel model;
  std::vector<int32_t> prompt;
  int32_t image_id = -1;
};

struct Page {
  Views v;
  std::string mode;
  int n_image_tokens = 0;
};

Subject load_subject(Runtime& rt, const QualityOptions& o, const Page& page, WeightStorage s) {
  Subject sub;
  if (o.model_dir.empty()) {
    sub.model = random_model(rt, o.small, s);
    const int64_t V = sub.model.cfg.lm.vocab_size;
    sub.image_id = static_cast<int32_t>(std::min<int64_t>(128815, V - 1));
    sub.prompt.push_back(0);
    sub.prompt.insert(sub.prompt.end(), static_cast<size_t>(page.n_image_tokens), sub.image_id);
    for (int32_t id : {201, 22103, 13, 5023, 17}) sub.prompt.push_back(static_cast<int32_t>(id % V));
    return sub;
  }
  OcrEngine e = load_engine(rt, o.model_dir, s);
  sub.prompt = build_prompt_ids(e.tok, o.prompt, page.n_image_tokens, e.bos_id, e.image_id);
  sub.image_id = e.image_id;
  sub.model = std::move(e.model);
  return sub;
}

Tensor page_embeddings(Runtime& rt, Subject& sub, const Page& p) {
  Tensor g = rt.upload(p.v.global_view, {1, 3, p.v.global_size, p.v.global_size});
  Tensor tiles;
  if (p.v.n_tiles > 0) tiles = rt.upload(p.v.tiles, {p.v.n_tiles, 3, p.v.tile_size, p.v.tile_size});
  return vision_embeddings(rt, sub.model.vision, g, p.v.n_tiles > 0 ? &tiles : nullptr, p.v.cols, p.v.rows);
}

// Logits [n, vocab] at the positions that predicted the n generated ids (teacher forcing: the
// prompt and all but the last generated id in one pass).
std::vector<float> forced_logits(Runtime& rt, Subject& sub, const Page& p, const std::vector<int32_t>& gen, DType kv) {
  Tensor emb = page_embeddings(rt, sub, p);
  std::vector<int32_t> seq = sub.prompt;
  seq.insert(seq.end(), gen.begin(), gen.end() - 1);
  KvCache cache = make_kv_cache(rt, sub.model.cfg.lm, static_cast<int64_t>(seq.size()), kv);
  Tensor x = lm_embed(rt, sub.model.lm, seq, &emb, sub.image_id);
  Tensor logits = lm_forward(rt, sub.model.lm, x, cache, false);
  std::vector<float> all = rt.read_f32(logits);
  const size_t V = static_cast<size_t>(logits.dim(1)), first = sub.prompt.size() - 1;
  return std::vector<float>(all.begin() + static_cast<std::ptrdiff_t>(first * V), all.end());
}

QualityRow compare(const std::vector<float>& l, const std::vector<float>& r, size_t V) {
  QualityRow q;
  const size_t n = r.size() / V;
  size_t same = 0;
  for (size_t p = 0; p < n; ++p) {
    const float* a = &l[p * V];
    const float* b = &r[p * V];
    double diff = 0, ref = 0;
    for (size_t v = 0; v < V; ++v) {
      diff = std::max(diff, std::fabs(double(a[v]) - b[v]));
      ref = std::max(ref, std::fabs(double(b[v])));
    }
    const double err = ref > 0 ? diff / ref : diff;
    q.max_rel = std::max(q.max_rel, err);
    q.mean_rel += err / static_cast<double>(n);
    same += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b ? 1 : 0;
  }
  q.agree = n > 0 ? static_cast<double>(same) / static_cast<double>(n) : 0.0;
  q.positions = static_cast<int64_t>(n);
  return q;
}

double model_mib(Runtime& rt, uint64_t before) { return double(rt.memory().current - before) / 1048576.0; }

}  // namespace

std::vector<QualityRow> measure_quality(Runtime& rt, const QualityOptions& o) {
  if (o.tokens < 1) throw Error(fmt::format("quality: --tokens {} must be at least 1", o.tokens));
  Page page;
  page.mode = o.mode;
  page.v = make_views(load_image(o.image), o.mode, 6);
  page.n_image_tokens = image_token_count(o.mode, page.v.cols, page.v.rows, page.v.n_tiles);
  std::vector<QualityRow> rows;
  std::vector<float> ref;
  std::vector<int32_t> gen;
  size_t V = 0;
  {
    const uint64_t m0 = rt.memory().current;
    Subject sub = load_subject(rt, o, page, WeightStorage::f32);
    QualityRow row;
    row.storage = WeightStorage::f32;
    row.weights_mib = model_mib(rt, m0);
    const int64_t ctx = sub.model.cfg.lm.max_position_embeddings;
    if (o.tokens > ctx - static_cast<int64_t>(sub.prompt.size()))
      throw Error(fmt::format("quality: {} tokens after a {}-token prompt exceed the model's context of {}", o.tokens,
                              sub.prompt.size(), ctx));
    Tensor emb = page_embeddings(rt, sub, page);
    GenerateOptions go;
    go.max_new_tokens = o.tokens;
    go.eos_id = -1;  // never stop: every storage is compared over the same number of positions
    gen = generate(rt, sub.model.lm, sub.prompt, &emb, sub.image_id, go);
    ref = forced_logits(rt, sub, page, gen, DType::f32);
    V = static_cast<size_t>(sub.model.cfg.lm.vocab_size);
    row.positions = static_cast<int64_t>(gen.size());
    row.agree = 1.0;
    rows.push_back(row);
  }
  rt.trim();
  std::vector<std::pair<WeightStorage, DType>> runs;
  for (WeightStorage s : o.storages) runs.emplace_back(s, DType::f32);
  runs.emplace_back(WeightStorage::bf16, DType::f16);
  runs.emplace_back(WeightStorage::bf16, DType::bf16);
  for (auto [s, kv] : runs) {
    const uint64_t m0 = rt.memory().current;
    Subject sub = load_subject(rt, o, page, s);
    const double mib = model_mib(rt, m0);
    QualityRow row = compare(forced_logits(rt, sub, page, gen, kv), ref, V);
    row.storage = s;
    row.kv = kv;
    row.weights_mib = mib;
    row.notes = sub.model.load_notes;
    rows.push_back(row);
    rt.trim();
  }
  return rows;
}

}  // namespace dsocr::bench
