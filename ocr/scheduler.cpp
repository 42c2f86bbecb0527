#include "ocr/scheduler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

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
    if (open_batch_)
      batch_ = open_batch_();
    else
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
    // Waiting: the queue, less the jobs the worker is about to take into free slots.
    const size_t slots = open_batch_ ? static_cast<size_t>(std::max(batch_.slots, 1)) : 1;
    const size_t free_slots = slots - std::min(slots, active_locked());
    if (queue_.size() >= max_queue_ + free_slots) return Admission::queue_full;
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
  s.active = active_locked();
  s.finished = finished_;
  s.mean_page_s = finished_ ? total_page_s_ / static_cast<double>(finished_) : 0.0;
  return s;
}

int64_t PageScheduler::retry_after_s() const {
  const Stats s = stats();
  const double ahead = static_cast<double>(s.queued) + static_cast<double>(s.active);
  const double slots = open_batch_ ? std::max(batch_.slots, 1) : 1;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(s.mean_page_s * ahead / slots)));
}

void PageScheduler::run() {
  if (open_batch_) return run_batched();
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

bool PageScheduler::ended_before_start(PageJob& job) {
  if (job.cancelled()) {
    job.finish(JobEnd::cancelled, {}, "cancelled before it started");
    return true;
  }
  if (SteadyClock::now() >= job.deadline()) {
    job.finish(JobEnd::expired, {}, "the deadline passed in the queue");
    return true;
  }
  return false;
}

void PageScheduler::run_job(PageJob& job) {
  if (ended_before_start(job)) return;
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

void PageScheduler::run_batched() {
  struct Running {
    std::shared_ptr<PageJob> job;
    PageEvents events;  // referenced by the runner while the page runs
    SteadyClock::time_point t0;
    bool ended = false;
  };
  std::map<int64_t, std::unique_ptr<Running>> running;  // by the runner's page id
  auto finished_page = [&](const Running& r) {
    std::lock_guard<std::mutex> lk(m_);
    ++finished_;
    total_page_s_ += std::chrono::duration<double>(SteadyClock::now() - r.t0).count();
  };
  auto set_active = [&] {
    std::lock_guard<std::mutex> lk(m_);
    active_ = running.size();
    running_ = active_ > 0;
  };
  for (;;) {
    std::vector<std::shared_ptr<PageJob>> starting;
    {
      std::unique_lock<std::mutex> lk(m_);
      if (running.empty()) cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      while (!queue_.empty() && running.size() + starting.size() < static_cast<size_t>(std::max(batch_.slots, 1))) {
        starting.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (running.empty() && starting.empty() && queue_.empty()) break;  // stopping, and every job is done
      active_ = running.size() + starting.size();
      running_ = active_ > 0;
    }
    std::vector<std::unique_ptr<Running>> begin;
    for (auto& job : starting) {
      if (ended_before_start(*job)) continue;
      auto r = std::make_unique<Running>();
      r->job = job;
      r->t0 = SteadyClock::now();
      r->events.text = [j = job.get()](const std::string& piece) { j->add_text(piece); };
      r->events.token = [j = job.get()](int64_t n, int32_t) { j->add_token(n); };
      begin.push_back(std::move(r));
    }
    auto on_done = [&finished_page](Running* rp) {
      return [rp, &finished_page](PageOutput& out) {
        rp->ended = true;
        finished_page(*rp);
        rp->job->finish(JobEnd::done, std::move(out));
      };
    };
    auto failed = [](Running& r, const std::exception& e) {
      if (!r.ended) r.job->finish(JobEnd::failed, {}, e.what(), dynamic_cast<const OutOfDeviceMemory*>(&e) != nullptr);
    };
    if (batch_.start_many && !begin.empty()) {
      std::vector<BatchRunner::Start> starts;
      for (auto& r : begin)
        starts.push_back(BatchRunner::Start{&r->job->image(), &r->job->request(), &r->events, on_done(r.get())});
      try {
        const std::vector<BatchRunner::Started> got = batch_.start_many(starts);
        for (size_t i = 0; i < begin.size(); ++i) {
          if (i >= got.size() || got[i].id < 0)
            begin[i]->job->finish(JobEnd::failed, {}, i < got.size() ? got[i].error : "the page was not started");
          else if (!begin[i]->ended)
            running.emplace(got[i].id, std::move(begin[i]));
        }
      } catch (const std::exception& e) {
        for (auto& r : begin) failed(*r, e);
      }
      begin.clear();
    }
    for (auto& r : begin) {
      Running* rp = r.get();
      try {
        const int64_t id = batch_.start(rp->job->image(), rp->job->request(), rp->events, on_done(rp));
        if (!rp->ended) running.emplace(id, std::move(r));
      } catch (const std::exception& e) {
        failed(*rp, e);
      }
    }
    set_active();
    if (running.empty()) continue;
    try {
      batch_.step();
    } catch (const std::exception& e) {  // the device failed: every page in flight fails with it
      const bool oom = dynamic_cast<const OutOfDeviceMemory*>(&e) != nullptr;
      for (auto& [id, r] : running) {
        batch_.cancel(id);
        if (!r->ended) r->job->finish(JobEnd::failed, {}, e.what(), oom);
      }
      running.clear();
      set_active();
      continue;
    }
    for (auto it = running.begin(); it != running.end();) {
      Running& r = *it->second;
      JobEnd stop = JobEnd::none;
      if (!r.ended && r.job->cancelled()) stop = JobEnd::cancelled;
      if (!r.ended && stop == JobEnd::none && SteadyClock::now() >= r.job->deadline()) stop = JobEnd::timed_out;
      if (stop != JobEnd::none) {
        batch_.cancel(it->first);
        r.job->finish(stop, {}, std::to_string(r.job->tokens()) + " tokens generated");
        r.ended = true;
      }
      it = r.ended ? running.erase(it) : std::next(it);
    }
    set_active();
  }
  batch_ = {};  // the engine and its runtime go on the thread that made them
}

}  // namespace dsocr
