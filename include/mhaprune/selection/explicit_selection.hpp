// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/selection/block_scores.hpp"

namespace mhaprune {

/// Mask policy: the caller names the heads, per block, by original id (Hugging Face `prune_heads`
/// semantics: ids stay those of the unpruned model across calls, so naming a head twice over two calls
/// is an error, not a second head). Blocks are named by their name or by their index in the list;
/// scores, target and guards are not used (the core still refuses empty blocks and ragged groups).
///
/// Throws `head_id_error` for an id that does not exist or is gone, `error` for an unknown block. The
/// interface of a mask policy: selection/concept.hpp.
class ExplicitSelection {
 public:
  static constexpr const char* name = "explicit";

  /// Adds heads to remove from the block of that name; calling again for the same block adds more.
  ExplicitSelection& remove(const std::string& block, const OriginalIds& heads) {
    auto& ids = by_name_[block];
    ids.insert(ids.end(), heads.ids.begin(), heads.ids.end());
    return *this;
  }
  /// Adds heads to remove from the block at that index in the list given to `select`.
  ExplicitSelection& remove(std::size_t block_index, const OriginalIds& heads) {
    auto& ids = by_index_[block_index];
    ids.insert(ids.end(), heads.ids.begin(), heads.ids.end());
    return *this;
  }
  bool empty() const noexcept { return by_name_.empty() && by_index_.empty(); }

  Selection select(const std::vector<BlockScores>& blocks, double /*target*/,
                   const SelectionOptions& /*options*/) const {
    for (const auto& [block, ids] : by_name_) {
      (void)ids;
      if (std::none_of(blocks.begin(), blocks.end(),
                       [&wanted = block](const BlockScores& b) { return b.name == wanted; })) {
        throw error(detail::message("explicit selection names block \"", block, "\", which is not among the ",
                                    blocks.size(), " blocks"));
      }
    }
    for (const auto& [index, ids] : by_index_) {
      (void)ids;
      if (index >= blocks.size()) {
        throw error(detail::message("explicit selection names block index ", index, ", but there are only ",
                                    blocks.size(), " blocks"));
      }
    }
    Selection out(blocks.size());
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      std::vector<Index> ids;
      if (auto it = by_name_.find(blocks[i].name); it != by_name_.end()) ids = it->second;
      if (auto it = by_index_.find(i); it != by_index_.end())
        ids.insert(ids.end(), it->second.begin(), it->second.end());
      for (Index id : ids) {
        const auto& present = blocks[i].head_ids;
        const auto at = std::find(present.begin(), present.end(), id);
        if (at == present.end()) {
          throw head_id_error(detail::message(
              "block \"", blocks[i].name, "\": original head ", id,
              id >= 0 && id < blocks[i].original_heads ? " was already removed" : " does not exist"));
        }
        const Index p = static_cast<Index>(at - present.begin());
        if (std::find(out[i].begin(), out[i].end(), p) != out[i].end()) {
          throw head_id_error(
              detail::message("block \"", blocks[i].name, "\": original head ", id, " is named twice"));
        }
        out[i].push_back(p);
      }
      std::sort(out[i].begin(), out[i].end());
    }
    return out;
  }

 private:
  std::map<std::string, std::vector<Index>> by_name_;
  std::map<std::size_t, std::vector<Index>> by_index_;
};

}  // namespace mhaprune
