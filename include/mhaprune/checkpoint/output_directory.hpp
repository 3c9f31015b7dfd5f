// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/stale_temporaries.hpp"
#include "mhaprune/io/detail/system_error.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/detail/temporary_directories.hpp"

namespace mhaprune::checkpoint {

/// The absolute, symlink-free form of `path`, whose last component need not exist (an output
/// about to be written): how two paths are compared before one is written near the other.
///
/// @param path a file or directory; trailing slashes are ignored.
/// @throws io_error naming `path` and the system's reason when neither `path` nor its parent
///         directory can be resolved (the parent does not exist, or is not searchable).
inline std::string resolved_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (char* r = ::realpath(p.c_str(), nullptr)) {
    std::string out = r;
    std::free(r);
    return out;
  }
  const auto [dir, base] = io::detail::split_path(p);
  char* r = ::realpath(dir.c_str(), nullptr);
  if (r == nullptr) {
    throw io::detail::system_failure(path, "resolve the parent directory of");
  }
  std::string out = r;
  std::free(r);
  return (out == "/" ? out : out + "/") + base;
}

/// True when `path` is `dir` or lies below it. Both must be resolved (`resolved_path`): the test
/// compares text, component by component.
inline bool path_within(const std::string& path, const std::string& dir) noexcept {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         (dir == "/" || path[dir.size()] == '/'));
}

namespace detail {

/// Removes a file or a directory tree; never throws, best effort.
inline void remove_tree(const std::string& path) noexcept {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      std::vector<std::string> names;
      while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
      for (const auto& n : names) remove_tree(path + "/" + n);
    }
    ::rmdir(path.c_str());
  } else {
    ::unlink(path.c_str());
  }
}

}  // namespace detail

/// An output directory built under a temporary sibling name and renamed into place only when
/// complete (`commit`); destroyed uncommitted (an error on the way), it removes everything it
/// wrote, so no output directory is ever left behind half-written.
///
/// The temporary is `.<name>.tmp-<pid>-<n>-<clock>` next to the final path. With `overwrite`, an
/// existing directory at the final path is moved aside at commit, the new one renamed in, and the
/// old one deleted. A process killed while writing (SIGKILL, no destructor) leaves its temporary
/// behind; the next `OutputDirectory` for the same final path removes it
/// (`io::detail::remove_stale_temporaries`: only temporaries of that name whose pid no longer runs).
///
/// While it lives, the temporary is registered as the final path's temporary
/// (`io::detail::TemporaryDirectoryName`), so that an error writing a file inside it names the file
/// under the final path the user asked for (then the temporary file's own path), not under a name
/// that is gone by the time the message is read.
class OutputDirectory {
 public:
  /// Checks the destination against `input` (a directory or file that must not be touched), then
  /// creates the temporary directory.
  /// @throws io_error when the output is the input, inside it, or contains it; when it exists and
  ///         `overwrite` is false (or it is not a directory); when its parent does not exist or the
  ///         temporary cannot be created.
  OutputDirectory(const std::string& final_path, const std::string& input, bool overwrite)
      : final_path_(final_path) {
    check_destination(final_path, input, overwrite);
    while (final_path_.size() > 1 && final_path_.back() == '/') final_path_.pop_back();
    const auto [dir, base] = io::detail::split_path(final_path_);
    io::detail::remove_stale_temporaries(final_path_);  // after the checks: a refused run removes nothing
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      const auto clock =
          static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
      std::string candidate = mhaprune::detail::message(dir, "/.", base, ".tmp-", ::getpid(), '-',
                                                        counter.fetch_add(1), '-', std::hex, clock);
      if (::mkdir(candidate.c_str(), 0777) == 0) {
        try {
          name_.emplace(candidate, final_path_);
        } catch (...) {
          ::rmdir(candidate.c_str());  // empty: nothing else to remove
          throw;
        }
        temp_path_ = std::move(candidate);
        return;
      }
      if (errno != EEXIST) break;
    }
    throw io::detail::system_failure(final_path_,
                                     mhaprune::detail::message("create a temporary directory in ", dir));
  }

  /// Refuses a destination that would touch `input` or an existing output without `overwrite`.
  /// @throws io_error as the constructor.
  static void check_destination(const std::string& final_path, const std::string& input, bool overwrite) {
    const std::string out = resolved_path(final_path);
    const std::string in = resolved_path(input);
    if (path_within(out, in)) {
      throw io_error(mhaprune::detail::message(
          final_path, ": the output ", out == in ? "is the input" : "is inside the input", " (", input,
          "); choose a directory elsewhere, the input is never modified"));
    }
    struct stat st;
    if (::stat(final_path.c_str(), &st) == 0) {
      if (!overwrite) {
        throw io_error(mhaprune::detail::message(final_path,
                                                 ": the output already exists; remove it or ask to "
                                                 "overwrite it"));
      }
      if (!S_ISDIR(st.st_mode)) {
        throw io_error(mhaprune::detail::message(final_path, ": the output exists and is not a directory"));
      }
      if (path_within(in, out)) {
        throw io_error(mhaprune::detail::message(final_path, ": the output contains the input (", input,
                                                 "); overwriting it would delete the input"));
      }
    }
  }

  ~OutputDirectory() {
    if (!committed_ && !temp_path_.empty()) detail::remove_tree(temp_path_);
  }
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;

  /// Where to write the files now.
  const std::string& path() const noexcept { return temp_path_; }
  const std::string& final_path() const noexcept { return final_path_; }

  /// Renames the finished directory into place (replacing an existing one if allowed); with
  /// `durable`, the parent directory is synced so the new name survives a power cut.
  /// @throws io_error if a rename fails; the temporary is then removed by the destructor.
  void commit(bool durable) {
    const auto [dir, base] = io::detail::split_path(final_path_);
    std::string old;
    struct stat st;
    if (::lstat(final_path_.c_str(), &st) == 0) {
      old = temp_path_ + ".old";
      if (::rename(final_path_.c_str(), old.c_str()) != 0) {
        throw io::detail::system_failure(final_path_, "move the existing output aside");
      }
    }
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      const int error_number = errno;
      if (!old.empty()) (void)::rename(old.c_str(), final_path_.c_str());
      throw io::detail::system_failure(
          final_path_, mhaprune::detail::message("rename ", temp_path_, " to it"), error_number);
    }
    committed_ = true;
    if (!old.empty()) detail::remove_tree(old);
    if (durable) {
      const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        (void)::fsync(fd);
        ::close(fd);
      }
    }
  }

 private:
  std::string final_path_;
  std::string temp_path_;
  bool committed_ = false;
  // Declared last: still registered while the destructor removes the temporary.
  std::optional<io::detail::TemporaryDirectoryName> name_;
};

}  // namespace mhaprune::checkpoint
