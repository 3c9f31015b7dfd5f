// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/copy_range.hpp"
#include "mhaprune/io/detail/stale_temporaries.hpp"
#include "mhaprune/io/detail/system_error.hpp"
#include "mhaprune/io/detail/temporary_directories.hpp"

namespace mhaprune::io::detail {

/// The directory part of a path ("." for a bare file name) and the file name part.
inline std::pair<std::string, std::string> split_path(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? std::string("/") : path.substr(0, slash), path.substr(slash + 1)};
}

/// A file being written under a temporary name next to its final path, renamed into place only by
/// `commit()`: whatever happens before (an exception, a crash, a full disk) no file ever appears
/// under the final name half-written, and the destructor removes the temporary file.
///
/// The temporary lives in the destination directory (a rename is atomic only within one file
/// system), is named `.<final name>.tmp-<pid>-<n>-<clock>` and is created with O_EXCL, so two
/// writers never share one. A crash (not an exception) can leave such a dot-file behind; it is
/// never mistaken for a checkpoint.
///
/// Messages name the file by `shown_path()`: the final path, or, for a file written inside a
/// directory that is itself being built under a temporary name (`TemporaryDirectoryName`), the
/// path the file will have once that directory is in place; they add the temporary file's path.
///
/// Writes go through a 1 MiB buffer; large blocks bypass it. Nothing here holds a whole file.
class TempFile {
 public:
  explicit TempFile(std::string final_path)
      : final_path_(std::move(final_path)), shown_path_(final_name_of(final_path_)) {
    const auto [dir, base] = split_path(final_path_);
    if (base.empty())
      throw io_error(mhaprune::detail::message(final_path_, ": not a file name (ends with '/')"));
    buffer_.reserve(buffer_capacity);  // before the file exists: nothing to clean up if it throws
    remove_stale_temporaries(final_path_);
    static std::atomic<unsigned> counter{0};
    int error_number = EEXIST;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const auto clock =
          static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count());
      temp_path_ = mhaprune::detail::message(dir, "/.", base, ".tmp-", ::getpid(), '-', counter.fetch_add(1),
                                             '-', std::hex, clock);
      do {
        fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      } while (fd_ < 0 && errno == EINTR);
      if (fd_ >= 0) return;
      error_number = errno;
      if (error_number != EEXIST) break;
    }
    temp_path_.clear();
    throw system_failure(shown_path_, mhaprune::detail::message("create a temporary file in ", dir),
                         error_number);
  }

  ~TempFile() { discard(); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& final_path() const noexcept { return final_path_; }
  /// The name messages give the file (see the class comment).
  const std::string& shown_path() const noexcept { return shown_path_; }
  const std::string& temp_path() const noexcept { return temp_path_; }
  /// Bytes appended so far.
  std::uint64_t written() const noexcept { return written_; }

  /// Asks the kernel to start writing each 32 MiB to disk as soon as it is written (Linux), so that
  /// a durable `finish` waits for the last stretch only instead of the whole file: the disk works
  /// while the writer still computes. Only advice; nothing changes in what is written.
  void start_writeback_early(bool on) noexcept { writeback_early_ = on; }

  void append(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    written_ += size;
    if (buffer_.size() + size <= buffer_capacity) {
      buffer_.insert(buffer_.end(), p, p + size);
      return;
    }
    flush();
    if (size >= buffer_capacity / 2) {
      write_all(p, size);
    } else {
      buffer_.insert(buffer_.end(), p, p + size);
    }
  }

  /// Appends `size` bytes of the open file `in_fd` from byte `offset` (the input's own position is
  /// not used or moved), copied inside the kernel (`copy_file_range`) when the file systems allow,
  /// else read and written through the write buffer (see `copy_range`). Buffered bytes are written
  /// first, so appends keep their order. `in_path` names the input in messages.
  /// @throws io_error naming `in_path` if the input ends before `offset + size` or cannot be read;
  ///         naming `shown_path()` and the temporary file if that cannot be written. After a throw
  ///         the temporary file's contents are unspecified (the writer discards it).
  void append_range(int in_fd, std::uint64_t offset, std::uint64_t size, const std::string& in_path) {
    if (size == 0) return;
    flush();
    written_ += size;
    const CopyRangeResult r =
        copy_range(in_fd, offset, size, in_path, fd_, shown_path_,
                   mhaprune::detail::message("temporary file ", temp_path_), scratch_, buffer_capacity,
                   [this](const std::byte* p, std::size_t n) { write_all(p, n); });
    copied_in_kernel_ += r.in_kernel;
    // write_all counted the fallback's bytes. (When copy_file_range stops part-way and the fallback
    // goes on, the early writeback lags by the kernel's share until here: it is only advice.)
    at_ += r.in_kernel;
    start_writeback();
  }

  /// Bytes that `append_range` copied inside the kernel (the rest of `written()` went through
  /// this process): for tests and benchmarks.
  std::uint64_t copied_in_kernel() const noexcept { return copied_in_kernel_; }

  /// Flushes, optionally fsyncs, and closes the file; it keeps its temporary name.
  void finish(bool durable) {
    flush();
    if (durable && ::fsync(fd_) != 0) throw failure("flush to disk (fsync)");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) throw failure("close");
  }

  /// Renames the finished file to its final name, replacing any file there. With `durable`, the
  /// directory is synced too so that the new name survives a power cut (best effort: a file system
  /// that cannot sync directories does not fail the write, the file itself is already synced).
  void commit(bool durable) {
    if (fd_ >= 0) finish(durable);
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      const int error_number = errno;
      // Inside a temporary directory the rename's target is not the name shown: say both.
      throw system_failure(
          shown_path_,
          mhaprune::detail::message("rename ", temp_path_, " to ",
                                    shown_path_ == final_path_ ? std::string("it") : final_path_),
          error_number);
    }
    committed_ = true;
    if (durable) {
      const int dir = ::open(split_path(final_path_).first.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir >= 0) {
        (void)::fsync(dir);
        ::close(dir);
      }
    }
  }

  /// Closes and removes the temporary file unless it was committed; never throws.
  void discard() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    if (!committed_ && !temp_path_.empty()) {
      ::unlink(temp_path_.c_str());
      temp_path_.clear();
    }
  }

 private:
  static constexpr std::size_t buffer_capacity = std::size_t{1} << 20;
  static constexpr std::uint64_t writeback_chunk = std::uint64_t{32} << 20;

  io_error failure(const char* what, int error_number = errno) const {
    return system_failure(shown_path_, mhaprune::detail::message(what, " temporary file ", temp_path_),
                          error_number);
  }

  void flush() {
    if (buffer_.empty()) return;
    write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }

  void write_all(const std::byte* p, std::size_t size) {
    while (size > 0) {
      const ::ssize_t n = ::write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw failure("write");
      }
      if (n == 0) throw failure("write", EIO);
      p += n;
      size -= static_cast<std::size_t>(n);
      at_ += static_cast<std::uint64_t>(n);
    }
    start_writeback();
  }

  void start_writeback() noexcept {
#if defined(__linux__)
    if (writeback_early_ && at_ - writeback_from_ >= writeback_chunk) {
      (void)::sync_file_range(fd_, static_cast<off_t>(writeback_from_),
                              static_cast<off_t>(at_ - writeback_from_), SYNC_FILE_RANGE_WRITE);
      writeback_from_ = at_;
    }
#endif
  }

  std::string final_path_;
  std::string shown_path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
  std::uint64_t written_ = 0;
  std::uint64_t copied_in_kernel_ = 0;
  std::uint64_t at_ = 0;              // bytes handed to write(2)
  std::uint64_t writeback_from_ = 0;  // start of the range not yet sent to disk early
  bool writeback_early_ = false;
  std::vector<std::byte> buffer_;
  std::vector<std::byte> scratch_;  // the pread/write fallback of append_range, allocated if it runs
};

}  // namespace mhaprune::io::detail
