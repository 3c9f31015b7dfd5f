// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Progress on stderr for work that takes more than a second: one rewritten line with an ETA on a
// terminal, plain lines (at most one a second) when stderr is a file or a pipe, nothing with --quiet.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>

namespace mhaprune_cli {

class ProgressPrinter {
 public:
  /// Seconds on a monotonic clock; injectable so tests need not sleep.
  using Clock = std::function<double()>;

  static double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  /// @param out where to print (stderr in the tool)
  /// @param terminal whether `out` is a terminal (rewrite one line) or not (plain lines)
  /// @param quiet print nothing at all
  /// @param delay seconds of work before anything is shown, so quick commands stay silent
  ProgressPrinter(std::FILE* out, bool terminal, bool quiet, Clock now = &steady_seconds, double delay = 1.0)
      : out_(out),
        terminal_(terminal),
        quiet_(quiet),
        now_(std::move(now)),
        delay_(delay),
        start_(now_()),
        last_update_(start_) {}

  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;
  ~ProgressPrinter() { finish(); }

  /// `done` of `total` units of `stage` are finished, the last being `block`.
  void update(const std::string& stage, std::size_t done, std::size_t total, const std::string& block) {
    if (quiet_) return;
    const double t = now_();
    if (stage != stage_) {
      // A stage starts when the previous one ended (or when the printer was made): its first update
      // comes after its first unit of work.
      stage_ = stage;
      stage_start_ = last_update_;
      last_plain_ = -1e300;
    }
    last_update_ = t;
    if (t - start_ < delay_) return;
    const bool last = done >= total;
    std::string line = "mhaprune: " + stage + ' ' + std::to_string(done) + '/' + std::to_string(total);
    if (!block.empty()) line += ' ' + block;
    const double elapsed = t - stage_start_;
    if (terminal_) {
      if (done > 0 && !last)
        line += ", ETA " + duration(elapsed / static_cast<double>(done) * static_cast<double>(total - done));
      if (last) line += ", " + duration(elapsed);
      std::fprintf(out_, "\r\033[K%s", line.c_str());
      open_line_ = true;
      if (last) close_line();
    } else {
      if (!last && t - last_plain_ < 1.0) return;
      last_plain_ = t;
      std::fprintf(out_, "%s (%s)\n", line.c_str(), duration(elapsed).c_str());
    }
    std::fflush(out_);
  }

  /// Ends a half-written terminal line, so what is printed next starts on a line of its own.
  void finish() {
    if (open_line_) close_line();
  }

  /// "3.2 s", "1 min 05 s".
  static std::string duration(double seconds) {
    char buf[48];
    if (!(seconds >= 0)) seconds = 0;
    if (seconds < 60) {
      std::snprintf(buf, sizeof buf, "%.1f s", seconds);
    } else {
      const long s = static_cast<long>(seconds + 0.5);
      std::snprintf(buf, sizeof buf, "%ld min %02ld s", s / 60, s % 60);
    }
    return buf;
  }

 private:
  void close_line() {
    std::fputc('\n', out_);
    std::fflush(out_);
    open_line_ = false;
  }

  std::FILE* out_;
  bool terminal_, quiet_;
  Clock now_;
  double delay_, start_, last_update_;
  std::string stage_;
  double stage_start_ = 0, last_plain_ = -1e300;
  bool open_line_ = false;
};

}  // namespace mhaprune_cli
