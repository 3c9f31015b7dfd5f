// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

// The names that messages give a file written inside a directory that is itself being built under
// a temporary name (checkpoint::OutputDirectory): a user who asked for `out/pruned` must read
// "out/pruned/model.safetensors: cannot write ...: No space left on device", not a path inside
// `out/.pruned.tmp-<pid>-<n>-<clock>` that no longer exists when the message is read. The writers
// (TempFile, and through it every file writer) look the name up here, so that none of them needs
// to be told which directory it writes into.

namespace mhaprune::io::detail {

/// The temporary directories of this process and the final path of each, as registered by
/// `TemporaryDirectoryName`. Few entries (one per output directory being written), any thread.
class TemporaryDirectories {
 public:
  static TemporaryDirectories& instance() {
    static TemporaryDirectories registry;
    return registry;
  }

  /// `path` with a registered temporary directory at its start (the whole path, or followed by
  /// '/') replaced by that directory's final path; `path` itself when none is.
  std::string final_name(const std::string& path) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [temp, final_path] : entries_) {
      if (path.compare(0, temp.size(), temp) == 0 && (path.size() == temp.size() || path[temp.size()] == '/'))
        return final_path + path.substr(temp.size());
    }
    return path;
  }

  void add(std::string temp, std::string final_path) {
    const std::lock_guard<std::mutex> lock(mutex_);
    entries_.emplace_back(std::move(temp), std::move(final_path));
  }

  void remove(const std::string& temp) noexcept {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == temp) {
        entries_.erase(it);  // moves strings only: cannot throw
        return;
      }
    }
  }

 private:
  TemporaryDirectories() = default;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> entries_;
};

/// Registers `temp` as the temporary name of the directory `final_path` for as long as this object
/// lives: files written below `temp` meanwhile are named below `final_path` in messages
/// (`final_name_of`).
/// @throws std::bad_alloc only; nothing is registered then.
class TemporaryDirectoryName {
 public:
  TemporaryDirectoryName(std::string temp, std::string final_path) : temp_(std::move(temp)) {
    TemporaryDirectories::instance().add(temp_, std::move(final_path));
  }
  ~TemporaryDirectoryName() { TemporaryDirectories::instance().remove(temp_); }
  TemporaryDirectoryName(const TemporaryDirectoryName&) = delete;
  TemporaryDirectoryName& operator=(const TemporaryDirectoryName&) = delete;

 private:
  std::string temp_;
};

/// The name messages give the file `path`: `path`, or, when it lies in a registered temporary
/// directory, the path it will have once that directory is renamed into place.
inline std::string final_name_of(const std::string& path) {
  return TemporaryDirectories::instance().final_name(path);
}

}  // namespace mhaprune::io::detail
