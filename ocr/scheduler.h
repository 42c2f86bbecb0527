// The page scheduler of `dsocr serve`: a bounded queue of page jobs and one worker thread that
// owns the OpenCL runtime and the engine (both created on it by the `open` function) and runs one
// page at a time through a PageRunner (run_page on a loaded engine). The worker is the thread
// that calls open() and run() (dsocr serve: the main thread, while HTTP runs on others), or a
// thread of the scheduler's own (start()).
//
//   HTTP threads --submit--> [queue, at most max_queue waiting] --> worker: runner(page) --> job events
//        ^                                                                                     |
//        +------------------------------- await(job) ------------------------------------------+
//
// With a BatchRunner instead (dsocr serve's: ocr/page_batch.h), the worker takes up to `slots`
// jobs from the same queue and decodes them together (continuous batching): a waiting job starts
// as soon as a slot frees up, between two decode steps, and each job's tokens, text and end are
// reported through the same PageJob calls. Nothing here is global: a process may run several
// schedulers.
//
// A job's deadline covers waiting and running: a job still queued at its deadline ends as
// `expired` without running (await withdraws it at once); a running job is checked after each
// generated token (batched: after each decode step) and ends as `timed_out` (the vision encoder
// and the prefill are not interrupted). A cancelled job (its client went away) ends likewise as
// `cancelled`.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ocr/pipeline.h"

namespace dsocr {

using SteadyClock = std::chrono::steady_clock;

// Runs one page on a loaded engine (e.g. run_page); called on the worker thread only.
using PageRunner = std::function<PageOutput(const RgbImage&, const PageRequest&, const PageEvents&)>;

// Runs several pages at once on a loaded engine (e.g. PageBatchEngine); called on the worker
// thread only. start: prepares and begins a page, returns its id; its events (streamed text,
// token counts) must not throw; done(out) is called when the page ends, possibly inside start or
// step. step: one token for every page begun. cancel: stops a page (done is not called).
// start_many (optional; used instead of start when set, and then start may be left unset: dsocr
// serve's runner has start_many only): the pages that can start now, begun
// together (dsocr serve: their vision in one pass), each entry its id or (id < 0) its own
// failure's message; what it throws fails every page of the call (none of them left begun).
struct BatchRunner {
  int slots = 1;
  std::function<int64_t(const RgbImage&, const PageRequest&, const PageEvents&, std::function<void(PageOutput&)> done)>
      start;
  struct Start {
    const RgbImage* image = nullptr;
    const PageRequest* req = nullptr;
    const PageEvents* events = nullptr;
    std::function<void(PageOutput&)> done;
  };
  struct Started {
    int64_t id = -1;
    std::string error;
  };
  std::function<std::vector<Started>(std::vector<Start>&)> start_many;
  std::function<void()> step;
  std::function<void(int64_t)> cancel;
};

enum class JobEnd {
  none,       // not ended yet
  done,       // output() holds the page
  expired,    // the deadline passed while it waited in the queue: not run
  timed_out,  // the deadline passed while it ran: generation stopped
  cancelled,  // cancel() was called: not run, or generation stopped
  failed,     // the runner threw: error()
};
const char* job_end_name(JobEnd e);

// One page to run and what happened to it. The front end reads it (await, then output()); the
// scheduler's worker writes it. Thread-safe.
class PageJob {
 public:
  PageJob(RgbImage image, PageRequest req, SteadyClock::time_point deadline)
      : image_(std::move(image)), req_(std::move(req)), deadline_(deadline) {}
  const RgbImage& image() const { return image_; }
  const PageRequest& request() const { return req_; }
  SteadyClock::time_point deadline() const { return deadline_; }

  // What happened since the previous take(): text pieces as they became final, the number of
  // generated tokens so far, whether it ended.
  struct News {
    std::string text;
    int64_t tokens = 0;
    bool ended = false;
  };
  News take();
  bool ended() const;
  int64_t tokens() const;  // generated so far
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  // Valid once ended.
  JobEnd end() const;
  const PageOutput& output() const { return out_; }  // JobEnd::done
  const std::string& error() const { return error_; }
  bool out_of_memory() const { return oom_; }  // failed with OutOfDeviceMemory

