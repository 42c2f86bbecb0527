#include "ocr/page_batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "model/preprocess.h"
#include "runtime/error.h"

namespace dsocr {
namespace {
using Clock = std::chrono::steady_clock;
double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

int page_batch_slots(const Runtime& rt, const OcrEngine& e, int max_batch, int64_t capacity, DType kv) {
  const uint64_t per_slot = kv_cache_bytes(e.model.cfg.lm, capacity, kv);
  const uint64_t total = rt.device().global_mem, held = rt.memory().current;
  const uint64_t free = total > held ? total - held : 0;
  const uint64_t fit = per_slot > 0 ? free / 2 / per_slot : 1;
  return static_cast<int>(std::clamp<uint64_t>(fit, 1, static_cast<uint64_t>(std::max(max_batch, 1))));
}

namespace {
// A page's view pixels, global view and tiles (the encoder's work and memory grow with them).
double view_pixels(const Views& v) {
  return double(v.global_size) * v.global_size + double(v.n_tiles) * v.tile_size * v.tile_size;
}
}  // namespace

size_t PageBatchEngine::vision_pages(const std::vector<const Views*>& pages) const {
  if (vision_bytes_per_px_ <= 0) return std::min<size_t>(pages.size(), 1);
  const uint64_t total = rt_.device().global_mem, held = rt_.memory().current;
  const double budget = total > held ? double(total - held) / 2 : 0;
  double need = 0;
  size_t n = 0;
  for (const Views* v : pages) {
    need += view_pixels(*v) * vision_bytes_per_px_;
    if (n > 0 && need > budget) break;
    ++n;
  }
  return n;
}

int64_t PageBatchEngine::add(const RgbImage& image, const PageRequest& req, bool stream, int& crop_counter,
                             const PageEvents& events, DoneFn done, const Views* views, double views_s) {
  std::vector<Adding> one(1);
  one[0] = Adding{&image, &req, stream, &crop_counter, &events, std::move(done), views, views_s};
  const Added a = add_many(one)[0];
  if (a.id < 0) throw Error(a.error);
  return a.id;
}

std::vector<PageBatchEngine::Added> PageBatchEngine::add_many(std::vector<Adding>& pages) {
  if (static_cast<int>(pages.size()) > free_slots())
    throw Error(fmt::format("page batch: {} pages for {} free slots of {}", pages.size(), free_slots(), slots_));
  std::vector<Added> out(pages.size());
  std::vector<Views> made(pages.size());  // the views of pages given without: their sizes plan the passes
  std::vector<size_t> todo;
  for (size_t i = 0; i < pages.size(); ++i) {
    Adding& a = pages[i];
    if (!a.views) {
      try {
        const auto t0 = Clock::now();
        made[i] = make_views(*a.image, effective_mode(a.req->opts), a.req->opts.max_tiles);
        a.views = &made[i];
        a.views_s = secs(t0, Clock::now());
      } catch (const Error& err) {
        out[i].error = err.what();
        continue;
      }
    }
    todo.push_back(i);
  }
  // Passes of as many pages as vision_pages allows, in order; a failing pass's pages are not begun
  // and the later ones are not tried (OutOfDeviceMemory and device failures propagate).
  for (size_t first = 0; first < todo.size();) {
    std::vector<const Views*> views;
    for (size_t j = first; j < todo.size(); ++j) views.push_back(pages[todo[j]].views);
    const size_t n = std::max<size_t>(vision_pages(views), 1);
    std::vector<Adding*> pass;
    for (size_t j = first; j < first + n; ++j) pass.push_back(&pages[todo[j]]);
    std::vector<Added> got;
    try {
      got = add_pass(pass);
    } catch (...) {
      for (size_t j = 0; j < first; ++j)  // none of the call's pages is left begun
        if (out[todo[j]].id >= 0) cancel(out[todo[j]].id);
      throw;
    }
    for (size_t j = 0; j < n; ++j) out[todo[first + j]] = std::move(got[j]);
    first += n;
  }
  return out;
}

std::vector<PageBatchEngine::Added> PageBatchEngine::add_pass(const std::vector<Adding*>& pages) {
  std::vector<PageInput> in;
  for (const Adding* a : pages) in.push_back(PageInput{a->image, &a->req->prompt, &a->req->opts, a->views, a->views_s});
  // What the pass needs: the most bytes live at once above those held before, per view pixel.
  const uint64_t held = rt_.memory().current;
  std::vector<PreparedOrError> prepared;
  const uint64_t peak = rt_.peak_during([&] { prepared = prepare_pages(rt_, e_, in); });
  double px = 0;
  for (size_t i = 0; i < pages.size(); ++i)
    if (prepared[i].page) px += view_pixels(*pages[i]->views);  // add_many made every page's views
  if (px > 0 && peak > held) vision_bytes_per_px_ = std::max(vision_bytes_per_px_, double(peak - held) / px);
  std::vector<Added> out(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    if (!prepared[i].page) {
      out[i].error = prepared[i].error;
      continue;
    }
    PreparedPage& pp = *prepared[i].page;
    Adding& a = *pages[i];
    if (!gen_)
      gen_ = std::make_unique<BatchGenerator>(rt_, e_.model.lm, slots_, e_.model.cfg.lm.max_position_embeddings,
                                              pp.gen.kv);
    Page pg;
    pg.r = std::move(pp.r);
    if (a.stream) pg.stream = std::make_unique<PageStream>(e_, *a.image, *a.req, *a.crop_counter, *a.events);
    pg.done = std::move(a.done);
    pg.prefill_start = Clock::now();
    try {
      gen_->add(pg.r.prompt_ids, &pp.image_embeds, e_.image_id, pp.gen, [&](int64_t seq, int32_t tok, bool last) {
        out[i].id = seq;
        pages_.emplace(seq, std::move(pg));
        on_token(seq, tok, last);
      });
    } catch (const OutOfDeviceMemory&) {
      for (size_t j = 0; j < i; ++j)  // none of the call's pages is left begun
        if (out[j].id >= 0) cancel(out[j].id);
      throw;
    } catch (const Error& err) {
      out[i].error = err.what();
    }
    pp.image_embeds = {};  // in the KV cache now
  }
  return out;
}

void PageBatchEngine::step() {
  if (gen_) gen_->step([this](int64_t seq, int32_t tok, bool last) { on_token(seq, tok, last); });
}

void PageBatchEngine::cancel(int64_t page) {
  if (gen_) gen_->cancel(page);
  pages_.erase(page);
}

void PageBatchEngine::on_token(int64_t seq, int32_t tok, bool last) {
  auto it = pages_.find(seq);
  if (it == pages_.end()) return;
  Page& pg = it->second;
  ++tokens_;
  const auto now = Clock::now();
  if (pg.r.generated.empty()) pg.first = now;
  pg.last = now;
  pg.r.generated.push_back(tok);
  if (pg.stream) pg.stream->push(tok);  // may cancel this page (its client's token callback)
  if (!last || pages_.find(seq) == pages_.end()) return;
  Page done = std::move(it->second);
  pages_.erase(it);
  done.r.t.prefill_s = secs(done.prefill_start, done.first);
  done.r.t.decode_s = secs(done.first, done.last);
  finish_page(rt_, e_, done.r);
  PageOutput out;
  if (done.stream)
    out = done.stream->finish(std::move(done.r));
  else
    out.result = std::move(done.r);
  if (done.done) done.done(seq, out);
}

namespace {

// Pages read ahead on a thread of their own: next() (decoding, PDF rendering) and their views,
// up to `depth` pages waiting. The destructor stops and joins it.
class PageReader {
 public:
  PageReader(const std::function<std::optional<BatchPage>()>& next, size_t depth) : next_(next), depth_(depth) {
    thread_ = std::thread([this] { loop(); });
  }
  ~PageReader() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // The next page; nullopt at the end (ended set) or, without wait, when none is ready yet.
  // Rethrows what next() threw.
  std::optional<BatchPage> get(bool wait, bool& ended) {
    std::unique_lock<std::mutex> lk(m_);
    if (wait) cv_.wait(lk, [&] { return !ready_.empty() || ended_; });
    ended = ready_.empty() && ended_;
    if (ready_.empty()) {
      if (error_ && ended_) std::rethrow_exception(error_);
      return std::nullopt;
    }
    BatchPage p = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
    return p;
  }

