// dsocr serve's HTTP front end (apps/serve_http.h): routes, authentication, body limits, JSON
// errors, the SIGINT/SIGTERM shutdown. The chat completions themselves: apps/serve_chat.cpp.
#include "apps/serve_http.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sys/socket.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

#include "apps/serve_routes.h"

namespace dsocr {

void ServeLog::line(const std::string& s) {
  std::lock_guard<std::mutex> lk(m_);
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-answer is a failed write, not the end of the server
}

#if !DSOCR_HAVE_HTTPLIB

bool http_supported() { return false; }

struct HttpServer::Impl {};
HttpServer::HttpServer(const ServeSettings&, PageScheduler&, ServeLog&) {
  throw Error("this dsocr was built without HTTP support (cpp-httplib)");
}
HttpServer::~HttpServer() = default;
int HttpServer::port() const { return 0; }
void HttpServer::serve() {}

#else

bool http_supported() { return true; }

namespace {

std::string url_host(const std::string& host) { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }

// Waits for SIGINT or SIGTERM (blocked everywhere by block_stop_signals) on its own thread and
// then calls `stop` once.
class StopSignal {
 public:
  StopSignal(ServeLog& log, std::function<void()> stop) : log_(log), stop_(std::move(stop)) {
    thread_ = std::thread([this] { wait(); });
  }
  // After the server returned: ends the waiting thread when no signal came. True when one came.
  bool finish() {
    done_ = true;
    if (!signalled_) pthread_kill(thread_.native_handle(), SIGTERM);  // blocked there: sigwait takes it
    thread_.join();
    return signalled_;
  }

 private:
  void wait() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    if (done_) return;
    signalled_ = true;
    log_.line(fmt::format("dsocr serve: {}: no new connections; finishing the requests in flight",
                          sig == SIGINT ? "SIGINT" : "SIGTERM"));
    stop_();
  }

  ServeLog& log_;
  std::function<void()> stop_;
  std::atomic<bool> signalled_{false}, done_{false};
  std::thread thread_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(const ServeSettings& s, PageScheduler& sched, ServeLog& log) : s(s), log(log), routes(s, sched, log) {}
  const ServeSettings& s;
  ServeLog& log;
  ServeRoutes routes;
  httplib::Server svr;
  int port = 0;
  std::atomic<int> listen_fd{-1};  // the listening socket, as cpp-httplib made it
};

HttpServer::HttpServer(const ServeSettings& s, PageScheduler& sched, ServeLog& log)
    : impl_(std::make_unique<Impl>(s, sched, log)) {
  httplib::Server& svr = impl_->svr;
  // Each connection holds a thread while it is open (keep-alive included): enough for every
  // request the queue admits, the running one and a few health checks.
  const size_t threads = std::min<size_t>(s.max_queue + 16, 256);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Called on the listening socket only. cpp-httplib's default also sets SO_REUSEPORT, with which
  // a second server binds the same port and takes part of its connections: SO_REUSEADDR alone (a
  // restart may reuse a port in TIME_WAIT).
  svr.set_socket_options([impl = impl_.get()](auto sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl->listen_fd = sock;
  });
  impl_->routes.install(svr);
  if (s.port == 0) {
    impl_->port = svr.bind_to_any_port(s.host);
    if (impl_->port < 0) throw Error(fmt::format("cannot listen on {} (any port)", s.host));
  } else if (svr.bind_to_port(s.host, s.port)) {
    impl_->port = s.port;
  } else {
    throw Error(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine)", s.host, s.port));
  }
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const { return impl_->port; }

void HttpServer::serve() {
  // The stop: new chat requests on open connections get 503, and the listening socket is shut
  // down, which ends cpp-httplib's accept loop; its listen() then waits for the connections in
  // flight. Not Server::stop(): that also ends every streamed answer between two of its writes.
  StopSignal stop(impl_->log, [impl = impl_.get()] {
    impl->routes.drain();
    shutdown(impl->listen_fd, SHUT_RDWR);
  });
  impl_->log.line(fmt::format("listening on http://{}:{}", url_host(impl_->s.host), impl_->port));
  const bool ok = impl_->svr.listen_after_bind();
  if (!stop.finish() && !ok)
    throw Error(fmt::format("the server on {}:{} stopped with an error", impl_->s.host, impl_->port));
  impl_->log.info("dsocr serve: stopped");
}

#endif

}  // namespace dsocr
