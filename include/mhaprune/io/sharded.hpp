// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/header.hpp"
#include "mhaprune/io/mapped_file.hpp"
#include "mhaprune/io/safetensors_reader.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "mhaprune/io/tensor_view.hpp"

namespace mhaprune::io {

/// The index of a sharded checkpoint, `model.safetensors.index.json`:
///
///     {"metadata": {"total_size": 123456}, "weight_map": {"tensor name":
///     "model-00001-of-00002.safetensors"}}
struct ShardIndex {
  /// The index's "metadata" object as is (an empty object if absent); Hugging Face puts
  /// `total_size` (bytes of tensor data) there, sometimes more.
  nlohmann::json metadata = nlohmann::json::object();
  /// Tensor name → shard file name, relative to the index's directory.
  std::map<std::string, std::string> weight_map;
};

/// Parses and checks an index file's bytes: a JSON object (no key twice) whose "weight_map" is an
/// object of strings and whose "metadata", if present, is an object; shard names are relative
/// paths that stay inside the index's directory (not empty, not absolute, no ".." component).
/// Other top-level keys are ignored.
/// @throws corrupt_file_error naming `source` and the check that failed.
inline ShardIndex parse_index(ByteSpan bytes, const std::string& source) {
  using mhaprune::detail::message;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const nlohmann::json root = detail::parse_strict_json(text, source, "index");
  const auto fail = [&source](auto&&... parts) {
    return corrupt_file_error(message(source, ": ", std::forward<decltype(parts)>(parts)...));
  };
  if (!root.is_object()) throw fail("index is ", detail::describe_json(root), ", not a JSON object");
  ShardIndex index;
  if (const auto it = root.find("metadata"); it != root.end()) {
    if (!it->is_object()) throw fail("\"metadata\" is ", detail::describe_json(*it), ", not an object");
    index.metadata = *it;
  }
  const auto map_it = root.find("weight_map");
  if (map_it == root.end()) throw fail("index has no \"weight_map\"");
  if (!map_it->is_object())
    throw fail("\"weight_map\" is ", detail::describe_json(*map_it), ", not an object");
  for (const auto& [name, file] : map_it->items()) {
    if (!file.is_string()) {
      throw fail("\"weight_map\" maps tensor ", detail::quoted(name), " to ", detail::describe_json(file),
                 ", not a file name");
    }
    const auto& f = file.get_ref<const std::string&>();
    bool escapes = f.empty() || f.front() == '/' || f.find('\0') != std::string::npos;
    for (std::size_t start = 0; !escapes && start <= f.size();) {
      const std::size_t slash = std::min(f.find('/', start), f.size());
      escapes = f.compare(start, slash - start, "..") == 0;
      start = slash + 1;
    }
    if (escapes) {
      throw fail("\"weight_map\" maps tensor ", detail::quoted(name), " to ", detail::quoted(f),
                 ", which is not a file name inside the index's directory");
    }
    index.weight_map.emplace(name, f);
  }
  return index;
}

/// A checkpoint split over several safetensors files (shards) with an index, read as one: tensors
/// are looked up by name across shards. A single safetensors file can be opened the same way (see
/// `open`), so code that reads "a checkpoint" needs one type.
///
/// Shards are opened lazily by default (on first use of one of their tensors; opening maps the file
/// and checks its whole header) or all at once. Opening a shard also checks that it holds every
/// tensor the index assigns to it. Tensors present in a shard but not in the index are ignored, as
/// Hugging Face's loaders ignore them.
///
/// Lookups are thread-safe (a mutex guards lazy opening). Views stay valid while the reader lives.
class ShardedReader {
 public:
  enum class OpenMode { lazy, eager };

  /// Reads the index at `index_path`; shards are resolved relative to its directory.
  /// @throws io_error if the index cannot be read; corrupt_file_error as `parse_index`; with
  ///         `OpenMode::eager`, whatever opening a shard throws.
  explicit ShardedReader(std::string index_path, OpenMode mode = OpenMode::lazy, ParseOptions options = {})
      : path_(std::move(index_path)), options_(options), mutex_(std::make_unique<std::mutex>()) {
    const MappedFile file(path_);
    ShardIndex index = parse_index(file.bytes(), path_);
    metadata_ = std::move(index.metadata);
    weight_map_ = std::move(index.weight_map);
    directory_ = detail::split_path(path_).first;
    std::set<std::string> files;
    for (const auto& [name, shard] : weight_map_) files.insert(shard);
    for (const auto& f : files) shards_.emplace(f, nullptr);
    if (mode == OpenMode::eager) open_all();
  }