 private:
  void loop() {
    try {
      for (;;) {
        {
          std::unique_lock<std::mutex> lk(m_);
          cv_.wait(lk, [&] { return stop_ || ready_.size() < depth_; });
          if (stop_) break;
        }
        std::optional<BatchPage> p = next_();
        if (!p) break;
        if (p->error.empty()) {
          try {
            const auto t0 = Clock::now();
            p->views =
                std::make_shared<const Views>(make_views(p->image, effective_mode(p->req.opts), p->req.opts.max_tiles));
            p->views_s = secs(t0, Clock::now());
          } catch (const Error& e) {
            p->error = e.what();
          }
        }
        std::lock_guard<std::mutex> lk(m_);
        ready_.push_back(std::move(*p));
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(m_);
    ended_ = true;
    cv_.notify_all();
  }

  const std::function<std::optional<BatchPage>()>& next_;
  const size_t depth_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<BatchPage> ready_;
  bool stop_ = false, ended_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace

void run_page_batch(Runtime& rt, OcrEngine& e, int slots, const std::function<std::optional<BatchPage>()>& next,
                    int& crop_counter, const PageBatchEvents& events) {
  struct Entry {
    BatchPage page;
    PageResult r;
    std::string error;
    bool done = false;
  };
  PageBatchEngine engine(rt, e, slots);
  std::deque<std::unique_ptr<Entry>> order;  // fetched, not yet delivered
  int64_t delivered = 0;
  bool more = true;
  const PageEvents none;
  int unused_crops = 0;  // no stream while generating: crops are made at delivery
  PageReader reader(next, static_cast<size_t>(std::max(slots, 1)));

  // Finished pages at the head of the queue, in order; the output stream replays the ids there,
  // so that crops are numbered in page order.
  auto deliver = [&] {
    while (!order.empty() && order.front()->done) {
      std::unique_ptr<Entry> en = std::move(order.front());
      order.pop_front();
      ++delivered;
      if (events.warning)
        for (const std::string& n : en->page.notes) events.warning(n);
      if (!en->error.empty()) {
        if (events.failed) events.failed(en->page, en->error);
        continue;
      }
      PageEvents pe;
      pe.warning = events.warning;
      PageStream stream(e, en->page.image, en->page.req, crop_counter, pe);
      for (int32_t id : en->r.generated) stream.push(id);
      PageOutput out = stream.finish(std::move(en->r));
      if (events.done) events.done(en->page, out);
    }
  };

  while (true) {
    // The pages ready now (waiting only for a first one while none is in flight), as many as
    // there are free slots, begun together (add_many: their vision in as few passes as fit).
    std::vector<Entry*> batch;
    while (static_cast<int>(batch.size()) < engine.free_slots() && more) {
      bool ended = false;
      std::optional<BatchPage> p = reader.get(batch.empty() && engine.active() == 0, ended);
      if (ended) more = false;
      if (!p) break;
      order.push_back(std::make_unique<Entry>());
      Entry* en = order.back().get();
      en->page = std::move(*p);
      if (!en->page.error.empty()) {
        en->error = en->page.error;
        en->done = true;
        continue;
      }
      batch.push_back(en);
    }
    if (!batch.empty()) {
      std::vector<PageBatchEngine::Adding> adding;
      for (Entry* en : batch)
        adding.push_back(PageBatchEngine::Adding{&en->page.image, &en->page.req, false, &unused_crops, &none,
                                                 [en](int64_t, PageOutput& out) {
                                                   en->r = std::move(out.result);
                                                   en->done = true;
                                                 },
                                                 en->page.views.get(), en->page.views_s});
      const std::vector<PageBatchEngine::Added> added = engine.add_many(adding);
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->page.views.reset();  // on the device now
        if (added[i].id < 0) {
          batch[i]->error = added[i].error;
          batch[i]->done = true;
        }
      }
    }
    deliver();
    if (engine.active() == 0) {
      if (!more) break;
      continue;
    }
    engine.step();
    if (events.progress) events.progress(engine.active(), delivered, engine.tokens());
    deliver();
  }
  deliver();
}

}  // namespace dsocr
