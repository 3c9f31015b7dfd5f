// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/system_error.hpp"

// Copying a byte range of one open file to the end of another inside the kernel (copy_file_range),
// as `cp` does: the bytes go from page cache to page cache without passing through user space
// (no mapped-page faults, no user-space buffer), and ext4/xfs/btrfs take them in large runs.

namespace mhaprune::io::detail {

/// How `copy_range` moves bytes. `automatic` tries copy_file_range and falls back to pread/write
/// when the kernel or file systems cannot (EXDEV, ENOSYS, EINVAL, EOPNOTSUPP...). `read_write`
/// always uses the fallback: for tests of that path, and to measure one against the other.
enum class CopyRangeMode { automatic, read_write };

/// The process-wide mode (an internal switch; tests set it and put it back).
inline std::atomic<CopyRangeMode>& copy_range_mode() noexcept {
  static std::atomic<CopyRangeMode> mode{CopyRangeMode::automatic};
  return mode;
}

/// Errors of copy_file_range that mean "not possible here", not "the copy failed": the caller
/// copies through user space instead. EBADF: e.g. an output opened O_APPEND. EPERM/ETXTBSY: some
/// file systems (overlay, NFS) refuse where a plain read/write works.
inline bool copy_file_range_unusable(int error_number) noexcept {
  return error_number == EXDEV || error_number == ENOSYS || error_number == EINVAL ||
         error_number == EOPNOTSUPP || error_number == ENOTSUP || error_number == EBADF ||
         error_number == EPERM || error_number == ETXTBSY;
}

/// What a range copy reports: bytes copied in the kernel and through the fallback.
struct CopyRangeResult {
  std::uint64_t in_kernel = 0, through_user_space = 0;
};

/// Appends `size` bytes of `in_fd` from `offset` at `out_fd`'s current file offset (which must be
/// where the caller's earlier writes ended). Short copies are continued; a copy that reaches the
/// end of the input before `size` bytes fails. `scratch` is the buffer of the pread/write
/// fallback, grown to at most `scratch_size` bytes only when the fallback runs; the fallback hands
/// what it read to `write_out(const std::byte* p, std::size_t n)`, the caller's own write of all n
/// bytes at `out_fd`'s end (which throws naming the output when it cannot).
/// @param in_path, out_what for messages: the input's path; how to name the output.
/// @throws io_error naming `in_path` when the input ends before `offset + size` (a file truncated
///         while it was being read) or cannot be read; naming `out_path` with the system's reason
///         when copy_file_range cannot write the output (disk full...); what `write_out` throws.
template <typename WriteOut>
CopyRangeResult copy_range(int in_fd, std::uint64_t offset, std::uint64_t size, const std::string& in_path,
                           int out_fd, const std::string& out_path, const std::string& out_what,
                           std::vector<std::byte>& scratch, std::size_t scratch_size, WriteOut&& write_out) {
  CopyRangeResult result;
  const auto ends_early = [&](std::uint64_t at) {
    return io_error(mhaprune::detail::message(in_path, ": the file ends before byte ", offset + size,
                                              " (copying ", size, " bytes from offset ", offset,
                                              "; nothing after byte ", at, ")"));
  };
  std::uint64_t done = 0;
#if defined(__linux__)
  bool kernel = copy_range_mode().load(std::memory_order_relaxed) == CopyRangeMode::automatic;
  while (kernel && done < size) {
    auto in_at = static_cast<off_t>(offset + done);
    // At most 1 GiB a call: the kernel caps a call near 2 GiB anyway, and smaller calls keep a
    // signal's EINTR cheap to retry.
    const std::uint64_t want = std::min<std::uint64_t>(size - done, std::uint64_t{1} << 30);
    const ::ssize_t n = ::copy_file_range(in_fd, &in_at, out_fd, nullptr, static_cast<std::size_t>(want), 0);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      if (copy_file_range_unusable(e)) {
        kernel = false;  // the fallback continues after whatever was copied already
        break;
      }
      throw system_failure(
          out_path, mhaprune::detail::message("copy ", size, " bytes of ", in_path, " into ", out_what), e);
    }
    if (n == 0) throw ends_early(offset + done);
    done += static_cast<std::uint64_t>(n);
    result.in_kernel += static_cast<std::uint64_t>(n);
  }
#else
  (void)out_fd;  // only copy_file_range writes to it here
  (void)out_path;
  (void)out_what;
#endif
  if (done < size && scratch.size() < scratch_size) scratch.resize(scratch_size);
  while (done < size) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size - done, scratch.size()));
    const ::ssize_t got = ::pread(in_fd, scratch.data(), want, static_cast<off_t>(offset + done));
    if (got < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      throw system_failure(in_path,
                           mhaprune::detail::message("read ", want, " bytes at offset ", offset + done), e);
    }
    if (got == 0) throw ends_early(offset + done);
    write_out(scratch.data(), static_cast<std::size_t>(got));
    done += static_cast<std::uint64_t>(got);
    result.through_user_space += static_cast<std::uint64_t>(got);
  }
  return result;
}

}  // namespace mhaprune::io::detail
