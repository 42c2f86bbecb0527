#include "ocr/scheduler.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace dsocr {

const char* job_end_name(JobEnd e) {
  switch (e) {
    case JobEnd::none:
      return "none";
    case JobEnd::done:
      return "done";
    case JobEnd::expired:
      return "expired";
    case JobEnd::timed_out:
      return "timed_out";
    case JobEnd::cancelled:
      return "cancelled";
    case JobEnd::failed:
      return "failed";
  }
  return "?";
}

PageJob::News PageJob::take() {
  std::lock_guard<std::mutex> lk(m_);
  return take_locked();
}

PageJob::News PageJob::take_locked() {
  News n;
  n.text.swap(text_);
  n.tokens = taken_tokens_ = tokens_;
  n.ended = end_ != JobEnd::none;
  taken_end_ = n.ended;
  return n;
}

bool PageJob::ended() const {
  std::lock_guard<std::mutex> lk(m_);
  return end_ != JobEnd::none;
}

int64_t PageJob::tokens() const {
  std::lock_guard<std::mutex> lk(m_);
  return tokens_;
}

JobEnd PageJob::end() const {
  std::lock_guard<std::mutex> lk(m_);
  return end_;
}

void PageJob::add_token(int64_t n) {
  {
    std::lock_guard<std::mutex> lk(m_);
    tokens_ = n;
  }
  cv_.notify_all();
}

void PageJob::add_text(const std::string& piece) {
  {
    std::lock_guard<std::mutex> lk(m_);
    text_ += piece;
  }
  cv_.notify_all();
}

void PageJob::finish(JobEnd how, PageOutput out, std::string error, bool oom) {
  {
    std::lock_guard<std::mutex> lk(m_);
    if (end_ != JobEnd::none) return;  // ended once only
    out_ = std::move(out);
    error_ = std::move(error);
    oom_ = oom;
    end_ = how;
  }
  cv_.notify_all();
}

PageScheduler::~PageScheduler() { stop(); }

void PageScheduler::open() {
  try {
    runner_ = open_();
  } catch (...) {
    std::lock_guard<std::mutex> lk(m_);
    open_error_ = std::current_exception();
    cv_.notify_all();
    throw;
  }
  {
    std::lock_guard<std::mutex> lk(m_);
    opened_ = true;
  }
  cv_.notify_all();
}

void PageScheduler::start() {
  std::unique_lock<std::mutex> lk(m_);
  if (worker_.joinable()) return;
  worker_ = std::thread([this] {
    try {
      open();
    } catch (...) {
      return;  // start() rethrows it
    }
    run();
  });
  cv_.wait(lk, [&] { return opened_ || open_error_; });
  if (open_error_) {
    lk.unlock();
    worker_.join();
    std::rethrow_exception(open_error_);
  }
}

PageScheduler::Admission PageScheduler::submit(const std::shared_ptr<PageJob>& job) {
  {
    std::lock_guard<std::mutex> lk(m_);
    if (stopping_ || !opened_) return Admission::stopping;
    // Waiting: the queue, less the job the idle worker is about to take.
    if (queue_.size() >= max_queue_ + (running_ ? 0 : 1)) return Admission::queue_full;
    queue_.push_back(job);
  }
  cv_.notify_all();
  return Admission::accepted;
}

PageJob::News PageScheduler::await(PageJob& job, SteadyClock::time_point until) {
  bool withdrawn = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(job.m_);
      const auto wake = withdrawn ? until : std::min(until, job.deadline_);
      job.cv_.wait_until(lk, wake, [&] { return job.changed_locked(); });
      if (job.changed_locked() || withdrawn || SteadyClock::now() >= until) return job.take_locked();
    }
    // Past the deadline: a job still in the queue ends now; a running one stops at its next token.
    withdraw(job, JobEnd::expired);
    withdrawn = true;
  }
}

bool PageScheduler::withdraw(PageJob& job, JobEnd how) {
  std::shared_ptr<PageJob> taken;
  {
    std::lock_guard<std::mutex> lk(m_);
    auto it = std::find_if(queue_.begin(), queue_.end(), [&](const auto& j) { return j.get() == &job; });
    if (it == queue_.end()) return false;
    taken = *it;
    queue_.erase(it);
  }
  taken->finish(how);
  return true;
}

void PageScheduler::stop() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

PageScheduler::Stats PageScheduler::stats() const {
  std::lock_guard<std::mutex> lk(m_);
  Stats s;
  s.queued = queue_.size();
  s.running = running_;
  s.finished = finished_;
  s.mean_page_s = finished_ ? total_page_s_ / static_cast<double>(finished_) : 0.0;
  return s;
}

int64_t PageScheduler::retry_after_s() const {
  const Stats s = stats();
  const double ahead = static_cast<double>(s.queued) + (s.running ? 1.0 : 0.0);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(s.mean_page_s * ahead)));
}

void PageScheduler::run() {
  for (;;) {
    std::shared_ptr<PageJob> job;
    {
      std::unique_lock<std::mutex> lk(m_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and every waiting job is done
      job = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
    }
    const auto t0 = SteadyClock::now();
    const bool ran = !job->cancelled() && t0 < job->deadline();
    run_job(*job);
    std::lock_guard<std::mutex> lk(m_);
    running_ = false;
    if (ran) {
      ++finished_;
      total_page_s_ += std::chrono::duration<double>(SteadyClock::now() - t0).count();
    }
  }
  runner_ = nullptr;  // the engine and its runtime go on the thread that made them
}

namespace {
struct StopPage {  // thrown from the token callback to end a page early (not a std::exception)
  JobEnd how;
};
}  // namespace

void PageScheduler::run_job(PageJob& job) {
  if (job.cancelled()) return job.finish(JobEnd::cancelled, {}, "cancelled before it started");
  if (SteadyClock::now() >= job.deadline()) return job.finish(JobEnd::expired, {}, "the deadline passed in the queue");
  PageEvents ev;
  ev.text = [&](const std::string& piece) { job.add_text(piece); };
  ev.token = [&](int64_t n, int32_t) {
    job.add_token(n);
    if (job.cancelled()) throw StopPage{JobEnd::cancelled};
    if (SteadyClock::now() >= job.deadline()) throw StopPage{JobEnd::timed_out};
  };
  try {
    job.finish(JobEnd::done, runner_(job.image(), job.request(), ev));
  } catch (const StopPage& s) {
    job.finish(s.how, {}, std::to_string(job.tokens()) + " tokens generated");
  } catch (const OutOfDeviceMemory& e) {
    job.finish(JobEnd::failed, {}, e.what(), true);
  } catch (const std::exception& e) {
    job.finish(JobEnd::failed, {}, e.what());
  }
}

}  // namespace dsocr
