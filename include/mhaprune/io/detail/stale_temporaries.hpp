// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <string>
#include <vector>

namespace mhaprune::io::detail {

/// The writer's pid in `name` when `name` is exactly a temporary of the final name `base`, as
/// `TempFile` and `OutputDirectory` name them: `.<base>.tmp-<pid>-<n>-<clock>` with `pid` and `n`
/// decimal and `clock` lower-case hexadecimal, none with a leading zero (nor a sign, space, or
/// anything after). 0 for any other name, so that a look-alike (another file's temporary, the
/// `.old` of an interrupted replace, a user's file) is never taken for one.
inline long stale_temporary_owner(const std::string& name, const std::string& base) noexcept {
  const std::string prefix = "." + base + ".tmp-";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
  std::size_t at = prefix.size();
  // One field: digits of `radix`, no leading zero unless it is "0", at most `max_digits`.
  const auto field = [&](int radix, std::size_t max_digits, unsigned long long& value) {
    const std::size_t start = at;
    value = 0;
    while (at < name.size()) {
      const char c = name[at];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (radix == 16 && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (digit < 0) break;
      value = value * static_cast<unsigned>(radix) + static_cast<unsigned>(digit);
      ++at;
    }
    const std::size_t digits = at - start;
    return digits > 0 && digits <= max_digits && !(digits > 1 && name[start] == '0');
  };
  unsigned long long pid = 0, n = 0, clock = 0;
  if (!field(10, 10, pid) || pid == 0 || pid > static_cast<unsigned long long>(INT_MAX)) return 0;
  if (at >= name.size() || name[at++] != '-') return 0;
  if (!field(10, 10, n)) return 0;
  if (at >= name.size() || name[at++] != '-') return 0;
  if (!field(16, 16, clock) || at != name.size()) return 0;
  return static_cast<long>(pid);
}

/// Removes `name` in the directory `parent` (a file, or a directory with everything in it),
/// never following a symbolic link; best effort, never throws.
inline void remove_tree_at(int parent, const char* name, int depth = 0) noexcept {
  struct stat st;
  if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    (void)::unlinkat(parent, name, 0);
    return;
  }
  if (depth < 64) {  // a temporary is a checkpoint, a few levels at most; bounds the open fds
    const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      DIR* d = ::fdopendir(fd);
      if (d == nullptr) {
        ::close(fd);
      } else {
        try {
          std::vector<std::string> names;
          while (const dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(n);
          }
          for (const auto& n : names) remove_tree_at(::dirfd(d), n.c_str(), depth + 1);
        } catch (...) {  // out of memory: leave the rest; the rmdir below then fails, harmlessly
        }
        ::closedir(d);
      }
    }
  }
  (void)::unlinkat(parent, name, AT_REMOVEDIR);
}

/// Removes the temporaries that writers killed before they could clean up (SIGKILL, a power cut,
/// SIGXFSZ) left next to `final_path`: the files and directories named as `stale_temporary_owner`
/// accepts for that same final name whose writer's pid no longer runs (`kill(pid, 0)` fails with
/// ESRCH). Called before a new temporary is made for `final_path`, so that re-running an
/// interrupted command leaves no trace of the first run, and a disk filled by its partial output
/// is freed before the new one is written.
///
/// Never touched: a temporary of a running process (another writer of the same output, this
/// process's own), another name's temporaries, anything else that is not exactly such a name
/// (symbolic links included), and what lies outside the final path's directory.
/// Limitation: the pid is read in this process's pid namespace, so a writer in another pid
/// namespace (another container, another host on a shared file system) writing the same output
/// at the same time may look dead; do not point such writers at one output name concurrently.
///
/// @param final_path a file or directory path (relative or absolute, trailing slashes ignored);
///        it need not exist, nor its directory (then nothing happens).
/// Best effort: never throws, reports nothing; what cannot be removed stays.
inline void remove_stale_temporaries(const std::string& final_path) noexcept {
  try {
    std::string p = final_path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const std::size_t slash = p.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
    const std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
    if (base.empty() || base == "." || base == "..") return;
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return;
    }
    std::vector<std::string> stale;
    try {
      while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        const long pid = stale_temporary_owner(name, base);
        if (pid == 0 || pid == static_cast<long>(::getpid())) continue;
        if (::kill(static_cast<::pid_t>(pid), 0) == -1 && errno == ESRCH) stale.push_back(name);
      }
      for (const auto& name : stale) {
        struct stat st;
        if (::fstatat(::dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) remove_tree_at(::dirfd(d), name.c_str());
      }
    } catch (...) {  // out of memory: what is left stays; the caller's write goes on
    }
    ::closedir(d);
  } catch (...) {
  }
}

}  // namespace mhaprune::io::detail
