#include "apps/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dsocr {

StatusLine::StatusLine(bool quiet, double log_interval_s)
    : quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1), log_interval_s_(log_interval_s) {}

void StatusLine::update(const std::string& s, bool force) {
  if (quiet_) return;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (!force && last_ != Clock::time_point{} && since < (tty_ ? 0.25 : log_interval_s_)) return;
  last_ = now;
  if (tty_) {
    std::fprintf(stderr, "\r%s\033[K", s.c_str());
    shown_ = true;
  } else {
    std::fprintf(stderr, "%s\n", s.c_str());
  }
  std::fflush(stderr);
}

void StatusLine::restart() { last_ = tty_ ? Clock::time_point{} : Clock::now(); }

void StatusLine::clear() {
  if (!shown_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  shown_ = false;
}

void StatusLine::note(const std::string& s) {
  if (quiet_) return;
  clear();
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
}

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

}  // namespace dsocr
