// dsocr serve's HTTP front end (cpp-httplib): the OpenAI-compatible routes, authentication,
// limits, JSON errors and server-sent events, over a PageScheduler that runs the pages. The
// request and answer formats are in ocr/openai_api.h, the queue and the worker in
// ocr/scheduler.h. This header does not include cpp-httplib: dsocr builds without it, and then
// http_supported() is false and HttpServer throws.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "apps/ocr_args.h"
#include "ocr/scheduler.h"

namespace dsocr {

struct ServeSettings {
  ModelSettings model;
  std::string model_id;  // what /v1/models lists and what a request's "model" must be: --model as given
  std::string host = "127.0.0.1";
  int port = 8000;                      // 0: a free port, printed in the "listening on" line
  std::string api_key;                  // "": no authentication
  size_t max_queue = 16;                // requests waiting besides those running
  int max_batch = 8;                    // requests decoded together
  int64_t max_body_bytes = 50ll << 20;  // a request body, after any Content-Encoding
  int64_t max_image_pixels = 50'000'000;
  double timeout_s = 600;  // from arrival to the end of the answer's generation
  bool quiet = false;
};

// Lines on stderr from any thread; info() lines are left out when quiet.
class ServeLog {
 public:
  explicit ServeLog(bool quiet) : quiet_(quiet) {}
  void line(const std::string& s);
  void info(const std::string& s) {
    if (!quiet_) line(s);
  }

 private:
  std::mutex m_;
  bool quiet_;
};

// Whether this dsocr was built with cpp-httplib (CMake found it).
bool http_supported();

// Blocks SIGINT and SIGTERM in the calling thread and in the threads it creates afterwards, so
// that serve_http can wait for them; call it before any thread starts (the scheduler's worker,
// the OpenCL driver's threads). SIGPIPE is ignored.
void block_stop_signals();

// The HTTP server of dsocr serve.
class HttpServer {
 public:
  // Binds s.host:s.port (a free port for 0) at once, before the model loads, so that a port in use
  // fails first; connections made before serve() wait in the socket's backlog. Throws Error when
  // it cannot bind (and always when built without cpp-httplib).
  HttpServer(const ServeSettings& s, PageScheduler& sched, ServeLog& log);
  ~HttpServer();
  int port() const;
  // Prints "listening on http://HOST:PORT" on stderr and serves until SIGINT or SIGTERM (one
  // that came earlier counts too); then stops accepting connections, lets every request in flight
  // finish (those waiting in the queue too) and returns.
  void serve();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsocr
