// POST /v1/chat/completions (apps/serve_routes.h): the checks in order (body size, API key,
// content type, JSON, model, image), then the page as a job of the scheduler, answered as one
// chat.completion object or streamed as chat.completion.chunk server-sent events.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "apps/serve_routes.h"

#if DSOCR_HAVE_HTTPLIB
namespace dsocr {
namespace {

using ojson = nlohmann::ordered_json;
constexpr auto kPoll = std::chrono::seconds(1);  // how often a waiting handler looks at its job

bool is_json_type(std::string type) {
  type = type.substr(0, type.find(';'));
  type.erase(std::remove_if(type.begin(), type.end(), [](unsigned char ch) { return std::isspace(ch); }), type.end());
  for (char& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return type == "application/json" ||
         (type.rfind("application/", 0) == 0 && type.size() > 17 && type.compare(type.size() - 5, 5, "+json") == 0);
}

const char* finish_reason(const PageResult& r) { return r.eos ? "stop" : "length"; }

void count_tokens(ChatAnswer& a, const PageResult& r) {
  a.prompt_tokens = static_cast<int64_t>(r.prompt_ids.size());
  a.completion_tokens = static_cast<int64_t>(r.generated.size());
}

}  // namespace

void ServeRoutes::chat(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
  const Call c = begin(req);
  try {
    std::string body;
    read_body(req, res, reader, body);
    if (!authorized(req))
      throw ApiError(401, "invalid_api_key", "a valid API key is needed (Authorization: Bearer KEY)");
    const std::string type = req.get_header_value("Content-Type");
    if (!is_json_type(type))
      throw ApiError(415, "unsupported_media_type",
                     fmt::format("Content-Type {}: send application/json", type.empty() ? "missing" : type));
    const ChatRequest cr = parse_chat_request(body, s_.model.prompt);
    if (!cr.model.empty() && cr.model != s_.model_id)
      throw ApiError(404, "model_not_found",
                     fmt::format("the model '{}' does not exist here; this server serves '{}'", cr.model, s_.model_id));
    std::shared_ptr<PageJob> job = submit(c, res, cr);
    ChatAnswer a;
    a.id = fmt::format("chatcmpl-{}-{}", started_, c.n);
    a.model = s_.model_id;
    a.created = static_cast<int64_t>(std::time(nullptr));
    if (cr.stream)
      stream(c, res, job, a, cr.include_usage);
    else
      answer(c, res, job, a);
  } catch (const ApiError& e) {
    reply_error(c, res, e);
  }
}

std::shared_ptr<PageJob> ServeRoutes::submit(const Call& c, httplib::Response& res, const ChatRequest& cr) {
  if (draining_) throw ApiError(503, "shutting_down", "the server is shutting down");
  RgbImage image = decode_request_image(cr.image, s_.max_image_pixels);
  PageRequest pr;
  pr.prompt = cr.prompt;
  pr.opts = s_.model.opts;
  if (cr.max_tokens > 0) pr.opts.max_new_tokens = std::min(cr.max_tokens, s_.model.opts.max_new_tokens);
  pr.format = OutputFormat::text;  // as generated: no crops written, grounding tags kept
  pr.source = fmt::format("request {}", c.n);
  const auto deadline =
      c.t0 + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s_.timeout_s));
  auto job = std::make_shared<PageJob>(std::move(image), std::move(pr), deadline);
  switch (sched_.submit(job)) {
    case PageScheduler::Admission::accepted:
      return job;
    case PageScheduler::Admission::queue_full:
      res.set_header("Retry-After", std::to_string(sched_.retry_after_s()));
      throw ApiError(
          503, "queue_full",
          fmt::format("the queue is full ({} requests waiting, --max-queue): try again later", s_.max_queue));
    case PageScheduler::Admission::stopping:
      break;
  }
  throw ApiError(503, "shutting_down", "the server is shutting down");
}

