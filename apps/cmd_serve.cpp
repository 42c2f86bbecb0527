// dsocr serve: an OpenAI-compatible HTTP server over the page pipeline. The command line and the
// engine here; the HTTP front end in apps/serve_http.cpp, the queue and the worker in
// ocr/scheduler.h, the request and answer formats in ocr/openai_api.h.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <thread>

#include "apps/commands.h"
#include "apps/ocr_args.h"
#include "apps/runtime_setup.h"
#include "apps/serve_http.h"
#include "model/hf_cache.h"
#include "ocr/page_batch.h"
#include "ocr/pipeline.h"
#include "ocr/scheduler.h"

namespace dsocr {
namespace {

const char* const kServeUsage =
    R"(usage: dsocr serve [options]

An OpenAI-compatible HTTP server. POST /v1/chat/completions reads the one image of a request (a
base64 data: URL) and answers with the model's text as generated, in one chat.completion object
or streamed as server-sent events ("stream": true). GET /v1/models lists the model (its id is
--model as given), GET /health answers {"status": "ok", ...}. Up to --max-batch requests are
decoded together (continuous batching: a waiting request starts as soon as one ends); the others
wait in a bounded queue.

server:
  --host H              address to listen on (default 127.0.0.1: this machine only)
  --port P              port (default 8000; 0: a free port, shown in the "listening on" line)
  --api-key KEY         requests must carry "Authorization: Bearer KEY" (default $DSOCR_API_KEY;
                        without either there is no check); GET /health needs no key
  --max-batch N         requests decoded together, 1..256 (default 8; fewer when their KV caches
                        would take more than half of the free device memory). Each answer is the
                        one its request gets alone (from 16 at once on a GPU within rounding of
                        its logits: DSOCR_BATCH_GEMM). 1: one request at a time
  --max-queue N         requests that may wait besides those running (default 16); more get 503
                        with a Retry-After header
  --max-body-mb N       largest request body in MiB, after any Content-Encoding (default 50): 413
  --max-image-pixels N  largest image, width x height (default 50000000): 413
  --timeout-s S         a request's time limit from its arrival, waiting included (default 600):
                        a request still waiting then gets 504 without running; a running one stops
                        generating at its next token and gets 504 (a stream that has begun ends
                        with an error event instead)
  --quiet, -q           no per-request lines on stderr

model, device, views, generation (as dsocr ocr; see dsocr ocr --help):
  --model M  --device SPEC  --weights S  --kv S
  --mode M  --max-tiles N  --no-crop    the views of every request (default gundam, or the
                                        mode the checkpoint's config.json names)
  --task T  --ref TEXT  --prompt TEXT   the prompt of a request without text (default: markdown)
  --max-new-tokens N                    the default and the largest max_tokens (default 8192)
  --ngram N  --ngram-window W           the no-repeat n-gram rule (defaults 30, 90)

A request's text is its prompt: text holding <image> is used as it is, other text gets
"<image>\n" in front (the official prompts: "Free OCR.", "<|grounding|>OCR this image.", ...).
Decoding is greedy (temperature and the other sampling parameters are ignored).

Prints "listening on http://HOST:PORT" on stderr when the model is loaded and the port listens.
SIGINT or SIGTERM: no new connections; the requests in flight, running or waiting, are answered.
Exit status: 0 stopped by SIGINT or SIGTERM; 1 the model, the device or the port failed; 2 usage
(or a dsocr built without cpp-httplib).
)";

ServeSettings parse_serve(Args& a) {
  ServeSettings s;
  s.host = a.value("--host", "127.0.0.1");
  s.port = static_cast<int>(a.integer("--port", 8000, 0, 65535));
  const char* env_key = std::getenv("DSOCR_API_KEY");
  const bool key_given = a.given("--api-key");
  s.api_key = a.value("--api-key", env_key ? env_key : "");
  if (key_given && s.api_key.empty()) throw UsageError("--api-key needs a non-empty key");
  s.max_queue = static_cast<size_t>(a.integer("--max-queue", 16, 0, 100000));
  s.max_batch = static_cast<int>(a.integer("--max-batch", 8, 1, 256));
  s.max_body_bytes = a.integer("--max-body-mb", 50, 1, 4096) << 20;
  s.max_image_pixels = a.integer("--max-image-pixels", 50'000'000, 1, int64_t{1} << 28);
  s.timeout_s = a.number("--timeout-s", 600, 0.1, 7 * 86400);
  s.quiet = a.flag("--quiet") | a.flag("-q");
  s.model = parse_model_settings(a);
  s.model_id = s.model.model_spec;
  const std::vector<std::string> rest = a.positional();
  if (!rest.empty()) throw UsageError(fmt::format("unexpected argument '{}': dsocr serve takes options only", rest[0]));
  if (s.host.empty()) throw UsageError("--host needs an address");
  return s;
}

// The device and the model, opened and loaded on the scheduler's worker thread and held by the
// runner made from them; with several requests at once, the batch engine on top.
struct ServeEngine {
  std::unique_ptr<Runtime> rt;
  std::unique_ptr<OcrEngine> engine;
  std::unique_ptr<PageBatchEngine> batch;  // declared last: destroyed first, the runtime last
  int crops = 0;                           // text output writes no crops
};

std::shared_ptr<ServeEngine> load_serve_engine(const ServeSettings& s, const ModelLocation& loc, ServeLog& log) {
  auto e = std::make_shared<ServeEngine>();
  const auto t0 = std::chrono::steady_clock::now();
  e->rt = open_runtime(s.model.ro);
  log.info(fmt::format("dsocr: device {}", e->rt->device().label()));
  log.info(fmt::format("dsocr: loading {}", loc.origin));
  e->engine = std::make_unique<OcrEngine>(load_engine(*e->rt, loc.dir, s.model.storage));
  for (const std::string& n : e->engine->model.load_notes) log.info("dsocr: " + n);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string at_once = "one request at a time (--max-batch 1)";
  if (s.max_batch > 1) {
    const int64_t ctx = e->engine->model.cfg.lm.max_position_embeddings;
    const int slots = page_batch_slots(*e->rt, *e->engine, s.max_batch, ctx, s.model.opts.kv);
    e->batch = std::make_unique<PageBatchEngine>(*e->rt, *e->engine, slots);
    at_once = fmt::format("up to {} requests at once (--max-batch {})", slots, s.max_batch);
  }
  log.info(fmt::format("dsocr: loaded in {:.1f} s, {} weights ({}); mode {}, {}, {} queue places, timeout {:g} s",
                       load_s, weight_storage_name(e->engine->model.storage), e->rt->memory_summary(),
                       s.model.opts.mode, at_once, s.max_queue, s.timeout_s));
  return e;
}

// One request at a time: run_page on the loaded engine.
PageRunner open_engine(const ServeSettings& s, const ModelLocation& loc, ServeLog& log) {
  std::shared_ptr<ServeEngine> e = load_serve_engine(s, loc, log);
  return [e](const RgbImage& image, const PageRequest& req, const PageEvents& events) {
    return run_page(*e->rt, *e->engine, image, req, e->crops, events);
  };
}

// Several requests at once: the PageBatchEngine.
BatchRunner open_batch_engine(const ServeSettings& s, const ModelLocation& loc, ServeLog& log) {
  std::shared_ptr<ServeEngine> e = load_serve_engine(s, loc, log);
  BatchRunner r;
  r.slots = e->batch->slots();
  r.start_many = [e](std::vector<BatchRunner::Start>& pages) {  // their vision in as few passes as fit
    std::vector<PageBatchEngine::Adding> adding;
    for (BatchRunner::Start& p : pages)
      adding.push_back(PageBatchEngine::Adding{p.image, p.req, true, &e->crops, p.events,
                                               [done = std::move(p.done)](int64_t, PageOutput& out) { done(out); }});
    std::vector<BatchRunner::Started> out;
    for (PageBatchEngine::Added& a : e->batch->add_many(adding)) out.push_back({a.id, std::move(a.error)});
    return out;
  };
  r.step = [e] { e->batch->step(); };
  r.cancel = [e](int64_t page) { e->batch->cancel(page); };
  return r;
}

}  // namespace

int cmd_serve(const std::vector<std::string>& argv) {
  Args a(argv);
  if (a.help()) {
    std::fputs(kServeUsage, stdout);
    return 0;
  }
  if (!http_supported())
    throw UsageError(
        "this dsocr was built without HTTP support: cpp-httplib was not found when it was configured "
        "(install libcpp-httplib-dev on Debian and Ubuntu, cpp-httplib-devel on Fedora; then configure and build "
        "again)");
  const ServeSettings s = parse_serve(a);
  block_stop_signals();  // before any thread starts: the signals are waited for in serve_http
  ServeLog log(s.quiet);
  if (!s.model.model_note.empty()) log.info("dsocr: " + s.model.model_note);
  const ModelLocation loc = resolve_model(s.model.model_spec);  // a missing model fails before anything starts
  if (!s.model.from_checkpoint.empty())
    log.info(fmt::format("dsocr: {} (the checkpoint's config.json)", s.model.from_checkpoint));
  if (s.host != "127.0.0.1" && s.host != "localhost" && s.host != "::1" && s.api_key.empty())
    log.line(fmt::format("dsocr serve: warning: listening on {} without --api-key: anyone who reaches it may use it",
                         s.host));
  std::unique_ptr<PageScheduler> sched_ptr =
      s.max_batch > 1 ? std::make_unique<PageScheduler>(
                            std::function<BatchRunner()>([&] { return open_batch_engine(s, loc, log); }), s.max_queue)
                      : std::make_unique<PageScheduler>(
                            std::function<PageRunner()>([&] { return open_engine(s, loc, log); }), s.max_queue);
  PageScheduler& sched = *sched_ptr;
  HttpServer http(s, sched, log);  // the port first: one in use fails before the model loads
  sched.open();                    // the model loads on this thread, which runs the pages (scheduler.h)
  std::exception_ptr http_error;
  std::thread front([&] {  // HTTP until SIGINT or SIGTERM and the requests in flight are answered
    try {
      http.serve();
    } catch (...) {
      http_error = std::current_exception();
    }
    sched.stop();
  });
  sched.run();
  front.join();
  if (http_error) std::rethrow_exception(http_error);
  return 0;
}

}  // namespace dsocr