  /// Opens whatever `path` is: a directory (its `model.safetensors`, else its
  /// `model.safetensors.index.json`, the order Hugging Face's loaders use), an index (a name ending
  /// in ".json") or a single safetensors file (read as a checkpoint of one shard, opened at once).
  /// @throws io_error if a directory holds neither file; otherwise as the constructor.
  static ShardedReader open(const std::string& path, OpenMode mode = OpenMode::lazy,
                            ParseOptions options = {}) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      const std::string dir = path.size() > 1 && path.back() == '/' ? path.substr(0, path.size() - 1) : path;
      if (is_file(dir + "/model.safetensors")) return single_file(dir + "/model.safetensors", options);
      if (is_file(dir + "/model.safetensors.index.json")) {
        return ShardedReader(dir + "/model.safetensors.index.json", mode, options);
      }
      throw io_error(mhaprune::detail::message(path, ": directory holds neither model.safetensors nor ",
                                               "model.safetensors.index.json"));
    }
    if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
      return ShardedReader(path, mode, options);
    }
    return single_file(path, options);
  }

  ShardedReader(ShardedReader&&) noexcept = default;
  ShardedReader& operator=(ShardedReader&&) noexcept = default;

  /// The index file, or the single file for a one-file checkpoint.
  const std::string& path() const noexcept { return path_; }
  const std::string& directory() const noexcept { return directory_; }
  /// The index's "metadata" object (empty for a single file).
  const nlohmann::json& metadata() const noexcept { return metadata_; }
  /// The index's `metadata.total_size` if present and a non-negative integer.
  std::optional<std::uint64_t> total_size() const {
    const auto it = metadata_.find("total_size");
    if (it == metadata_.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
  }
  /// Tensor name → shard file name (relative to `directory()`), sorted by tensor name.
  const std::map<std::string, std::string>& weight_map() const noexcept { return weight_map_; }
  /// The distinct shard file names, sorted.
  std::vector<std::string> shard_files() const {
    std::vector<std::string> out;
    for (const auto& [file, reader] : shards_) out.push_back(file);
    return out;
  }
  bool contains(std::string_view name) const {
    return weight_map_.find(std::string(name)) != weight_map_.end();
  }

  /// The tensor called `name`, opening its shard if needed.
  /// @throws missing_tensor_error if the index has no such tensor (listing similar names);
  ///         corrupt_file_error if its shard does not hold it; whatever opening the shard throws.
  TensorView tensor(std::string_view name) const {
    const SafetensorsReader& reader = shard(shard_of(name));
    return reader.view(reader.info(name));
  }
  /// @throws as `tensor`.
  const TensorInfo& info(std::string_view name) const { return shard(shard_of(name)).info(name); }

  /// The shard file holding `name`.
  /// @throws missing_tensor_error if the index has no such tensor.
  const std::string& shard_of(std::string_view name) const {
    const auto it = weight_map_.find(std::string(name));
    if (it != weight_map_.end()) return it->second;
    std::vector<std::string_view> names;
    names.reserve(weight_map_.size());
    for (const auto& [n, f] : weight_map_) names.push_back(n);
    throw missing_tensor_error(
        mhaprune::detail::message(path_, ": no tensor ", detail::quoted(name), " in the checkpoint (",
                                  weight_map_.size(), " tensor", weight_map_.size() == 1 ? "" : "s",
                                  names.empty() ? "" : ", e.g. ", detail::similar_names(names, name), ")"));
  }

  /// The reader of shard `file` (a name from `shard_files()`), opened and checked on first use.
  /// @throws io_error if `file` is not a shard of this checkpoint or cannot be opened;
  ///         corrupt_file_error if it is broken or lacks a tensor the index assigns to it.
  const SafetensorsReader& shard(const std::string& file) const {
    const std::lock_guard<std::mutex> lock(*mutex_);
    const auto it = shards_.find(file);
    if (it == shards_.end()) {
      throw io_error(
          mhaprune::detail::message(path_, ": ", detail::quoted(file), " is not one of its shards"));
    }
    if (!it->second) {
      auto reader = std::make_unique<SafetensorsReader>(directory_ + "/" + file, options_);
      for (const auto& [name, f] : weight_map_) {
        if (f == file && !reader->contains(name)) {
          throw corrupt_file_error(mhaprune::detail::message(path_, ": the index puts tensor ",
                                                             detail::quoted(name), " in ", reader->path(),
                                                             ", which does not hold it"));
        }
      }
      it->second = std::move(reader);
    }
    return *it->second;
  }

  /// Opens and checks every shard now.
  /// @throws as `shard`.
  void open_all() const {
    for (const auto& [file, reader] : shards_) shard(file);
  }

 private:
  ShardedReader() : mutex_(std::make_unique<std::mutex>()) {}

  static bool is_file(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }

  static ShardedReader single_file(const std::string& path, const ParseOptions& options) {
    ShardedReader r;
    r.path_ = path;
    r.options_ = options;
    auto [dir, base] = detail::split_path(path);
    r.directory_ = std::move(dir);
    auto reader = std::make_unique<SafetensorsReader>(path, options);
    for (const auto& t : reader->tensors()) r.weight_map_.emplace(t.name, base);
    r.shards_.emplace(base, std::move(reader));
    return r;
  }

  std::string path_;
  std::string directory_;
  ParseOptions options_;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::map<std::string, std::string> weight_map_;
  mutable std::map<std::string, std::unique_ptr<SafetensorsReader>> shards_;
  std::unique_ptr<std::mutex> mutex_;
};

