// dsocr serve's page scheduler (ocr/scheduler.h) with a stand-in runner (no model, no device):
// order and streamed news, the queue bound, deadlines in the queue and while running,
// cancellation, failures, a runner that cannot open, and stop() finishing the waiting jobs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
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

// ---- batched (BatchRunner): the stand-in decodes one token of every page begun per step; a
// page of opts.max_new_tokens tokens "t1 t2 ..."; prompt "fail" throws in start, "boom" makes the
// next step throw (the device failing under every page in flight).
namespace {

struct FakeBatch {
  struct Page {
    const PageRequest* req;
    const PageEvents* ev;
    std::function<void(PageOutput&)> done;
    PageOutput out;
    int64_t n = 0;
  };
  std::map<int64_t, Page> pages;
  int64_t next_id = 0;
  size_t most_at_once = 0;
  std::atomic<bool> boom{false};
  std::atomic<bool> hold{false};  // while set, a step waits (the test is still submitting)
  std::chrono::milliseconds step_time{0};
  std::thread::id opened_on;

  BatchRunner open(int slots) {
    opened_on = std::this_thread::get_id();
    BatchRunner r;
    r.slots = slots;
    r.start = [this](const RgbImage&, const PageRequest& req, const PageEvents& ev,
                     std::function<void(PageOutput&)> done) {
      if (req.prompt == "fail") throw Error("the page failed");
      if (req.prompt == "boom") boom = true;
      const int64_t id = next_id++;
      pages[id] = Page{&req, &ev, std::move(done), {}, 0};
      return id;
    };
    r.step = [this] {
      if (boom) throw Error("device lost");
      while (hold) std::this_thread::sleep_for(1ms);
      most_at_once = std::max(most_at_once, pages.size());
      std::this_thread::sleep_for(step_time);
      for (auto it = pages.begin(); it != pages.end();) {
        Page& p = it->second;
        ++p.n;
        const std::string piece = (p.n > 1 ? " t" : "t") + std::to_string(p.n);
        p.out.text += piece;
        p.ev->text(piece);
        p.ev->token(p.n, static_cast<int32_t>(p.n));
        if (p.n == p.req->opts.max_new_tokens) {
          p.done(p.out);
          it = pages.erase(it);
        } else {
          ++it;
        }
      }
    };
    r.cancel = [this](int64_t id) { pages.erase(id); };
    return r;
  }

  // With start_many: the pages that can start begin in one call (their sizes recorded); a page
  // "fail" is that entry's error, "oom" throws OutOfDeviceMemory for the whole call.
  std::vector<size_t> many_calls;
  BatchRunner open_many(int slots) {
    BatchRunner r = open(slots);
    r.start_many = [this, start = r.start](std::vector<BatchRunner::Start>& ps) {
      many_calls.push_back(ps.size());
      for (auto& p : ps)
        if (p.req->prompt == "oom") throw OutOfDeviceMemory("no room for the views");
      std::vector<BatchRunner::Started> out;
      for (auto& p : ps) {
        try {
          out.push_back({start(*p.image, *p.req, *p.events, std::move(p.done)), {}});
        } catch (const Error& e) {
          out.push_back({-1, e.what()});
        }
      }
      return out;
    };
    return r;
  }
};

}  // namespace

TEST(scheduler, batched_jobs_run_together_and_hand_on_their_slots) {
  FakeBatch fb;
  fb.hold = true;  // no step before every job is queued: otherwise the first could finish alone
  PageScheduler s(std::function<BatchRunner()>([&] { return fb.open(3); }), 16);
  s.start();
  EXPECT_NE(fb.opened_on, std::this_thread::get_id());
  std::vector<std::shared_ptr<PageJob>> jobs;
  for (int i = 0; i < 7; ++i) jobs.push_back(job("p" + std::to_string(i), 2 + i % 4));
  for (auto& j : jobs) EXPECT_EQ(s.submit(j), PageScheduler::Admission::accepted);
  fb.hold = false;
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::string want;
    for (int k = 1; k <= 2 + static_cast<int>(i) % 4; ++k) want += (k > 1 ? " t" : "t") + std::to_string(k);
    EXPECT_EQ(run_out(s, *jobs[i]), want) << "job " << i;
    EXPECT_EQ(jobs[i]->end(), JobEnd::done);
    EXPECT_EQ(jobs[i]->output().text, want);
  }
  EXPECT_EQ(fb.most_at_once, 3u);  // three slots, all used
  EXPECT_EQ(s.stats().finished, 7u);
}

