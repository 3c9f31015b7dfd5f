// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/checkpoint/block_assembly.hpp"
#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/detail/score_by_row.hpp"
#include "mhaprune/checkpoint/gradient_evidence.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune::checkpoint {

namespace detail {

/// The statistics of a block, or nullptr.
inline const ActivationStats* stats_for(const BlockInfo& info, const PruneOptions& options) {
  if (options.stats == nullptr) return nullptr;
  const auto it = options.stats->find(info.stats_key());
  return it == options.stats->end() ? nullptr : &it->second;
}

inline std::string stats_hint(const BlockInfo& info, const PruneOptions& options) {
  return mhaprune::detail::message(
      "the statistics for block \"", info.name, "\" are expected under key \"", info.stats_key(),
      "\" (tensors \"", info.stats_key(), ".input.*\"), ",
      options.stats == nullptr
          ? std::string("but no statistics were given")
          : mhaprune::detail::message("but the ", options.stats->size(), " given have no such key"));
}

/// The block's scores by `criterion`, with its statistics when given; a criterion that misses
/// them says under which key they were expected.
template <typename Block>
Eigen::VectorXd score_block(AnyCriterion& criterion, const Block& block, const BlockInfo& info,
                            const PruneOptions& options) {
  const ActivationStats* stats = stats_for(info, options);
  Evidence evidence;
  if (stats) evidence.with_activations(*stats);
  const GradientNeed need = gradient_need(criterion);
  if (options.gradients && need != GradientNeed::none)
    return score_with_gradients(criterion, block, *options.gradients, evidence);
  try {
    return score_heads(criterion, block, evidence);
  } catch (const evidence_error& e) {
    if (need != GradientNeed::none) {
      throw evidence_error(mhaprune::detail::message(
          e.what(), "; ", criterion.name(),
          " reads gradient evidence: give a gradients file (PruneOptions::gradients, the tool's --grads), "
          "see io/gradients_file.hpp"));
    }
    if (stats) throw;
    throw evidence_error(mhaprune::detail::message(e.what(), "; ", stats_hint(info, options)));
  }
}

/// Calls `f(loaded)` with the block read as LoadedBlock<float>, or <double> for F64 weights.
template <typename F>
void with_loaded_block(const Checkpoint& ckpt, const BlockInfo& info, F&& f) {
  if (needs_double(ckpt.reader(), info)) {
    LoadedBlock<double> loaded(ckpt.reader(), info);
    f(loaded);
  } else {
    LoadedBlock<float> loaded(ckpt.reader(), info);
    f(loaded);
  }
}

/// A checkpoint's F32, F16 and BF16 weights, row by row, for `detail::score_by_row`.
class CheckpointRows {
 public:
  explicit CheckpointRows(const io::ShardedReader& reader) : reader_(reader) {}

  /// Whether every Q, K, V (or fused) and O weight of the block is a matrix of F32, F16 or BF16
  /// (F64 blocks are scored in double; other dtypes get `LoadedBlock`'s error).
  static bool can_read(const io::ShardedReader& reader, const BlockInfo& info) {
    const BlockTensorNames& n = info.tensors;
    for (const std::string* name : {&n.q, &n.k, &n.v, &n.qkv, &n.o}) {
      if (name->empty()) continue;
      const io::TensorInfo& t = reader.info(*name);
      if (t.shape.size() != 2 ||
          !(t.dtype == io::Dtype::F32 || t.dtype == io::Dtype::F16 || t.dtype == io::Dtype::BF16))
        return false;
    }
    return true;
  }

  Index rows(const std::string& t) const { return static_cast<Index>(reader_.info(t).shape[0]); }
  Index cols(const std::string& t) const { return static_cast<Index>(reader_.info(t).shape[1]); }
  const float* row(const std::string& t, Index r) {
    if (name_ != &t) {
      name_ = &t;
      view_.emplace(reader_.tensor(t));
      buffer_.resize(static_cast<std::size_t>(view_->shape()[1]));
      row_bytes_ = static_cast<std::size_t>(view_->info().byte_size() / view_->shape()[0]);
    }
    io::decode(view_->dtype(), view_->bytes().data() + static_cast<std::size_t>(r) * row_bytes_,
               buffer_.size(), buffer_.data());
    return buffer_.data();
  }
  void done(const std::string& t) const { reader_.shard(reader_.shard_of(t)).release(reader_.info(t)); }

 private:
  const io::ShardedReader& reader_;
  const std::string* name_ = nullptr;  // the tensor being read
  std::optional<io::TensorView> view_;
  std::size_t row_bytes_ = 0;
  std::vector<float> buffer_;
};

}  // namespace detail

/// Scores every block, one at a time (read, score, free: memory holds one block), with the
/// criterion `criterion`. Scores are in current head order, which is ascending original id.
/// With compensation requested, also checks each block's statistics (when given) against it, so
/// that a bad statistics file fails before any output exists.
/// With a gradients file, checks it against every block first (`check_gradients`) and scores the
/// gradient criteria with it (`score_with_gradients`).
/// @throws evidence_error naming the block and the expected statistics key when the criterion
///         needs activations and none are given (or saying a gradients file is needed);
///         corrupt_file_error for a gradients file that lacks a tensor or holds a bad one;
///         compensation_error for unusable statistics;
///         whatever reading or the criterion throws.
inline std::vector<Eigen::VectorXd> score_blocks(const Checkpoint& ckpt, AnyCriterion& criterion,
                                                 const PruneOptions& options) {
  if (options.gradients) check_gradients(ckpt, criterion, *options.gradients);
  std::vector<Eigen::VectorXd> scores;
  const auto& blocks = ckpt.blocks();
  for (const BlockInfo& info : blocks) {
    const ActivationStats* stats = detail::stats_for(info, options);
    const bool checks_stats = stats && options.compensation.method != CompensationMethod::none;
    const Magnitude* magnitude = criterion.target<Magnitude>();
    if (magnitude && !checks_stats && detail::CheckpointRows::can_read(ckpt.reader(), info)) {
      // Magnitude reads only weights: one row at a time, never a block of floats (same scores).
      detail::CheckpointRows rows(ckpt.reader());
      scores.push_back(detail::score_by_row(*magnitude, info, rows));
    } else {
      detail::with_loaded_block(ckpt, info, [&](auto& loaded) {
        scores.push_back(detail::score_block(criterion, loaded.block(), info, options));
        if (checks_stats) {
          mhaprune::detail::check_compensation_stats(loaded.block(), stats, options.compensation.method);
        }
      });
    }
    if (options.progress) options.progress(Progress{"score", scores.size(), blocks.size(), info.name});
  }
  return scores;
}

}  // namespace mhaprune::checkpoint
