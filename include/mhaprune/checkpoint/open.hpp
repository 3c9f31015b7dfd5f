// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_assembly.hpp"
#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/detect.hpp"
#include "mhaprune/checkpoint/json_file.hpp"
#include "mhaprune/checkpoint/model_config.hpp"
#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/checkpoint/user_preset.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/sharded.hpp"

namespace mhaprune::checkpoint {

/// How `Checkpoint::open` reads a checkpoint.
struct OpenOptions {
  /// A user preset file (see `preset_from_json`), used instead of detection.
  std::optional<std::string> preset_file;
};

namespace detail {

inline bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

inline std::string trim_slash(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

/// config.json of `directory` as JSON, or an empty object when there is none.
inline nlohmann::json read_config(const std::string& directory) {
  const std::string path = directory + "/config.json";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return nlohmann::json::object();
  const nlohmann::json j = read_json_file(path, "config.json");
  if (!j.is_object()) throw preset_error(mhaprune::detail::message(path, ": not a JSON object"));
  return j;
}

}  // namespace detail

/// A Hugging Face-style checkpoint opened for inspection, scoring and pruning: its tensors (memory
/// mapped, nothing read yet), its config.json, its architecture and every attention block, found and
/// checked against the tensor shapes.
///
///     auto ckpt = mhaprune::checkpoint::Checkpoint::open("models/tiny-qwen2");
///     for (const auto& b : ckpt.blocks()) std::cout << b.name << ": " << b.layout.heads() << " heads\n";
class Checkpoint {
 public:
  /// Opens a checkpoint directory (its `model.safetensors`, else `model.safetensors.index.json`),
  /// an index file or a single safetensors file; config.json is read from the same directory.
  /// The architecture comes from the user preset if given, else `detect_architecture`; head counts
  /// from config.json (see `read_head_counts`), and for a checkpoint pruned before, per block from
  /// its `mhaprune` section or `pruned_heads` (see `read_prune_history`).
  /// @throws io_error / corrupt_file_error / unsupported_dtype_error / missing_tensor_error for
  ///         unreadable or broken files; preset_error when the architecture is unknown or the
  ///         config, preset and tensor shapes disagree (see `find_blocks`), or no block is found.
  static Checkpoint open(const std::string& path, const OpenOptions& options = {}) {
    Checkpoint c;
    c.path_ = detail::trim_slash(path);
    c.reader_ = std::make_unique<io::ShardedReader>(io::ShardedReader::open(c.path_));
    c.directory_ = detail::is_directory(c.path_) ? c.path_ : c.reader_->directory();
    const std::string& opened = c.reader_->path();
    const bool index = opened.size() >= 5 && opened.compare(opened.size() - 5, 5, ".json") == 0;
    c.from_directory_ = detail::is_directory(c.path_) || index;
    c.config_ = detail::read_config(c.directory_);
    std::vector<std::string> names;
    for (const auto& [name, file] : c.reader_->weight_map()) names.push_back(name);
    if (options.preset_file) {
      c.preset_ = read_user_preset(*options.preset_file);
      c.detected_from_ = mhaprune::detail::message("user preset ", *options.preset_file);
    } else {
      Detection d = detect_architecture(c.config_, names);
      c.preset_ = std::move(d.preset);
      c.detected_from_ = std::move(d.detected_from);
    }
    c.counts_ = read_head_counts(c.config_, c.preset_);
    c.history_ = read_prune_history(c.config_, c.preset_, c.counts_);
    c.blocks_ = find_blocks(*c.reader_, c.preset_, c.counts_, c.history_);
    if (c.blocks_.empty()) {
      throw preset_error(mhaprune::detail::message(c.path_, ": architecture \"", c.preset_.name, "\" (",
                                                   c.detected_from_, ") but no attention block matches \"",
                                                   c.preset_.block_pattern, ".", c.preset_.o_weight, "\""));
    }
    for (const auto& b : c.blocks_) c.block_tensors_.insert(b.tensor_names.begin(), b.tensor_names.end());
    return c;
  }

  /// The preset's name: "bert", "vit", "gpt2", "llama", "gpt_neox", or the user preset's.
  const std::string& architecture() const noexcept { return preset_.name; }
  /// How the architecture was recognised, e.g. `config.json model_type "qwen2"`.
  const std::string& detected_from() const noexcept { return detected_from_; }
  /// The path opened (directory, index or file), without a trailing slash.
  const std::string& path() const noexcept { return path_; }
  /// The directory holding the checkpoint's files (and config.json).
  const std::string& directory() const noexcept { return directory_; }
  /// True when opened as a directory or index: the other files of the directory belong to it
  /// and are copied into a pruned checkpoint.
  bool opened_as_directory() const noexcept { return from_directory_; }
  /// config.json (an empty object if there is none).
  const nlohmann::json& config() const noexcept { return config_; }
  const std::vector<BlockInfo>& blocks() const noexcept { return blocks_; }
  const io::ShardedReader& reader() const noexcept { return *reader_; }
  const ArchitecturePreset& preset() const noexcept { return preset_; }
  /// The unpruned model's head counts from config.json or the preset.
  const HeadCounts& head_counts() const noexcept { return counts_; }
  /// Earlier pruning recorded in config.json, if any.
  const std::optional<PruneHistory>& history() const noexcept { return history_; }
  /// True for a tensor some block binds.
  bool is_block_tensor(const std::string& name) const { return block_tensors_.count(name) != 0; }

  /// Elements of every tensor of the checkpoint.
  std::uint64_t parameter_count() const {
    std::uint64_t n = 0;
    for (const auto& [name, file] : reader_->weight_map()) n += reader_->info(name).element_count();
    return n;
  }

 private:
  Checkpoint() = default;

  std::string path_, directory_, detected_from_;
  bool from_directory_ = false;
  std::unique_ptr<io::ShardedReader> reader_;
  nlohmann::json config_ = nlohmann::json::object();
  ArchitecturePreset preset_;
  HeadCounts counts_;
  std::optional<PruneHistory> history_;
  std::vector<BlockInfo> blocks_;
  std::set<std::string> block_tensors_;
};

}  // namespace mhaprune::checkpoint
