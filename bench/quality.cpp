#include "bench/quality.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "model/generate.h"
#include "model/image.h"
#include "model/preprocess.h"
#include "ocr/page.h"
#include "ocr/prompt.h"

namespace dsocr::bench {
namespace {

struct Page {
  Views v;
  std::vector<int32_t> prompt;
};

Tensor page_embeddings(Runtime& rt, OcrEngine& e, const Page& p) {
  Tensor g = rt.upload(p.v.global_view, {1, 3, p.v.global_size, p.v.global_size});
  Tensor tiles;
  if (p.v.n_tiles > 0) tiles = rt.upload(p.v.tiles, {p.v.n_tiles, 3, p.v.tile_size, p.v.tile_size});
  return vision_embeddings(rt, e.model.vision, g, p.v.n_tiles > 0 ? &tiles : nullptr, p.v.cols, p.v.rows);
}

// Logits [n, vocab] at the positions that predicted the n generated ids (teacher forcing: the
// prompt and all but the last generated id in one pass).
std::vector<float> forced_logits(Runtime& rt, OcrEngine& e, const Page& p, const std::vector<int32_t>& gen,
                                 DType kv) {
  Tensor emb = page_embeddings(rt, e, p);
  std::vector<int32_t> seq = p.prompt;
  seq.insert(seq.end(), gen.begin(), gen.end() - 1);
  KvCache cache = make_kv_cache(rt, e.model.cfg.lm, static_cast<int64_t>(seq.size()), kv);
  Tensor x = lm_embed(rt, e.model.lm, seq, &emb, e.image_id);
  Tensor logits = lm_forward(rt, e.model.lm, x, cache, false);
  std::vector<float> all = rt.read_f32(logits);
  const size_t V = static_cast<size_t>(logits.dim(1)), first = p.prompt.size() - 1;
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
  RgbImage image = load_image(o.image);
  page.v = make_views(image, o.mode, 6);
  std::vector<QualityRow> rows;
  std::vector<float> ref;
  std::vector<int32_t> gen;
  size_t V = 0;
  {
    const uint64_t m0 = rt.memory().current;
    OcrEngine e = load_engine(rt, o.model_dir, WeightStorage::f32);
    QualityRow row;
    row.storage = WeightStorage::f32;
    row.weights_mib = model_mib(rt, m0);
    const int n_img = image_token_count(o.mode, page.v.cols, page.v.rows, page.v.n_tiles);
    page.prompt = build_prompt_ids(e.tok, o.prompt, n_img, e.bos_id, e.image_id);
    const int64_t room = e.model.cfg.lm.max_position_embeddings - static_cast<int64_t>(page.prompt.size());
    if (o.tokens > room)
      throw Error(fmt::format("quality: {} tokens after a {}-token prompt exceed the model's context of {}", o.tokens,
                              page.prompt.size(), e.model.cfg.lm.max_position_embeddings));
    Tensor emb = page_embeddings(rt, e, page);
    GenerateOptions go;
    go.max_new_tokens = o.tokens;
    go.eos_id = -1;  // never stop: every storage is compared over the same number of positions
    gen = generate(rt, e.model.lm, page.prompt, &emb, e.image_id, go);
    ref = forced_logits(rt, e, page, gen, DType::f32);
    V = static_cast<size_t>(e.model.cfg.lm.vocab_size);
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
    OcrEngine e = load_engine(rt, o.model_dir, s);
    const double mib = model_mib(rt, m0);
    QualityRow row = compare(forced_logits(rt, e, page, gen, kv), ref, V);
    row.storage = s;
    row.kv = kv;
    row.weights_mib = mib;
    row.notes = e.model.load_notes;
    rows.push_back(row);
    rt.trim();
  }
  return rows;
}

}  // namespace dsocr::bench
