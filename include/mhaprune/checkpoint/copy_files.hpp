// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/system_error.hpp"
#include "mhaprune/io/detail/temp_file.hpp"

namespace mhaprune::checkpoint {

namespace detail {

inline bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline bool has_prefix(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

/// Weights in other formats hold the unpruned heads and would contradict the new config, so a
/// loader must not find them next to the pruned safetensors.
inline bool is_other_weight_file(const std::string& name) {
  return (has_prefix(name, "pytorch_model") &&
          (has_suffix(name, ".bin") || has_suffix(name, ".bin.index.json"))) ||
         (has_prefix(name, "tf_model") && has_suffix(name, ".h5")) ||
         (has_prefix(name, "flax_model") &&
          (has_suffix(name, ".msgpack") || has_suffix(name, ".msgpack.index.json"))) ||
         (has_prefix(name, "model") && has_suffix(name, ".safetensors")) ||
         name == "model.safetensors.index.json";
}

inline void copy_file(const std::string& from, const std::string& to, bool durable) {
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io::detail::system_failure(from, "open (to copy it)");
  io::detail::TempFile out(to);
  std::vector<char> buffer(std::size_t{1} << 20);
  for (;;) {
    const ::ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw io::detail::system_failure(from, "read (to copy it)", e);
    }
    if (n == 0) break;
    out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  out.commit(durable);
}

}  // namespace detail

/// Copies every file of `from` into `to` except those named in `skip` and weights in other formats
/// (`pytorch_model*.bin`, `tf_model*.h5`, `flax_model*.msgpack`, `model*.safetensors` and their
/// indexes): tokenizer files, generation_config.json, README and the like. Subdirectories are copied
/// recursively, except hidden ones (".git", ".cache"); symbolic links are followed (a Hugging Face
/// cache snapshot is made of them). Returns the names copied at the top level.
/// @throws io_error naming the file when one cannot be read or written.
inline std::vector<std::string> copy_other_files(const std::string& from, const std::string& to,
                                                 const std::vector<std::string>& skip, bool durable) {
  std::vector<std::string> names;
  DIR* d = ::opendir(from.c_str());
  if (d == nullptr) throw io::detail::system_failure(from, "list the directory");
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<std::string> copied;
  for (const auto& n : names) {
    if (std::find(skip.begin(), skip.end(), n) != skip.end() || detail::is_other_weight_file(n)) continue;
    const std::string src = from + "/" + n;
    struct stat st;
    if (::stat(src.c_str(), &st) != 0) continue;  // a dangling link: nothing to copy
    if (S_ISDIR(st.st_mode)) {
      if (n.front() == '.') continue;
      if (::mkdir((to + "/" + n).c_str(), 0777) != 0)
        throw io::detail::system_failure(to + "/" + n, "create");
      copy_other_files(src, to + "/" + n, {}, durable);
    } else if (S_ISREG(st.st_mode)) {
      detail::copy_file(src, to + "/" + n, durable);
    } else {
      continue;
    }
    copied.push_back(n);
  }
  return copied;
}

}  // namespace mhaprune::checkpoint
