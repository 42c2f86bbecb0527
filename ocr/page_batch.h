// Many pages through one batched generator (model/batch_generate.h). PageBatchEngine is the
// engine: a page is prepared (views, vision) and prefilled into a free slot, then every step()
// decodes one token of every page in flight; a page whose generation ends (EOS, its limit, or
// cancel) frees its slot at once. Each page's ids, text, markdown and JSON are the ones it gets
// alone. dsocr serve's scheduler drives it directly (each page streamed as generated); dsocr ocr
// goes through run_page_batch (pages fetched as slots free up, delivered in order).
// Page timings: vision and prefill are the page's own; decode_s is the wall time from its first
// to its last token, shared with the pages decoded beside it.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/batch_generate.h"
#include "ocr/pipeline.h"

namespace dsocr {

// How many pages at once: at most max_batch, and as many slots of `capacity` tokens of KV cache
// (kv storage) as fit in half of the device memory still free; at least 1.
int page_batch_slots(const Runtime& rt, const OcrEngine& e, int max_batch, int64_t capacity, DType kv);

class PageBatchEngine {
 public:
  // The generator (slots of the model's full context each) is made with the first page, whose
  // options give the KV storage.
  PageBatchEngine(Runtime& rt, OcrEngine& e, int slots) : rt_(rt), e_(e), slots_(slots) {}

  int slots() const { return slots_; }
  int active() const { return gen_ ? gen_->active() : 0; }
  int free_slots() const { return slots_ - active(); }
  int64_t tokens() const { return tokens_; }  // generated so far, all pages

  // Called when a page's generation has ended (its result filled, finish_page done). With a
  // stream (add's `stream`), `out` is the stream's finished output; without, only out.result.
  using DoneFn = std::function<void(int64_t page, PageOutput& out)>;

  // Prepares the page and prefills it into a free slot; returns its id. With stream, a PageStream
  // (events.text as pieces become final, events.token after each id; crops numbered from
  // crop_counter as the markdown reaches them) runs as the ids come; image, req, crop_counter and
  // events must outlive the page. done may be called before add returns (a page whose first token
  // ends it). Error for the page's own failures (its prompt does not fit), OutOfDeviceMemory.
  // views (optional): made ahead (prepare_page's views, views_s).
  int64_t add(const RgbImage& image, const PageRequest& req, bool stream, int& crop_counter, const PageEvents& events,
              DoneFn done, const Views* views = nullptr, double views_s = 0);
  // add for several pages at once (at most free_slots()): their views made (where not given),
  // then their vision in as few passes as the device memory allows (vision_pages; one
  // prepare_pages each), each page prefilled into a slot in turn. out[i]: page i's id, or (id -1)
  // its own failure's message. OutOfDeviceMemory and device failures propagate, none of the
  // call's pages left begun.
  struct Adding {
    const RgbImage* image = nullptr;
    const PageRequest* req = nullptr;
    bool stream = false;
    int* crop_counter = nullptr;
    const PageEvents* events = nullptr;
    DoneFn done;
    const Views* views = nullptr;
    double views_s = 0;
  };
  struct Added {
    int64_t id = -1;
    std::string error;
  };
  std::vector<Added> add_many(std::vector<Adding>& pages);
  // How many of these pages (in order; their views made ahead) one vision pass of add_many should
  // take: as many as fit in half of the device memory free now, at the most bytes per view pixel
  // an earlier pass needed above what was held before it; 1 until a pass has been measured.
  size_t vision_pages(const std::vector<const Views*>& pages) const;
  // One token for every page in flight.
  void step();
  // Stops a page now (its client went away, its deadline passed): its slot is free, done is not
  // called. Unknown ids are ignored.
  void cancel(int64_t page);

 private:
  struct Page {
    PageResult r;
    std::unique_ptr<PageStream> stream;
    DoneFn done;
    std::chrono::steady_clock::time_point prefill_start{}, first{}, last{};
  };
  void on_token(int64_t seq, int32_t tok, bool last);
  // One vision pass (prepare_pages) for these pages, then each prefilled; measures the pass's memory.
  std::vector<Added> add_pass(const std::vector<Adding*>& pages);

  Runtime& rt_;
  OcrEngine& e_;
  const int slots_;
  std::unique_ptr<BatchGenerator> gen_;
  std::map<int64_t, Page> pages_;  // by sequence id
  int64_t tokens_ = 0;
  double vision_bytes_per_px_ = 0;  // measured by add_many (vision_pages)
};

// One page for run_page_batch.
struct BatchPage {
  RgbImage image;
  PageRequest req;
  std::string error;                   // set: the page could not be read (delivered through failed, in order)
  int tag = 0;                         // the caller's (e.g. which input the page is of)
  std::vector<std::string> notes;      // the caller's warnings about this page, passed to events.warning in its turn
  std::shared_ptr<const Views> views;  // made by run_page_batch's reader thread
  double views_s = 0;
};

struct PageBatchEvents {
  // Each page in turn, in the order fetched, with its output (the text as a whole: nothing is
  // streamed).
  std::function<void(const BatchPage&, PageOutput&)> done;
  // A page with an error, or one that could not be prepared (its prompt: Error), in order too.
  std::function<void(const BatchPage&, const std::string& message)> failed;
  std::function<void(const std::string&)> warning;  // e.g. an image region empty after clipping
  // After each decode step: pages in flight, pages delivered, tokens generated so far (all pages).
  std::function<void(int active, int64_t done, int64_t tokens)> progress;
};

// Runs pages fetched from next() (nullopt: no more) with `slots` pages at once; crops are
// numbered from crop_counter in page order. next() runs on a reader thread of its own, which also
// makes each page's views (decoding, PDF rendering and preprocessing overlap the device's work)
// and keeps up to `slots` pages ready; it must not touch what the calling thread uses (report
// through BatchPage::notes). Errors other than a page's own (Error from reading or preparing it)
// propagate: OutOfDeviceMemory, device failures, what next() throws.
void run_page_batch(Runtime& rt, OcrEngine& e, int slots, const std::function<std::optional<BatchPage>()>& next,
                    int& crop_counter, const PageBatchEvents& events);

}  // namespace dsocr