ApiError ServeRoutes::end_error(const PageJob& job) const {
  switch (job.end()) {
    case JobEnd::expired:
      return ApiError(
          504, "timeout",
          fmt::format("the request waited in the queue for --timeout-s {:g} s and was not run", s_.timeout_s));
    case JobEnd::timed_out:
      return ApiError(504, "timeout",
                      fmt::format("the request took longer than --timeout-s {:g} s: generation stopped after {} tokens",
                                  s_.timeout_s, job.tokens()));
    case JobEnd::cancelled:
      return ApiError(500, "cancelled", "the request was cancelled");
    case JobEnd::failed:
      return job.out_of_memory() ? ApiError(503, "out_of_device_memory", job.error())
                                 : ApiError(500, "server_error", job.error());
    default:
      return ApiError(500, "server_error", "the request ended without an answer");
  }
}

std::string ServeRoutes::summary(const PageJob& job) const {
  const PageResult& r = job.output().result;
  return fmt::format("{} image tokens, {} tokens ({}), vision {:.2f} s, decode {:.2f} s", r.n_image_tokens,
                     r.generated.size(), finish_reason(r), r.t.preprocess_s + r.t.vision_s, r.t.decode_s);
}

void ServeRoutes::answer(const Call& c, httplib::Response& res, const std::shared_ptr<PageJob>& job, ChatAnswer a) {
  while (!sched_.await(*job, SteadyClock::now() + kPoll).ended) {
  }
  if (job->end() != JobEnd::done) throw end_error(*job);
  const PageOutput& out = job->output();
  count_tokens(a, out.result);
  reply(c, res, 200, chat_completion_json(a, out.text, finish_reason(out.result)), summary(*job));
}

void ServeRoutes::stream(const Call& c, httplib::Response& res, const std::shared_ptr<PageJob>& job, ChatAnswer a,
                         bool include_usage) {
  // The status waits for the first token: a request that expires in the queue or fails before
  // generating gets its own HTTP error; later failures (the deadline) end the stream with an
  // error event ({"error": {...}}, which the openai client raises as APIError), then [DONE].
  std::string text;
  PageJob::News n;
  do {
    n = sched_.await(*job, SteadyClock::now() + kPoll);
    text += n.text;
  } while (!n.ended && n.tokens == 0);
  if (n.ended && job->end() != JobEnd::done) throw end_error(*job);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  // One call writes the whole stream: cpp-httplib calls a provider again only while the server
  // is not stopping, and a stream in flight at SIGTERM must still finish.
  auto provider = [this, c, job, a, include_usage, text, ended = n.ended](size_t, httplib::DataSink& sink) mutable {
    auto send = [&](const ojson& j) {
      const std::string event = "data: " + dump_json(j) + "\n\n";
      return sink.write(event.data(), event.size());
    };
    bool ok = send(chat_chunk_json(a, ojson{{"role", "assistant"}, {"content", ""}}));
    for (;;) {
      if (ok && !text.empty()) ok = send(chat_chunk_json(a, ojson{{"content", text}}));
      text.clear();
      if (!ok) {
        job->cancel();  // the client is gone: generation stops at the next token
        log_.info(fmt::format("[{}] {}: the client went away; stopping", c.n, c.what));
        return false;
      }
      if (ended) break;
      PageJob::News more = sched_.await(*job, SteadyClock::now() + kPoll);
      text = std::move(more.text);
      ended = more.ended;
    }
    std::string note;
    if (job->end() == JobEnd::done) {
      count_tokens(a, job->output().result);
      ok = send(chat_chunk_json(a, ojson::object(), finish_reason(job->output().result)));
      if (ok && include_usage) ok = send(chat_usage_chunk_json(a));
      note = summary(*job);
    } else {
      const ApiError e = end_error(*job);
      ok = send(api_error_json(e.status, e.code, e.what()));
      note = fmt::format("stream ended by an error event: {}", e.what());
    }
    static const std::string done = "data: [DONE]\n\n";
    if (ok) ok = sink.write(done.data(), done.size());
    if (ok) sink.done();
    const double s = std::chrono::duration<double>(SteadyClock::now() - c.t0).count();
    log_.info(fmt::format("[{}] 200 {} (stream, {:.2f} s): {}", c.n, c.what, s, note));
    return ok;
  };
  res.set_chunked_content_provider("text/event-stream", provider);
}

}  // namespace dsocr
#endif
