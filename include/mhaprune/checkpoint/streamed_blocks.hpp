// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_assembly.hpp"
#include "mhaprune/checkpoint/block_plan.hpp"
#include "mhaprune/checkpoint/detail/direct_copy.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/checkpoint/score_blocks.hpp"
#include "mhaprune/compensation/compensate.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/io/safetensors_writer.hpp"

namespace mhaprune::checkpoint {

namespace detail {

/// A block read, pruned as planned and ready to write.
class PrunedBlock {
 public:
  virtual ~PrunedBlock() = default;
  virtual void emit(const std::string& tensor, io::ByteSink& sink) const = 0;
};

template <typename Scalar>
class PrunedBlockOf final : public PrunedBlock {
 public:
  PrunedBlockOf(const Checkpoint& ckpt, const BlockInfo& info, const BlockPlan& plan,
                const PruneOptions& options)
      : loaded_(ckpt.reader(), info), dtype_(info.dtype) {
    Eigen::VectorXd created_bias;
    if (options.compensation.method == CompensationMethod::none || plan.remove.empty()) {
      remove_heads(loaded_.block(), OriginalIds(plan.remove));
    } else {
      CompensationOutcome outcome = remove_heads_compensated(loaded_.block(), OriginalIds(plan.remove),
                                                             stats_for(info, options), options.compensation);
      created_bias = std::move(outcome.created_bias);
    }
    for (const auto& [role, name] : plan.created) {
      const io::Shape shape = plan.shapes_after.at(name);
      Eigen::VectorXd values = Eigen::VectorXd::Zero(static_cast<Index>(shape.at(0)));
      if (role == "o_bias" && created_bias.size() == values.size()) values = created_bias;
      created_[name] = std::move(values);
    }
    // The plan fixed the file's header; a pruned block that disagrees would corrupt the file.
    for (const auto& [name, shape] : plan.shapes_after) {
      if (created_.count(name) == 0 && loaded_.shape(name) != shape) {
        throw error(mhaprune::detail::message("internal error: block \"", info.name, "\", tensor \"", name,
                                              "\" was pruned to ",
                                              io::detail::shape_string(loaded_.shape(name)),
                                              " instead of the planned ", io::detail::shape_string(shape)));
      }
    }
  }

  void emit(const std::string& tensor, io::ByteSink& sink) const override {
    if (const auto it = created_.find(tensor); it != created_.end()) {
      sink.append_values(it->second, dtype_);
    } else {
      loaded_.emit(tensor, sink);
    }
  }

 private:
  LoadedBlock<Scalar> loaded_;
  io::Dtype dtype_;
  std::map<std::string, Eigen::VectorXd> created_;
};

}  // namespace detail

/// Produces the pruned blocks' tensors while a writer writes them (see
/// `SafetensorsWriter::add_streamed`): a block is read and pruned when the first of its tensors is
/// written, and freed when the last one is. At most `capacity` blocks are held at once; when the
/// file order interleaves more (tensors of one block in several dtypes or shards), the least
/// recently used block is dropped and read and pruned again when needed (pruning is
/// deterministic), so memory stays bounded whatever the number of layers.
class StreamedBlocks {
 public:
  /// How a tensor that is only a selection of the input's bytes is written.
  enum class Source {
    pruned_block,  ///< every tensor from the block read and pruned in memory
    input_file,    ///< such tensors copied from the input file by range (see `emit`)
  };

  /// @param capacity the most blocks held at once (at least 1).
  /// @param source `input_file` (what `prune_checkpoint` uses) writes kept heads' bytes straight
  ///        from the input; the bytes written are the same either way.
  StreamedBlocks(const Checkpoint& ckpt, const std::vector<BlockPlan>& plans, const PruneOptions& options,
                 std::size_t capacity = 2, Source source = Source::pruned_block)
      : ckpt_(ckpt),
        plans_(plans),
        options_(options),
        capacity_(capacity < 1 ? 1 : capacity),
        from_input_(source == Source::input_file) {
    for (std::size_t i = 0; i < plans.size(); ++i) remaining_.push_back(plans[i].shapes_after.size());
  }

  /// Writes tensor `name` of block `index`. With `Source::input_file`, a tensor that is a selection
  /// of the input's bytes (Q/K/V cut to the kept heads; O too unless compensation changes it; see
  /// `detail::direct_copy`) is copied from the input file by range, in as few runs as the kept
  /// heads allow, without reading the block into memory; everything else comes from the pruned block.
  void emit(std::size_t index, const std::string& name, io::ByteSink& sink) {
    std::optional<detail::DirectCopy> direct;
    if (from_input_) {
      direct = detail::direct_copy(ckpt_.reader(), ckpt_.blocks()[index], plans_[index], name,
                                   options_.compensation.method != CompensationMethod::none);
    }
    if (direct) {
      const io::SafetensorsReader& shard = ckpt_.reader().shard(ckpt_.reader().shard_of(name));
      const io::TensorInfo& t = shard.info(name);
      detail::emit_direct(*direct, shard.mapped_file(), shard.bytes(t), sink);
      shard.release(t);
    } else {
      get(index).emit(name, sink);
    }
    if (--remaining_[index] == 0) {
      drop(index);
      ++finished_;
      if (options_.progress) {
        options_.progress(Progress{"write", finished_, plans_.size(), ckpt_.blocks()[index].name});
      }
    }
  }

  /// How many times blocks were read and pruned (more than the block count only when evicted).
  std::size_t materialized() const noexcept { return materialized_; }
  /// The most blocks held at once.
  std::size_t peak_held() const noexcept { return peak_; }

 private:
  const detail::PrunedBlock& get(std::size_t index) {
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->first == index) {
        held_.splice(held_.begin(), held_, it);
        return *held_.front().second;
      }
    }
    while (held_.size() >= capacity_) held_.pop_back();
    const BlockInfo& info = ckpt_.blocks()[index];
    std::unique_ptr<detail::PrunedBlock> block;
    if (needs_double(ckpt_.reader(), info)) {
      block = std::make_unique<detail::PrunedBlockOf<double>>(ckpt_, info, plans_[index], options_);
    } else {
      block = std::make_unique<detail::PrunedBlockOf<float>>(ckpt_, info, plans_[index], options_);
    }
    held_.emplace_front(index, std::move(block));
    ++materialized_;
    peak_ = std::max(peak_, held_.size());
    return *held_.front().second;
  }

  void drop(std::size_t index) {
    held_.remove_if([index](const auto& entry) { return entry.first == index; });
  }

  const Checkpoint& ckpt_;
  const std::vector<BlockPlan>& plans_;
  const PruneOptions& options_;
  std::size_t capacity_;
  bool from_input_;
  std::vector<std::size_t> remaining_;
  std::list<std::pair<std::size_t, std::unique_ptr<detail::PrunedBlock>>> held_;
  std::size_t finished_ = 0, materialized_ = 0, peak_ = 0;
};

}  // namespace mhaprune::checkpoint
