// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/system_error.hpp"

namespace mhaprune::io {

/// A whole file mapped read-only into memory (POSIX `mmap`), unmapped when the object dies.
///
/// Pages are read from disk only when touched, so opening a 10 GB checkpoint and looking at its
/// header costs a few pages. An empty file is not an error here: it maps to an empty span (no
/// `mmap` call, which would refuse a zero length) and the safetensors parser then reports the file
/// as too short. The read-only descriptor stays open while the object lives (`fd()`), so that a
/// writer can copy ranges of the file inside the kernel (`copy_file_range`, see
/// `ByteSink::append_file_range`) instead of through the mapped pages.
///
/// The mapping is private and read-only: nothing is ever written back. If another process
/// truncates the file while it is mapped, touching the lost pages raises SIGBUS, as with any map;
/// checkpoints are expected to stay put while they are read.
class MappedFile {
 public:
  /// An object that maps nothing (size 0).
  MappedFile() = default;

  /// Maps `path`.
  /// @throws io_error naming `path` and the system's reason if it cannot be opened, is not a
  ///         regular file, or cannot be mapped.
  explicit MappedFile(std::string path) : path_(std::move(path)) {
    int fd = -1;
    do {
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // never block on a FIFO
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw detail::system_failure(path_, "open for reading");
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      throw detail::system_failure(path_, "stat", e);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw io_error(mhaprune::detail::message(path_, ": not a regular file"));
    }
    if (static_cast<std::uintmax_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
      ::close(fd);
      throw io_error(
          mhaprune::detail::message(path_, ": file of ", st.st_size, " bytes is too large to map"));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ != 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw detail::system_failure(path_, "map into memory", e);
      }
      data_ = static_cast<const std::byte*>(p);
    }
    fd_ = fd;
  }

  ~MappedFile() { unmap(); }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept
      : path_(std::move(other.path_)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        fd_(std::exchange(other.fd_, -1)) {}
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }

  /// The file's bytes; null for an empty file. Valid while this object lives (moves keep it valid).
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  ByteSpan bytes() const noexcept { return {data_, size_}; }
  /// The path as given to the constructor, for messages.
  const std::string& path() const noexcept { return path_; }
  /// The open read-only descriptor of the mapped file (for `copy_file_range`/`pread` of a range);
  /// -1 for a default-constructed or moved-from object. Owned: closed by the destructor.
  int fd() const noexcept { return fd_; }

  /// Tells the kernel this process is done with `range` (a span of `bytes()`) for now: its pages
  /// leave this process's resident set, while the page cache keeps them, so touching them again is
  /// cheap and reads the same bytes. Streaming a checkpoint layer by layer calls this after each
  /// layer, so resident memory does not grow with the model. Only whole pages inside the range are
  /// released; a range outside the map, or a failing `madvise`, is ignored (it is only advice).
  void release(ByteSpan range) const noexcept {
    if (data_ == nullptr || range.empty() || range.data() < data_ ||
        range.data() + range.size() > data_ + size_) {
      return;
    }
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(range.data());
    const std::uintptr_t first = (begin + page - 1) / page * page;
    const std::uintptr_t last = (begin + range.size()) / page * page;
    if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }

 private:
  void unmap() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
    data_ = nullptr;
    size_ = 0;
    fd_ = -1;
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  int fd_ = -1;
};

}  // namespace mhaprune::io