TEST(scheduler, batched_queue_bound_counts_free_slots) {
  FakeBatch fb;
  fb.step_time = 5ms;
  PageScheduler s(std::function<BatchRunner()>([&] { return fb.open(2); }), 1);
  s.start();
  auto a = job("a", 100000), b = job("b", 100000), c = job("c", 1), d = job("d", 1);
  ASSERT_EQ(s.submit(a), PageScheduler::Admission::accepted);
  ASSERT_EQ(s.submit(b), PageScheduler::Admission::accepted);
  for (int i = 0; i < 2000 && s.stats().active < 2; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(s.stats().active, 2u);
  EXPECT_EQ(s.submit(c), PageScheduler::Admission::accepted);  // waits: the one queue place
  EXPECT_EQ(s.submit(d), PageScheduler::Admission::queue_full);
  a->cancel();
  run_out(s, *a);
  EXPECT_EQ(a->end(), JobEnd::cancelled);
  EXPECT_EQ(run_out(s, *c), "t1");  // took a's slot
  b->cancel();
  run_out(s, *b);
  EXPECT_EQ(b->end(), JobEnd::cancelled);
}

TEST(scheduler, batched_deadlines_failures_and_a_failing_step) {
  FakeBatch fb;
  fb.step_time = 2ms;
  PageScheduler s(std::function<BatchRunner()>([&] { return fb.open(4); }), 8);
  s.start();
  auto slow = job("slow", 100000, 100ms), f = job("fail", 3), ok = job("ok", 3);
  s.submit(slow);
  s.submit(f);
  s.submit(ok);
  run_out(s, *slow);
  EXPECT_EQ(slow->end(), JobEnd::timed_out);
  EXPECT_GT(slow->tokens(), 0);
  EXPECT_EQ(slow->error(), std::to_string(slow->tokens()) + " tokens generated");
  run_out(s, *f);
  EXPECT_EQ(f->end(), JobEnd::failed);
  EXPECT_EQ(f->error(), "the page failed");
  EXPECT_EQ(run_out(s, *ok), "t1 t2 t3");
  // a step that throws fails every page in flight; the scheduler goes on
  auto x = job("x", 100000), boom = job("boom", 5);
  s.submit(x);
  s.submit(boom);
  run_out(s, *x);
  run_out(s, *boom);
  EXPECT_EQ(x->end(), JobEnd::failed);
  EXPECT_EQ(boom->error(), "device lost");
  fb.boom = false;
  auto after = job("after", 2);
  s.submit(after);
  EXPECT_EQ(run_out(s, *after), "t1 t2");
}

TEST(scheduler, batched_jobs_that_can_start_begin_in_one_call) {
  FakeBatch fb;
  fb.hold = true;  // the first step waits until every job is queued
  PageScheduler s(std::function<BatchRunner()>([&] { return fb.open_many(4); }), 16);
  s.start();
  auto a = job("a", 2), f = job("fail", 2), b = job("b", 3), c = job("c", 1), d = job("d", 2), e = job("e", 2);
  for (auto& j : {a, f, b, c, d, e}) EXPECT_EQ(s.submit(j), PageScheduler::Admission::accepted);
  fb.hold = false;
  EXPECT_EQ(run_out(s, *a), "t1 t2");
  EXPECT_EQ(run_out(s, *b), "t1 t2 t3");
  EXPECT_EQ(run_out(s, *c), "t1");
  EXPECT_EQ(run_out(s, *d), "t1 t2");
  EXPECT_EQ(run_out(s, *e), "t1 t2");
  run_out(s, *f);
  EXPECT_EQ(f->end(), JobEnd::failed);
  EXPECT_EQ(f->error(), "the page failed");  // its own failure; the others of its call went on
  ASSERT_FALSE(fb.many_calls.empty());
  EXPECT_GT(*std::max_element(fb.many_calls.begin(), fb.many_calls.end()), 1u);  // begun together
  size_t started = 0;
  for (size_t n : fb.many_calls) started += n;
  EXPECT_EQ(started, 6u);  // each job through start_many once
  // what start_many throws fails every job of the call, out of memory as such; the next ones run
  auto x = job("x", 2), oom = job("oom", 2);
  fb.hold = true;
  s.submit(x);
  s.submit(oom);
  fb.hold = false;
  run_out(s, *x);
  run_out(s, *oom);
  EXPECT_EQ(oom->end(), JobEnd::failed);
  EXPECT_EQ(oom->error(), "no room for the views");
  EXPECT_TRUE(oom->out_of_memory());
  if (x->end() == JobEnd::failed)
    EXPECT_EQ(x->error(), "no room for the views");  // in the same call
  else
    EXPECT_EQ(x->output().text, "t1 t2");  // or begun before it
  auto after = job("after", 2);
  s.submit(after);
  EXPECT_EQ(run_out(s, *after), "t1 t2");
}
