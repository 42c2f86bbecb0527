// The routes of dsocr serve over cpp-httplib (only built with it: DSOCR_HAVE_HTTPLIB).
//   GET  /health                 {"status": "ok", "queued": N, "running": N} (no API key needed)
//   GET  /v1/models[/ID]         the one model, as OpenAI lists models
//   POST /v1/chat/completions    one page (ocr/openai_api.h), answered whole or as server-sent events
// Anything else: 404 (unknown route) or 405 (a known route with another method), as JSON.
#pragma once
#if DSOCR_HAVE_HTTPLIB
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/serve_http.h"
#include "ocr/openai_api.h"

namespace dsocr {

// The answers' Content-Type. With the charset named, cpp-httplib leaves the body uncompressed (it
// compresses a bare application/json for a client that accepts br or gzip): the answers are
// small, and the brotli module of some Python installations (Debian 12's 1.0.9) breaks the
// openai client's decoding of a br body.
inline constexpr const char* kJsonType = "application/json; charset=utf-8";

class ServeRoutes {
 public:
  ServeRoutes(const ServeSettings& s, PageScheduler& sched, ServeLog& log);
  void install(httplib::Server& svr);
  // From now on a new chat request is answered 503 (shutting_down): the server is stopping.
  void drain() { draining_ = true; }

 private:
  // One request's number (in the log and the completion id) and arrival time.
  struct Call {
    uint64_t n = 0;
    SteadyClock::time_point t0;
    std::string what;  // "POST /v1/chat/completions"
  };
  Call begin(const httplib::Request& req);
  void reply(const Call& c, httplib::Response& res, int status, const nlohmann::ordered_json& body,
             const std::string& note = {});
  void reply_error(const Call& c, httplib::Response& res, const ApiError& e);
  bool authorized(const httplib::Request& req) const;
  // The body into `body`, at most max_body_bytes after decoding; ApiError 413 over it, 400 when
  // it cannot be read. A multipart body is read and dropped (the answer is 415 anyway).
  void read_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                 std::string& body);
  void other_route(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* reader);
  void models(const httplib::Request& req, httplib::Response& res);

  // serve_chat.cpp
  void chat(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
  std::shared_ptr<PageJob> submit(const Call& c, httplib::Response& res, const ChatRequest& cr);
  void answer(const Call& c, httplib::Response& res, const std::shared_ptr<PageJob>& job, ChatAnswer a);
  void stream(const Call& c, httplib::Response& res, const std::shared_ptr<PageJob>& job, ChatAnswer a,
              bool include_usage);
  ApiError end_error(const PageJob& job) const;
  std::string summary(const PageJob& job) const;

  const ServeSettings& s_;
  PageScheduler& sched_;
  ServeLog& log_;
  const int64_t started_;  // Unix seconds: the model's "created"
  std::atomic<uint64_t> calls_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace dsocr
#endif
