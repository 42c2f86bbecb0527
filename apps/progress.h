// Progress on stderr for the long-running subcommands: one status line rewritten in place on a
// terminal (at most a few times a second), or a plain line every few seconds when stderr is a
// file or a pipe; nothing when quiet.
#pragma once
#include <chrono>
#include <string>

namespace dsocr {

class StatusLine {
 public:
  explicit StatusLine(bool quiet, double log_interval_s = 10.0);
  bool enabled() const { return !quiet_; }
  bool terminal() const { return tty_; }
  // A status that replaces the previous one; rate-limited unless force.
  void update(const std::string& s, bool force = false);
  // Starts a new phase: on a terminal the next update shows at once; in a log, after the interval.
  void restart();
  // Removes the in-place status line (before other output reaches the same terminal).
  void clear();
  // A permanent line (the status line is cleared first).
  void note(const std::string& s);

 private:
  using Clock = std::chrono::steady_clock;
  bool quiet_, tty_;
  double log_interval_s_;
  bool shown_ = false;  // an in-place line is on the terminal
  Clock::time_point last_{};
};

bool stdout_is_terminal();

}  // namespace dsocr