  // The worker's side.
  void add_token(int64_t n);
  void add_text(const std::string& piece);
  void finish(JobEnd how, PageOutput out = {}, std::string error = {}, bool oom = false);

 private:
  friend class PageScheduler;
  bool changed_locked() const {
    return !text_.empty() || tokens_ != taken_tokens_ || (end_ != JobEnd::none && !taken_end_);
  }
  News take_locked();
  RgbImage image_;
  PageRequest req_;
  SteadyClock::time_point deadline_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::string text_;  // not taken yet
  int64_t tokens_ = 0, taken_tokens_ = 0;
  JobEnd end_ = JobEnd::none;
  bool taken_end_ = false;
  PageOutput out_;
  std::string error_;
  bool oom_ = false;
};

class PageScheduler {
 public:
  // open: creates the runner on the worker thread (opening the device and loading the model
  // there); max_queue: how many jobs may wait besides the one running.
  PageScheduler(std::function<PageRunner()> open, size_t max_queue) : open_(std::move(open)), max_queue_(max_queue) {}
  // Batched: open creates a BatchRunner on the worker thread; max_queue as above (besides the
  // jobs running).
  PageScheduler(std::function<BatchRunner()> open, size_t max_queue)
      : open_batch_(std::move(open)), max_queue_(max_queue) {}
  ~PageScheduler();
  PageScheduler(const PageScheduler&) = delete;
  PageScheduler& operator=(const PageScheduler&) = delete;

  // Creates the runner on the calling thread, which becomes the worker: it must call run() next.
  // Rethrows what open threw.
  void open();
  // The worker loop on the thread that called open(): runs the jobs until stop() is called and
  // none waits, then releases the runner. dsocr serve runs it on the main thread: an OpenCL
  // driver's LLVM may give the thread that builds programs a signal stack of its own, which
  // AddressSanitizer fails to release when such a thread ends before the process.
  void run();
  // open() and run() on a thread of the scheduler's own; returns once the runner is open
  // (rethrows what open threw).
  void start();

  enum class Admission { accepted, queue_full, stopping };
  Admission submit(const std::shared_ptr<PageJob>& job);

  // Waits until the job has news or `until` passes, and takes the news. Past the job's deadline a
  // job that still waits in the queue is withdrawn (it ends as expired); a running one is stopped
  // by the worker at its next token.
  PageJob::News await(PageJob& job, SteadyClock::time_point until);

  // Takes the job out of the queue if it is still waiting there (it ends as `how`); false when
  // it is running or ended.
  bool withdraw(PageJob& job, JobEnd how);

  // No more submissions; the waiting and the running jobs finish (run() returns then); joins the
  // worker that start() made. Idempotent.
  void stop();

  struct Stats {
    size_t queued = 0;  // waiting
    bool running = false;
    size_t active = 0;  // jobs running (batched: up to the runner's slots; else 0 or 1)
    uint64_t finished = 0;
    double mean_page_s = 0;  // of the pages run so far (0 before the first)
  };
  Stats stats() const;
  // Seconds a client should wait before trying again when the queue is full: the mean page time
  // times the pages ahead (batched: divided by the slots), at least 1.
  int64_t retry_after_s() const;

 private:
  void run_job(PageJob& job);
  void run_batched();
  // Ends a job that was cancelled or is past its deadline before it started; true when it did.
  static bool ended_before_start(PageJob& job);
  size_t active_locked() const { return open_batch_ ? active_ : (running_ ? 1 : 0); }  // m_ held

  std::function<PageRunner()> open_;
  std::function<BatchRunner()> open_batch_;
  BatchRunner batch_;
  const size_t max_queue_;
  PageRunner runner_;
  std::thread worker_;
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<PageJob>> queue_;
  bool stopping_ = false, opened_ = false, running_ = false;
  size_t active_ = 0;
  std::exception_ptr open_error_;
  uint64_t finished_ = 0;
  double total_page_s_ = 0;
};

}  // namespace dsocr