/// How `write_sharded` splits and names a checkpoint.
struct ShardOptions {
  /// Upper bound on the tensor data of one shard. Tensors go into shards in the order they were
  /// added to the writer, a new shard starting when the next tensor would not fit; a tensor larger
  /// than this gets a shard of its own (Hugging Face's rule). The default is Hugging Face's 5 GB.
  std::uint64_t max_shard_bytes = 5'000'000'000;
  /// Files are `<prefix>-00001-of-00003.safetensors` and `<prefix>.safetensors.index.json`.
  std::string prefix = "model";
  /// A checkpoint that fits in one shard is written as `<prefix>.safetensors` with no index, as
  /// Hugging Face does, unless this is set.
  bool always_index = false;
  /// Extra entries for the index's "metadata" object ("total_size" is always set by the writer).
  nlohmann::json index_metadata = nlohmann::json::object();
  WriteOptions write;
};

/// What `write_sharded` wrote.
struct ShardedWriteResult {
  /// Shard file names (relative to the directory), in order.
  std::vector<std::string> shard_files;
  /// The index file name, or empty if a single file was written without one.
  std::string index_file;
  /// Tensor name → shard file name.
  std::map<std::string, std::string> weight_map;
  /// Bytes of tensor data in all shards (the index's "total_size").
  std::uint64_t total_size = 0;
  /// Stale files of an earlier checkpoint with the same prefix that were removed.
  std::vector<std::string> removed_files;
};

namespace detail {

inline std::string shard_name(const std::string& prefix, std::size_t i, std::size_t n) {
  char digits[64];
  std::snprintf(digits, sizeof digits, "-%05zu-of-%05zu.safetensors", i, n);
  return prefix + digits;
}

/// `<prefix>-NNNNN-of-NNNNN.safetensors`: the name of a shard of an earlier save.
inline bool is_shard_name(std::string_view file, std::string_view prefix) {
  constexpr std::string_view pattern = "-#####-of-#####.safetensors";
  if (file.size() != prefix.size() + pattern.size() || file.substr(0, prefix.size()) != prefix) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = file[prefix.size() + i];
    if (pattern[i] == '#' ? (c < '0' || c > '9') : c != pattern[i]) return false;
  }
  return true;
}

}  // namespace detail

