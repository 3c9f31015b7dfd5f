// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/system_error.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/gguf_reader.hpp"
#include "mhaprune/io/gguf_value.hpp"

// Split GGUF models, as llama.cpp's gguf-split writes them (tools/gguf-split/gguf-split.cpp) and
// its model loader reads them (src/llama-model-loader.cpp): shards named
// "<prefix>-00001-of-00003.gguf", each holding the KVs split.no (UINT16, counted from 0),
// split.count (UINT16) and split.tensors.count (INT32, the tensors of all shards); the model's own
// KVs are in the first shard only; a tensor is in exactly one shard.

namespace mhaprune::io {

inline constexpr std::string_view gguf_key_split_no = "split.no";
inline constexpr std::string_view gguf_key_split_count = "split.count";
inline constexpr std::string_view gguf_key_split_tensors_count = "split.tensors.count";

/// "<prefix>-%05d-of-%05d.gguf" as llama.cpp's gguf-split names shards.
/// @param split_no 1-based number of the shard (the file name is 1-based; the split.no KV is not).
/// @throws io_error unless 1 <= split_no <= split_count <= 65535.
inline std::string gguf_split_path(const std::string& prefix, int split_no, int split_count) {
  if (split_no < 1 || split_no > split_count || split_count > 65535) {
    throw io_error(mhaprune::detail::message("gguf_split_path: shard ", split_no, " of ", split_count,
                                             " is not a shard number (1 <= no <= count <= 65535)"));
  }
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", split_no, split_count);
  return prefix + suffix;
}

/// If `path` names a shard ("<prefix>-00002-of-00003.gguf": exactly five digits each, 1 <= number
/// <= count, a non-empty prefix), its prefix, 1-based number and count; otherwise nullopt.
inline std::optional<std::tuple<std::string, int, int>> parse_gguf_split_path(const std::string& path) {
  constexpr std::size_t suffix_size = 20;  // "-NNNNN-of-NNNNN.gguf"
  if (path.size() <= suffix_size) return std::nullopt;
  const std::string_view s = std::string_view(path).substr(path.size() - suffix_size);
  const auto number = [&s](std::size_t at) {
    int v = 0;
    for (std::size_t i = at; i < at + 5; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s[0] != '-' || s.substr(6, 4) != "-of-" || s.substr(15) != ".gguf") return std::nullopt;
  const int no = number(1), count = number(10);
  if (no < 1 || count < 1 || no > count) return std::nullopt;
  std::string prefix = path.substr(0, path.size() - suffix_size);
  if (prefix.back() == '/') return std::nullopt;
  return std::make_tuple(std::move(prefix), no, count);
}

/// The three KVs a shard of a split model holds, typed as gguf-split writes them.
/// @param split_no 1-based (stored as split.no = split_no - 1).
/// @param total_tensors tensors in all shards together.
/// @throws io_error unless 1 <= split_no <= split_count <= 65535 and 0 <= total_tensors < 2^31.
inline std::vector<GgufKv> gguf_split_kvs(int split_no, int split_count, std::int64_t total_tensors) {
  if (split_no < 1 || split_no > split_count || split_count > 65535 || total_tensors < 0 ||
      total_tensors > std::numeric_limits<std::int32_t>::max()) {
    throw io_error(mhaprune::detail::message("gguf_split_kvs: shard ", split_no, " of ", split_count,
                                             " with ", total_tensors,
                                             " tensors cannot be described by split KVs"));
  }
  return {
      GgufKv{std::string(gguf_key_split_no), GgufValue::uint16(static_cast<std::uint16_t>(split_no - 1))},
      GgufKv{std::string(gguf_key_split_count), GgufValue::uint16(static_cast<std::uint16_t>(split_count))},
      GgufKv{std::string(gguf_key_split_tensors_count),
             GgufValue::int32(static_cast<std::int32_t>(total_tensors))}};
}

/// One GGUF model: a single file, or the set of split files, opened from any one of them and
/// checked as a whole. Move-only (it holds the readers).
class GgufModelFiles {
 public:
  /// Opens `path`. A path named like a shard ("...-00002-of-00003.gguf", count above 1) opens every
  /// shard of the set; each must exist, parse (`GgufReader`) and agree with its name: split.no
  /// (UINT16) = its number - 1, split.count (UINT16) = the count; split.tensors.count (INT32, in
  /// shard 1, and in every other shard that has it) = the tensors of all shards; no tensor name is
  /// in two shards. Any other path opens one file, which must not claim split.count > 1.
  /// @throws io_error if a file cannot be opened, or a shard of the set does not exist;
  ///         corrupt_file_error (naming the shard and the key or tensor) if the shards disagree;
  ///         anything GgufReader throws.
  static GgufModelFiles open(const std::string& path) {
    GgufModelFiles m;
    m.path_ = path;
    const auto parsed = parse_gguf_split_path(path);
    if (!parsed || std::get<2>(*parsed) == 1) {
      m.shards_.emplace_back(path);
      const GgufReader& r = m.shards_.front();
      if (const std::optional<std::int64_t> count = split_value(r, gguf_key_split_count, GgufType::UINT16);
          count && *count > 1) {
        throw corrupt_file_error(mhaprune::detail::message(
            path, ": key \"split.count\" is ", *count,
            ", so this is one shard of a split model, but its name ",
            parsed ? "says it is the only one" : "is not a shard name (<prefix>-00001-of-00002.gguf)",
            "; open the model by its shard names as gguf-split wrote them"));
      }
      m.index();
      return m;
    }
    const auto& [prefix, opened_no, count] = *parsed;
    (void)opened_no;
    m.shards_.reserve(static_cast<std::size_t>(count));
    for (int no = 1; no <= count; ++no) {
      const std::string shard = gguf_split_path(prefix, no, count);
      struct stat st;
      if (::stat(shard.c_str(), &st) != 0 && errno == ENOENT) {
        throw io_error(mhaprune::detail::message(path, ": shard ", no, " of ", count, " is missing: ", shard,
                                                 " does not exist (a split model needs all its shards)"));
      }
      m.shards_.emplace_back(shard);
    }
    std::uint64_t total = 0;
    for (int no = 1; no <= count; ++no) {
      const GgufReader& r = m.shards_[static_cast<std::size_t>(no - 1)];
      const auto split_no = split_value(r, gguf_key_split_no, GgufType::UINT16);
      const auto split_count = split_value(r, gguf_key_split_count, GgufType::UINT16);
      if (!split_no || !split_count) {
        throw corrupt_file_error(mhaprune::detail::message(
            r.path(), ": no key \"", !split_no ? gguf_key_split_no : gguf_key_split_count,
            "\", yet the name says shard ", no, " of ", count,
            " (gguf-split writes split.no, split.count and split.tensors.count in every shard)"));
      }
      if (*split_count != count) {
        throw corrupt_file_error(mhaprune::detail::message(r.path(), ": key \"split.count\" is ",
                                                           *split_count, " but the file name says ", count,
                                                           " shards: shard of another split"));
      }
      if (*split_no != no - 1) {
        throw corrupt_file_error(mhaprune::detail::message(
            r.path(), ": key \"split.no\" is ", *split_no, " but the file name says shard ", no, " of ",
            count, " (split.no counts from 0, so it should be ", no - 1, "): shard renamed or mismatched"));
      }
      total += r.tensors().size();
    }
    const GgufReader& first = m.shards_.front();
    const auto expected = split_value(first, gguf_key_split_tensors_count, GgufType::INT32);
    if (!expected) {
      throw corrupt_file_error(mhaprune::detail::message(
          first.path(), ": no key \"split.tensors.count\" (INT32) in the first shard of a split model"));
    }
    for (const GgufReader& r : m.shards_) {
      const auto here = split_value(r, gguf_key_split_tensors_count, GgufType::INT32);
      if (here && *here != *expected) {
        throw corrupt_file_error(mhaprune::detail::message(r.path(), ": key \"split.tensors.count\" is ",
                                                           *here, " but the first shard says ", *expected,
                                                           ": shards of different splits"));
      }
    }
    m.index();
    if (static_cast<std::uint64_t>(*expected) != total) {
      throw corrupt_file_error(mhaprune::detail::message(
          first.path(), ": key \"split.tensors.count\" is ", *expected, " but the ", count, " shards hold ",
          total, " tensors: a shard is missing tensors or from another split"));
    }
    return m;
  }

  GgufModelFiles(GgufModelFiles&&) = default;
  GgufModelFiles& operator=(GgufModelFiles&&) = default;

  /// The path given to `open`.
  const std::string& path() const noexcept { return path_; }
  /// The files, in split order (one for a single file).
  const std::vector<GgufReader>& shards() const noexcept { return shards_; }
  bool is_split() const noexcept { return shards_.size() > 1; }
  /// Shard 1 (or the single file): it holds general.* and the model's KVs.
  const GgufReader& first() const noexcept { return shards_.front(); }
  /// The value of `key` in shard 1, or null.
  const GgufValue* find(std::string_view key) const noexcept { return first().find(key); }
  /// Tensors of all shards.
  std::size_t tensor_count() const noexcept { return names_.size(); }

  /// The tensor called `name` and (if `shard` is not null) the index of its shard; null if no
  /// shard has it.
  const GgufTensorInfo* find_tensor(std::string_view name, std::size_t* shard = nullptr) const noexcept {
    const auto it = std::lower_bound(names_.begin(), names_.end(), name,
                                     [this](const Where& w, std::string_view n) { return info(w).name < n; });
    if (it == names_.end() || info(*it).name != name) return nullptr;
    if (shard != nullptr) *shard = it->shard;
    return &info(*it);
  }

  /// As find_tensor.
  /// @throws missing_tensor_error naming the file and listing similar names the model has.
  const GgufTensorInfo& tensor(std::string_view name, std::size_t* shard = nullptr) const {
    if (const GgufTensorInfo* t = find_tensor(name, shard)) return *t;
    std::vector<std::string_view> names;
    names.reserve(names_.size());
    for (const GgufReader& r : shards_)
      for (const GgufTensorInfo& t : r.tensors()) names.push_back(t.name);
    throw missing_tensor_error(mhaprune::detail::message(
        path_, ": no tensor ", detail::quoted(name), " (the model has ", names.size(), " tensor",
        names.size() == 1 ? "" : "s",
        is_split() ? mhaprune::detail::message(" in ", shards_.size(), " shards") : "",
        names.empty() ? "" : ", e.g. ", detail::similar_names(names, name), ")"));
  }

  /// The tensor's data inside its shard's map; no copy.
  /// @throws missing_tensor_error as `tensor`.
  ByteSpan bytes(std::string_view name) const {
    std::size_t shard = 0;
    const GgufTensorInfo& t = tensor(name, &shard);
    return shards_[shard].bytes(t);
  }
  /// Drops the tensor's pages from the resident set (nothing if there is no such tensor).
  void release(std::string_view name) const noexcept {
    std::size_t shard = 0;
    if (const GgufTensorInfo* t = find_tensor(name, &shard)) shards_[shard].release(*t);
  }

  /// Every tensor name, shard order then info order.
  std::vector<std::string> tensor_names() const {
    std::vector<std::string> out;
    out.reserve(names_.size());
    for (const GgufReader& r : shards_)
      for (const GgufTensorInfo& t : r.tensors()) out.push_back(t.name);
    return out;
  }

 private:
  GgufModelFiles() = default;

  /// The integer value of a split key of type `type` in `r`, nullopt if absent.
  /// @throws corrupt_file_error if present with another type.
  static std::optional<std::int64_t> split_value(const GgufReader& r, std::string_view key, GgufType type) {
    const GgufValue* v = r.find(key);
    if (v == nullptr) return std::nullopt;
    if (v->type() != type) {
      throw corrupt_file_error(mhaprune::detail::message(r.path(), ": key \"", key, "\" has type ",
                                                         to_string(v->type()), "; gguf-split writes ",
                                                         to_string(type), " (llama.cpp needs that type)"));
    }
    return v->as_int();
  }

  struct Where {
    std::size_t shard, index;
  };
  const GgufTensorInfo& info(const Where& w) const noexcept { return shards_[w.shard].tensors()[w.index]; }

  /// Sorts every tensor of every shard by name (lookups then never allocate) and refuses a name
  /// found in two shards.
  void index() {
    for (std::size_t s = 0; s < shards_.size(); ++s)
      for (std::size_t i = 0; i < shards_[s].tensors().size(); ++i) names_.push_back(Where{s, i});
    std::stable_sort(names_.begin(), names_.end(),
                     [this](const Where& a, const Where& b) { return info(a).name < info(b).name; });
    for (std::size_t k = 1; k < names_.size(); ++k) {
      const Where &first = names_[k - 1], &again = names_[k];
      if (info(first).name == info(again).name) {
        throw corrupt_file_error(mhaprune::detail::message(
            shards_[again.shard].path(), ": tensor ", detail::quoted(info(again).name), " is also in shard ",
            first.shard + 1, " (", shards_[first.shard].path(), "): duplicate tensor across shards"));
      }
    }
  }

  std::string path_;
  std::vector<GgufReader> shards_;
  std::vector<Where> names_;  // sorted by tensor name
};

}  // namespace mhaprune::io
