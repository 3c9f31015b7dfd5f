// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Where the tool may write, checked before any work so that a mistake is a usage error (exit 2)
// naming the flag, and how it writes its reports. The rules are the library's (the output is never
// the input nor inside it, nor replaces anything without --force: `OutputDirectory`), checked with
// the library's own path functions; the library checks again when it writes. Not by calling
// `OutputDirectory::check_destination`: its io_error (exit 3) names no flag ("ask to overwrite it",
// not --force), it knows only directory outputs (a GGUF -o is a file), and these usage messages are
// what tests/cli (end_to_end.cmake, slim.cmake) hold the tool to.
#pragma once

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "exit_codes.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/write_file.hpp"

namespace mhaprune_cli {

namespace detail {

/// Anything at `path`, a dangling symbolic link included.
inline bool exists(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::exists(std::filesystem::symlink_status(path, ignored));
}

/// The directory `path` would be written in, as messages name it: "." for a bare name.
inline std::string parent_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

/// `mhaprune::checkpoint::resolved_path`, or nothing when the parent directory does not exist.
inline std::optional<std::string> resolved(const std::string& path) {
  try {
    return mhaprune::checkpoint::resolved_path(path);
  } catch (const mhaprune::io_error&) {
    return std::nullopt;
  }
}

}  // namespace detail

/// What the library treats as the input: the directory for a directory or index, else the file.
inline std::string input_of(const mhaprune::checkpoint::Checkpoint& input) {
  return input.opened_as_directory() ? input.directory() : input.path();
}

/// -o of a checkpoint prune: its parent must exist; not the input, inside it or containing it; not
/// existing unless --force.
/// @throws usage_error naming -o and the rule broken.
inline void check_output_directory(const std::string& out, const mhaprune::checkpoint::Checkpoint& input,
                                   bool force) {
  using mhaprune::checkpoint::path_within;
  const auto out_path = detail::resolved(out);
  if (!out_path)
    throw usage_error("-o " + out + ": the parent directory " + detail::parent_of(out) + " does not exist");
  const auto in_path = detail::resolved(input_of(input));
  if (in_path && (path_within(*out_path, *in_path) || path_within(*in_path, *out_path))) {
    throw usage_error("-o " + out + ": refusing to write into (or over) the input checkpoint's directory " +
                      input_of(input));
  }
  if (detail::exists(out) && !force)
    throw usage_error("-o " + out + ": already exists; use --force to replace it");
}

/// -o of a GGUF prune, a file: its directory must exist; not a file of the input; not existing
/// unless --force.
/// @throws usage_error naming -o and the rule broken.
inline void check_output_file(const std::string& out, const mhaprune::checkpoint::GgufModel& m, bool force) {
  const auto out_path = detail::resolved(out);
  if (!out_path)
    throw usage_error("-o " + out + ": the directory " + detail::parent_of(out) + " does not exist");
  for (const auto& shard : m.files().shards()) {
    const auto shard_path = detail::resolved(shard.path());
    if (shard_path && *out_path == *shard_path)
      throw usage_error("-o " + out + ": refusing to write over the input model");
  }
  if (detail::exists(out) && !force)
    throw usage_error("-o " + out + ": already exists; use --force to replace it");
}

/// A report or heatmap path ("" = none, "-" = stdout): its directory must exist; it must not lie in
/// `input` or, without `force`, replace any existing file.
/// @throws usage_error naming `flag` and the rule broken.
inline void check_side_output(const char* flag, const std::string& path, const std::string& input,
                              bool force) {
  if (path.empty() || path == "-") return;
  const auto p = detail::resolved(path);
  if (!p)
    throw usage_error(std::string(flag) + " " + path + ": the directory " + detail::parent_of(path) +
                      " does not exist");
  const auto in_path = detail::resolved(input);
  if (in_path && mhaprune::checkpoint::path_within(*p, *in_path))
    throw usage_error(std::string(flag) + " " + path + ": refusing to write into the input checkpoint");
  if (detail::exists(path) && !force)
    throw usage_error(std::string(flag) + " " + path + ": already exists; use --force to replace it");
}

/// Writes a report, JSON or picture: to stdout for "-", else atomically (`mhaprune::io::write_file`;
/// `durable` as there).
/// @throws io_error when the file cannot be written.
inline void write_output(const std::string& path, const std::string& text, bool durable) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  mhaprune::io::write_file(path, text, durable);
}

}  // namespace mhaprune_cli
