// dsocr serve's page scheduler (ocr/scheduler.h) with a stand-in runner (no model, no device):
// order and streamed news, the queue bound, deadlines in the queue and while running,
// cancellation, failures, a runner that cannot open, and stop() finishing the waiting jobs.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "ocr/scheduler.h"
#include "runtime/error.h"

using namespace dsocr;
using namespace std::chrono_literals;

namespace {

// The stand-in runner: a page of opts.max_new_tokens tokens, "t1 t2 ...", one every `step`;
// prompt "hold" first waits until release(); "fail" and "oom" throw.
struct FakeEngine {
  std::mutex m;
  std::condition_variable cv;
  bool released = false;
  std::chrono::milliseconds step{0};
  std::thread::id opened_on, ran_on;

  void release() {
    std::lock_guard<std::mutex> lk(m);
    released = true;
    cv.notify_all();
  }
  PageRunner open() {
    opened_on = std::this_thread::get_id();
    return [this](const RgbImage&, const PageRequest& req, const PageEvents& ev) {
      ran_on = std::this_thread::get_id();
      if (req.prompt == "hold") {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return released; });
      }
      if (req.prompt == "fail") throw Error("the page failed");
      if (req.prompt == "oom") throw OutOfDeviceMemory("out of device memory: 1 GiB asked");
      PageOutput out;
      for (int64_t i = 1; i <= req.opts.max_new_tokens; ++i) {
        std::this_thread::sleep_for(step);
        const std::string piece = (i > 1 ? " t" : "t") + std::to_string(i);
        out.text += piece;
        out.result.generated.push_back(static_cast<int32_t>(i));
        if (ev.text) ev.text(piece);
        if (ev.token) ev.token(i, static_cast<int32_t>(i));
      }
      return out;
    };
  }
};

std::shared_ptr<PageJob> job(const std::string& prompt, int64_t tokens, std::chrono::milliseconds timeout = 60s) {
  PageRequest req;
  req.prompt = prompt;
  req.opts.max_new_tokens = tokens;
  return std::make_shared<PageJob>(RgbImage{}, req, SteadyClock::now() + timeout);
}

// Waits for the end, collecting the streamed text.
std::string run_out(PageScheduler& s, PageJob& j) {
  std::string text;
  for (PageJob::News n; !n.ended;) {
    n = s.await(j, SteadyClock::now() + 10s);
    text += n.text;
  }
  return text;
}

void wait_running(PageScheduler& s) {
  for (int i = 0; i < 2000 && !s.stats().running; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(s.stats().running);
}

}  // namespace

TEST(scheduler, runs_pages_in_order_on_its_worker_and_streams_their_text) {
  FakeEngine fe;
  PageScheduler s([&] { return fe.open(); }, 4);
  s.start();
  std::vector<std::shared_ptr<PageJob>> jobs = {job("a", 3), job("b", 1), job("c", 5)};
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), PageScheduler::Admission::accepted);
  EXPECT_EQ(run_out(s, *jobs[0]), "t1 t2 t3");
  EXPECT_EQ(run_out(s, *jobs[1]), "t1");
  EXPECT_EQ(run_out(s, *jobs[2]), "t1 t2 t3 t4 t5");
  for (auto& j : jobs) EXPECT_EQ(j->end(), JobEnd::done);
  EXPECT_EQ(jobs[2]->output().text, "t1 t2 t3 t4 t5");
  EXPECT_EQ(jobs[2]->tokens(), 5);
  s.stop();
  EXPECT_NE(fe.opened_on, std::this_thread::get_id());
  EXPECT_EQ(fe.opened_on, fe.ran_on);
  EXPECT_EQ(s.stats().finished, 3u);
}

TEST(scheduler, runs_on_the_thread_that_opened_it) {  // as dsocr serve does, on its main thread
  FakeEngine fe;
  PageScheduler s([&] { return fe.open(); }, 4);
  s.open();
  auto a = job("a", 2), b = job("b", 1);
  std::thread front([&] {
    s.submit(a);
    s.submit(b);
    run_out(s, *b);
    s.stop();
  });
  s.run();  // returns once stop() was called and nothing waits
  front.join();
  EXPECT_EQ(fe.opened_on, std::this_thread::get_id());
  EXPECT_EQ(fe.ran_on, std::this_thread::get_id());
  EXPECT_EQ(a->output().text, "t1 t2");
  EXPECT_EQ(b->end(), JobEnd::done);
}

