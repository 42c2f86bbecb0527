// dsocr serve's routes other than the chat completions (apps/serve_routes.h): health, models,
// authentication, bounded body reading, JSON errors for unknown routes and for what cpp-httplib
// refuses itself.
#include "apps/serve_routes.h"

#if DSOCR_HAVE_HTTPLIB
#include <fmt/format.h>

#include <ctime>

namespace dsocr {

using ojson = nlohmann::ordered_json;

ServeRoutes::ServeRoutes(const ServeSettings& s, PageScheduler& sched, ServeLog& log)
    : s_(s), sched_(sched), log_(log), started_(static_cast<int64_t>(std::time(nullptr))) {}

ServeRoutes::Call ServeRoutes::begin(const httplib::Request& req) {
  return {++calls_, SteadyClock::now(), req.method + " " + req.path};
}

void ServeRoutes::reply(const Call& c, httplib::Response& res, int status, const ojson& body, const std::string& note) {
  res.status = status;
  res.set_content(dump_json(body), kJsonType);
  const double s = std::chrono::duration<double>(SteadyClock::now() - c.t0).count();
  log_.info(fmt::format("[{}] {} {} ({:.2f} s){}", c.n, status, c.what, s, note.empty() ? "" : ": " + note));
}

void ServeRoutes::reply_error(const Call& c, httplib::Response& res, const ApiError& e) {
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  reply(c, res, e.status, api_error_json(e.status, e.code, e.what()), e.what());
}

bool ServeRoutes::authorized(const httplib::Request& req) const {
  if (s_.api_key.empty()) return true;
  const std::string got = req.get_header_value("Authorization"), want = "Bearer " + s_.api_key;
  if (got.size() != want.size()) return false;
  unsigned char diff = 0;  // compared in constant time
  for (size_t i = 0; i < want.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ want[i]);
  return diff == 0;
}

void ServeRoutes::read_body(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                            std::string& body) {
  // A body over the limit (chunked, or inflated by its Content-Encoding; cpp-httplib refuses a
  // Content-Length over it before reading) is read on and dropped up to 4 times the limit, so
  // that the 413 goes back on a clean connection; past that the reading stops.
  const size_t limit = static_cast<size_t>(s_.max_body_bytes);
  size_t seen = 0;
  auto receive = [&](const char* d, size_t n, bool keep) {
    seen += n;
    if (seen > limit) return seen <= 4 * limit;
    if (keep) body.append(d, n);
    return true;
  };
  bool ok;
  if (req.is_multipart_form_data())  // refused for its type; read and dropped
    ok = reader([](const httplib::MultipartFormData&) { return true; },
                [&](const char* d, size_t n) { return receive(d, n, false); });
  else
    ok = reader([&](const char* d, size_t n) { return receive(d, n, true); });
  if (seen > limit || res.status == 413)
    throw ApiError(413, "body_too_large",
                   fmt::format("the request body is larger than this server's limit of {} MB (--max-body-mb)",
                               s_.max_body_bytes >> 20));
  if (!ok)
    throw ApiError(400, "unreadable_body",
                   "the request body could not be read (cut short, or a malformed chunked or compressed encoding)");
}

void ServeRoutes::models(const httplib::Request& req, httplib::Response& res) {
  const Call c = begin(req);
  if (!authorized(req)) return reply_error(c, res, ApiError(401, "invalid_api_key", "a valid API key is needed"));
  if (req.matches.size() < 2) return reply(c, res, 200, models_json(s_.model_id, started_));
  const std::string id = req.matches[1];
  if (id != s_.model_id)
    return reply_error(c, res, ApiError(404, "model_not_found", fmt::format("no model '{}' here", id)));
  reply(c, res, 200, model_json(s_.model_id, started_));
}

void ServeRoutes::other_route(const httplib::Request& req, httplib::Response& res,
                              const httplib::ContentReader* reader) {
  const Call c = begin(req);
  try {
    if (reader) {
      std::string body;
      read_body(req, res, *reader, body);
    }
    const bool known = req.path == "/health" || req.path == "/v1/models" || req.path == "/v1/chat/completions" ||
                       req.path.rfind("/v1/models/", 0) == 0;
    if (!known) throw ApiError(404, "not_found", fmt::format("unknown route {} {}", req.method, req.path));
    res.set_header("Allow", req.path == "/v1/chat/completions" ? "POST" : "GET");
    throw ApiError(405, "method_not_allowed", fmt::format("{} does not take {}", req.path, req.method));
  } catch (const ApiError& e) {
    reply_error(c, res, e);
  }
}

void ServeRoutes::install(httplib::Server& svr) {
  svr.set_payload_max_length(static_cast<size_t>(s_.max_body_bytes));
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const PageScheduler::Stats st = sched_.stats();
    res.set_content(dump_json({{"status", "ok"}, {"queued", st.queued}, {"running", st.active}}), kJsonType);
  });
  svr.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) { models(req, res); });
  svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) { models(req, res); });
  svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res,
                                          const httplib::ContentReader& reader) { chat(req, res, reader); });
  // Everything else, its body read within the limit first (not as cpp-httplib would, unbounded
  // for a chunked or compressed body).
  auto with_body = [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    other_route(req, res, &reader);
  };
  auto without_body = [this](const httplib::Request& req, httplib::Response& res) { other_route(req, res, nullptr); };
  svr.Post(".*", with_body);
  svr.Put(".*", with_body);
  svr.Patch(".*", with_body);
  svr.Delete(".*", with_body);
  svr.Get(".*", without_body);
  svr.Options(".*", without_body);
  // What cpp-httplib answers itself (a request line it cannot parse, a Content-Length over the
  // limit on another route, an unknown method): the same JSON errors.
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const bool large = res.status == 413, missing = res.status == 404;
    const std::string code = large ? "body_too_large" : missing ? "not_found" : "bad_request";
    const std::string what = large     ? "the request body is larger than this server's limit (--max-body-mb)"
                             : missing ? "unknown route"
                                       : fmt::format("the request was refused (HTTP {})", res.status);
    res.set_content(dump_json(api_error_json(res.status, code, what)), kJsonType);
  });
  svr.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(begin(req), res, ApiError(500, "server_error", what));
  });
}

}  // namespace dsocr
#endif
