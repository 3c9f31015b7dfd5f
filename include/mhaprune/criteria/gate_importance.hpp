// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Options of the gate-gradient criteria.
struct GateImportanceOptions {
  /// Divide a block's scores by their L2 norm over its current heads (Michel et al.'s per-layer
  /// normalisation, so that scores of different layers can be ranked together). All-zero scores stay 0.
  bool normalize = false;
};

/// Head importance from the gradients of the loss w.r.t. per-head gates ξ_h (ξ = 1 in the model,
/// multiplying head h's output): I_h = Σ over batches of `Fn::apply(∂L/∂ξ_h)`.
///
/// @tparam Fn `static constexpr const char* name`; `static double apply(double gate_gradient)`.
///         Built-ins: `TaylorGateFn` (|g|, `Taylor`), `FisherGateFn` (g², `Fisher`).
///
/// `update(block, evidence)` adds one batch (or several: one per row of the evidence's
/// `[batches, H]` gate gradients) to the block's sums; `scores(block, evidence)` returns the sums of the
/// current heads (the evidence is not read) and throws `evidence_error` for a block never updated.
/// State is kept per block name and per ORIGINAL query head id, so it follows removals; removed heads'
/// sums are dropped at the next update. Strong guarantee for `update`. Not thread-safe.
template <typename Fn>
class GateImportance {
 public:
  /// One block's sums.
  struct BlockState {
    std::int64_t batches = 0;      ///< rows of gate gradients added so far
    std::map<Index, double> sums;  ///< I_h by original query head id

    friend bool operator==(const BlockState& a, const BlockState& b) {
      return a.batches == b.batches && a.sums == b.sums;
    }
    friend bool operator!=(const BlockState& a, const BlockState& b) { return !(a == b); }
  };

  GateImportance() = default;
  explicit GateImportance(const GateImportanceOptions& o) : options_(o) {}
  explicit GateImportance(bool normalize) : options_{normalize} {}

  static constexpr const char* name() noexcept { return Fn::name; }
  const GateImportanceOptions& options() const noexcept { return options_; }

  /// Adds the evidence's gate gradients, `[batches, H]` with one column per current query head.
  /// @throws evidence_error when there are none or one is not finite; shape_error when their column
  ///         count is not the block's current head count. Nothing changes on a throw.
  template <typename Scalar>
  void update(const AttentionBlock<Scalar>& block, const Evidence& ev) {
    const Eigen::MatrixXd& g = detail::require_gate_gradients(ev, block, name());
    const auto it = states_.find(block.name());
    const BlockState* old = it == states_.end() ? nullptr : &it->second;
    BlockState next;
    next.batches = (old ? old->batches : 0) + g.rows();
    const auto& ids = block.head_ids();
    for (Index h = 0; h < g.cols(); ++h) {
      const Index id = ids[static_cast<std::size_t>(h)];
      double sum = 0.0;
      if (old) {
        const auto prev = old->sums.find(id);
        if (prev != old->sums.end()) sum = prev->second;
      }
      for (Index b = 0; b < g.rows(); ++b) sum += Fn::apply(g(b, h));
      next.sums[id] = sum;
    }
    BlockState& slot = states_[block.name()];  // may throw bad_alloc: nothing changed yet
    slot = std::move(next);
  }

  /// The sums of the current heads (normalised if so configured).
  /// @throws evidence_error when the block was never updated or a current head has no sum.
  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& = Evidence{}) const {
    const BlockState* st = state(block.name());
    if (st == nullptr) {
      throw evidence_error(
          detail::message(name(), ": block \"", block.name(),
                          "\" has no accumulated gate gradients; call update(block, evidence) with "
                          "each batch's gate gradients before scoring"));
    }
    const auto& ids = block.head_ids();
    Eigen::VectorXd s(static_cast<Index>(ids.size()));
    for (std::size_t h = 0; h < ids.size(); ++h) {
      const auto it = st->sums.find(ids[h]);
      if (it == st->sums.end()) {
        throw evidence_error(detail::message(name(), ": block \"", block.name(),
                                             "\" has no accumulated gate gradient for original head ",
                                             ids[h]));
      }
      s(static_cast<Index>(h)) = it->second;
    }
    if (options_.normalize) {
      const double norm = s.norm();
      if (norm > 0.0) s /= norm;
    }
    return s;
  }

  /// The sums of a block, or nullptr before its first update.
  const BlockState* state(std::string_view block) const noexcept {
    const auto it = states_.find(block);
    return it == states_.end() ? nullptr : &it->second;
  }
  void reset() noexcept { states_.clear(); }
  void reset(const std::string& block) noexcept { states_.erase(block); }

 private:
  GateImportanceOptions options_{};
  std::map<std::string, BlockState, std::less<>> states_;
};

}  // namespace mhaprune