/// Writes the tensors of `tensors` as a sharded checkpoint in `directory` (which must exist):
/// shards `<prefix>-00001-of-0000N.safetensors` split as `ShardOptions::max_shard_bytes` says, each
/// carrying the writer's `__metadata__`, and the index `<prefix>.safetensors.index.json`
/// (`{"metadata": {"total_size": ...}, "weight_map": {...}}`, keys sorted, 2-space indent).
/// A checkpoint that fits in one shard is written as `<prefix>.safetensors` alone unless
/// `options.always_index`.
///
/// Every file goes through a temporary file renamed into place. All shards are written and synced
/// first; only then is an old index removed, the shards renamed, and the new index written last,
/// so a failure before the renames changes nothing, and a reader never sees an index that points
/// to shards not yet in place. Finally, files of an earlier save with the same prefix that this one
/// did not write (other shard counts, a `<prefix>.safetensors` that loaders would prefer to the
/// index, or an index left over from a sharded save) are removed, as Hugging Face's `save_pretrained`
/// does; they are listed in the result.
///
/// @throws io_error if `max_shard_bytes` is 0, the prefix is not a file name or `index_metadata`
///         is not an object; otherwise as `SafetensorsWriter::write`.
inline ShardedWriteResult write_sharded(const SafetensorsWriter& tensors, const std::string& directory,
                                        const ShardOptions& options = {}) {
  using mhaprune::detail::message;
  if (options.max_shard_bytes == 0) throw io_error(message(directory, ": max_shard_bytes must be positive"));
  if (options.prefix.empty() || options.prefix.find('/') != std::string::npos) {
    throw io_error(
        message(directory, ": shard prefix ", detail::quoted(options.prefix), " is not a file name"));
  }
  if (!options.index_metadata.is_object()) {
    throw io_error(message(directory, ": ShardOptions::index_metadata must be a JSON object, got ",
                           options.index_metadata.type_name()));
  }
  const std::string dir =
      directory.size() > 1 && directory.back() == '/' ? directory.substr(0, directory.size() - 1) : directory;

  // Hugging Face's split: in order; a new shard when the next tensor does not fit; an oversized
  // tensor alone in a shard of its own, placed where it comes.
  std::vector<std::vector<const detail::PendingTensor*>> shards;
  std::vector<const detail::PendingTensor*> current;
  std::uint64_t current_size = 0;
  for (const auto& t : tensors.tensors_) {
    if (t.byte_size > options.max_shard_bytes) {
      shards.push_back({&t});
      continue;
    }
    if (!current.empty() && current_size + t.byte_size > options.max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_size = 0;
    }
    current.push_back(&t);
    current_size += t.byte_size;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));

  ShardedWriteResult result;
  result.total_size = tensors.data_size();
  const bool single = shards.size() == 1 && !options.always_index;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    result.shard_files.push_back(single ? options.prefix + ".safetensors"
                                        : detail::shard_name(options.prefix, i + 1, shards.size()));
    for (const auto* t : shards[i]) result.weight_map.emplace(t->name, result.shard_files.back());
  }
  const std::string index_name = options.prefix + ".safetensors.index.json";
  if (!single) result.index_file = index_name;

  // Phase 1: every shard complete and synced under a temporary name.
  std::vector<std::unique_ptr<detail::TempFile>> files;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    files.push_back(std::make_unique<detail::TempFile>(dir + "/" + result.shard_files[i]));
    SafetensorsWriter::write_to(*files.back(), shards[i], tensors.metadata_);
    files.back()->finish(options.write.durable);
  }
  std::unique_ptr<detail::TempFile> index_file;
  if (!single) {
    nlohmann::json metadata = options.index_metadata;
    metadata["total_size"] = result.total_size;
    const nlohmann::json index = {{"metadata", std::move(metadata)}, {"weight_map", result.weight_map}};
    const std::string text = index.dump(2) + "\n";
    index_file = std::make_unique<detail::TempFile>(dir + "/" + index_name);
    index_file->append(text.data(), text.size());
    index_file->finish(options.write.durable);
  }

  // Phase 2: no index may point at a mix of old and new shards while they are renamed.
  const std::string old_index = dir + "/" + index_name;
  if (::unlink(old_index.c_str()) == 0) {
    if (single) result.removed_files.push_back(index_name);
  } else if (errno != ENOENT) {
    throw detail::system_failure(old_index, "remove the previous index");
  }
  for (auto& f : files) f->commit(options.write.durable);
  if (index_file) index_file->commit(options.write.durable);

  // Phase 3: stale files of an earlier save with this prefix.
  std::vector<std::string> stale;
  if (!single) stale.push_back(options.prefix + ".safetensors");
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (detail::is_shard_name(name, options.prefix) &&
          std::find(result.shard_files.begin(), result.shard_files.end(), name) == result.shard_files.end()) {
        stale.push_back(name);
      }
    }
    ::closedir(d);
  }
  for (const auto& name : stale) {
    if (::unlink((dir + "/" + name).c_str()) == 0) result.removed_files.push_back(name);
  }
  std::sort(result.removed_files.begin(), result.removed_files.end());
  return result;
}

}  // namespace mhaprune::io