TEST(scheduler, the_queue_is_bounded) {
  FakeEngine fe;
  PageScheduler s([&] { return fe.open(); }, 1);
  s.start();
  auto a = job("hold", 1), b = job("b", 1), c = job("c", 1);
  ASSERT_EQ(s.submit(a), PageScheduler::Admission::accepted);
  wait_running(s);
  EXPECT_EQ(s.submit(b), PageScheduler::Admission::accepted);  // waits
  EXPECT_EQ(s.stats().queued, 1u);
  EXPECT_EQ(s.submit(c), PageScheduler::Admission::queue_full);
  EXPECT_GE(s.retry_after_s(), 1);
  fe.release();
  run_out(s, *a);
  run_out(s, *b);
  EXPECT_EQ(b->end(), JobEnd::done);
  EXPECT_EQ(s.submit(c), PageScheduler::Admission::accepted);  // room again
  run_out(s, *c);

  PageScheduler none([&] { return fe.open(); }, 0);  // --max-queue 0: only when idle
  none.start();
  auto d = job("d", 1);
  EXPECT_EQ(none.submit(d), PageScheduler::Admission::accepted);
  run_out(none, *d);
  EXPECT_EQ(d->end(), JobEnd::done);
}

TEST(scheduler, a_deadline_passed_in_the_queue_ends_the_job_at_once) {
  FakeEngine fe;
  PageScheduler s([&] { return fe.open(); }, 4);
  s.start();
  auto a = job("hold", 1), b = job("b", 1, 50ms);
  s.submit(a);
  wait_running(s);
  s.submit(b);
  const auto t0 = SteadyClock::now();
  run_out(s, *b);  // not after a: a holds until released
  EXPECT_EQ(b->end(), JobEnd::expired);
  EXPECT_LT(SteadyClock::now() - t0, 5s);
  EXPECT_EQ(s.stats().queued, 0u);
  fe.release();
  run_out(s, *a);
  EXPECT_EQ(a->end(), JobEnd::done);
}

TEST(scheduler, a_running_job_stops_at_its_deadline_or_when_cancelled) {
  FakeEngine fe;
  fe.step = 2ms;
  PageScheduler s([&] { return fe.open(); }, 4);
  s.start();
  auto slow = job("slow", 100000, 100ms);
  s.submit(slow);
  const std::string text = run_out(s, *slow);
  EXPECT_EQ(slow->end(), JobEnd::timed_out);
  EXPECT_GT(slow->tokens(), 0);
  EXPECT_LT(slow->tokens(), 100000);
  EXPECT_EQ(text.substr(0, 5), "t1 t2");  // the text streamed before it stopped
  EXPECT_EQ(slow->error(), std::to_string(slow->tokens()) + " tokens generated");

  auto other = job("other", 100000);
  s.submit(other);
  while (s.await(*other, SteadyClock::now() + 1s).tokens < 3) {
  }
  other->cancel();
  run_out(s, *other);
  EXPECT_EQ(other->end(), JobEnd::cancelled);
  auto next = job("next", 2);  // the worker goes on
  s.submit(next);
  EXPECT_EQ(run_out(s, *next), "t1 t2");
}

TEST(scheduler, failures_end_their_job_only) {
  FakeEngine fe;
  PageScheduler s([&] { return fe.open(); }, 4);
  s.start();
  auto f = job("fail", 1), o = job("oom", 1), ok = job("ok", 1);
  s.submit(f);
  s.submit(o);
  s.submit(ok);
  run_out(s, *f);
  run_out(s, *o);
  run_out(s, *ok);
  EXPECT_EQ(f->end(), JobEnd::failed);
  EXPECT_EQ(f->error(), "the page failed");
  EXPECT_FALSE(f->out_of_memory());
  EXPECT_EQ(o->end(), JobEnd::failed);
  EXPECT_TRUE(o->out_of_memory());
  EXPECT_EQ(ok->end(), JobEnd::done);
}

TEST(scheduler, a_runner_that_cannot_open_fails_start) {
  PageScheduler s([]() -> PageRunner { throw Error("no device"); }, 4);
  try {
    s.start();
    FAIL() << "start() did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "no device");
  }
  EXPECT_EQ(s.submit(job("a", 1)), PageScheduler::Admission::stopping);
}

TEST(scheduler, stop_finishes_the_running_and_the_waiting_jobs) {
  FakeEngine fe;
  PageScheduler s([&] { return fe.open(); }, 4);
  s.start();
  auto a = job("hold", 2), b = job("b", 3);
  s.submit(a);
  wait_running(s);
  s.submit(b);
  auto stopped = std::async(std::launch::async, [&] { s.stop(); });
  PageScheduler::Admission late = PageScheduler::Admission::accepted;
  for (int i = 0; i < 2000 && late != PageScheduler::Admission::stopping; ++i, std::this_thread::sleep_for(1ms))
    late = s.submit(job("late", 1));  // accepted until stop() began: those run too
  EXPECT_EQ(late, PageScheduler::Admission::stopping);
  fe.release();
  stopped.get();
  EXPECT_EQ(a->end(), JobEnd::done);
  EXPECT_EQ(b->end(), JobEnd::done);
  EXPECT_EQ(b->output().text, "t1 t2 t3");
}
