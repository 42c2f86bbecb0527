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

int64_t PageBatchEngine::add(const RgbImage& image, const PageRequest& req, bool stream, int& crop_counter,
                             const PageEvents& events, DoneFn done, const Views* views, double views_s) {
  if (free_slots() < 1) throw Error(fmt::format("page batch: all {} slots are busy", slots_));
  PreparedPage pp = prepare_page(rt_, e_, image, req.prompt, req.opts, views, views_s);
  if (!gen_)
    gen_ =
        std::make_unique<BatchGenerator>(rt_, e_.model.lm, slots_, e_.model.cfg.lm.max_position_embeddings, pp.gen.kv);
  Page pg;
  pg.r = std::move(pp.r);
  if (stream) pg.stream = std::make_unique<PageStream>(e_, image, req, crop_counter, events);
  pg.done = std::move(done);
  pg.prefill_start = Clock::now();
  int64_t id = -1;
  gen_->add(pg.r.prompt_ids, &pp.image_embeds, e_.image_id, pp.gen, [&](int64_t seq, int32_t tok, bool last) {
    id = seq;
    pages_.emplace(seq, std::move(pg));
    on_token(seq, tok, last);
  });
  return id;
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
  // The next page, nullopt at the end; rethrows what next() threw.
  std::optional<BatchPage> get() {
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [&] { return !ready_.empty() || ended_; });
    if (ready_.empty()) {
      if (error_) std::rethrow_exception(error_);
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
    while (more && engine.free_slots() > 0) {
      std::optional<BatchPage> p = reader.get();
      if (!p) {
        more = false;
        break;
      }
      order.push_back(std::make_unique<Entry>());
      Entry* en = order.back().get();
      en->page = std::move(*p);
      if (en->page.error.empty()) {
        try {
          engine.add(
              en->page.image, en->page.req, false, unused_crops, none,
              [en](int64_t, PageOutput& out) {
                en->r = std::move(out.result);
                en->done = true;
              },
              en->page.views.get(), en->page.views_s);
          en->page.views.reset();  // on the device now
          continue;
        } catch (const OutOfDeviceMemory&) {
          throw;
        } catch (const Error& err) {
          en->page.error = err.what();
        }
      }
      en->error = en->page.error;
      en->done = true;
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
