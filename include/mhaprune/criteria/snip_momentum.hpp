// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/detail/run_kernels.hpp"
#include "mhaprune/criteria/element_wise.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/reduction.hpp"
#include "mhaprune/criteria/role_weights.hpp"
#include "mhaprune/criteria/snip.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Options of `SnipMomentum`.
struct SnipMomentumOptions {
  double alpha = 0.9;  ///< decay of the running score, finite and >= 0
  double beta = 1.0;   ///< weight of each step's |W ⊙ G|, finite and >= 0
  Reduction reduce = Reduction::mean;
  RoleWeights weights{};
};

/// SNIP with momentum (the reference pruner's "snip_momentum"): a running element score
/// S ← α·S + β·|W ⊙ G|, updated once per optimizer step with that step's weights and gradients, and
/// head scores from S (reduced per slice and combined like `ElementWise`).
///
/// State, per block (keyed by `block.name()`) and per slice (keyed by role and ORIGINAL head id, so
/// it follows removals; a removed head's state is dropped at the next `update`):
/// - `mean`, `sum`: both are linear, so the slice sum of S obeys the same recurrence,
///   ΣS ← α·ΣS + β·Σ|W ⊙ G|. Only that one double per (role, head) is kept: O(heads) memory.
/// - `max`, `l2`: not linear, so S itself is kept, one float per weight element (as much memory as
///   the block's weights in fp32).
///
/// `update` needs a gradient for every Q/K/V/O weight tensor of the block (see `Evidence`); `scores`
/// reads only the state (its evidence argument is ignored) and throws `evidence_error` for a block
/// that was never updated.
///
/// Strong guarantee: a throwing `update` leaves the state as it was. Not thread-safe.
class SnipMomentum {
 public:
  using SliceKey = std::pair<Role, Index>;  ///< (role, original query or key/value head id)

  /// One block's running scores.
  struct BlockState {
    Index head_dim = 0;
    Index model_dim = 0;
    std::int64_t steps = 0;                           ///< updates so far
    std::map<SliceKey, double> sums;                  ///< ΣS per slice (`mean`, `sum`)
    std::map<SliceKey, std::vector<float>> elements;  ///< S per slice, in storage visit order (`max`, `l2`)

    friend bool operator==(const BlockState& a, const BlockState& b) {
      return a.head_dim == b.head_dim && a.model_dim == b.model_dim && a.steps == b.steps &&
             a.sums == b.sums && a.elements == b.elements;
    }
    friend bool operator!=(const BlockState& a, const BlockState& b) { return !(a == b); }
  };

  /// @throws config_error for a negative or non-finite alpha or beta, or invalid role weights.
  explicit SnipMomentum(const SnipMomentumOptions& o = SnipMomentumOptions{}) : options_(o) {
    for (double v : {o.alpha, o.beta}) {
      if (!std::isfinite(v) || v < 0.0) {
        throw config_error(detail::message("snip_momentum: alpha = ", o.alpha, ", beta = ", o.beta,
                                           "; each must be finite and >= 0"));
      }
    }
    o.weights.validate("snip_momentum");
  }
  explicit SnipMomentum(Reduction reduce, double alpha = 0.9, double beta = 1.0, RoleWeights weights = {})
      : SnipMomentum(SnipMomentumOptions{alpha, beta, reduce, weights}) {}

  static constexpr const char* name() noexcept { return "snip_momentum"; }
  const SnipMomentumOptions& options() const noexcept { return options_; }

  /// One optimizer step: folds this step's |W ⊙ G| into the block's running scores.
  /// @throws what `AttentionBlock::validate` throws; `evidence_error` for a missing gradient,
  ///         `shape_error` for a mis-shaped one or a block whose head size or width changed since the
  ///         last update. Nothing changes on a throw.
  template <typename Scalar>
  void update(const AttentionBlock<Scalar>& block, const Evidence& ev) {
    block.validate();
    const auto grads = detail::gradients_for<SnipFn>(block, ev, name());
    const auto it = states_.find(block.name());
    if (it != states_.end()) check_dims(block, it->second);
    if (linear()) {
      update_sums(block, ev, it == states_.end() ? nullptr : &it->second);
    } else {
      update_elements(block, grads);
    }
  }

  /// One score per current query head from the running scores (the evidence is not read).
  /// @throws evidence_error when the block was never updated; shape_error when its head size or width
  ///         changed since.
  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& = Evidence{}) const {
    block.validate();
    const BlockState* st = state(block.name());
    if (st == nullptr) {
      throw evidence_error(
          detail::message(name(), ": block \"", block.name(),
                          "\" has no running scores yet; call update(block, evidence) once per "
                          "optimizer step before scoring"));
    }
    check_dims(block, *st);
    const HeadLayout& L = block.layout();
    const double count = static_cast<double>(L.head_dim() * L.model_dim());
    RoleNumbers n{Eigen::VectorXd(L.heads()), Eigen::VectorXd(L.kv_heads()), Eigen::VectorXd(L.kv_heads()),
                  Eigen::VectorXd(L.heads())};
    Eigen::VectorXd* slots[4] = {&n.query, &n.key, &n.value, &n.output};
    const Role roles[4] = {Role::query, Role::key, Role::value, Role::output};
    for (int k = 0; k < 4; ++k) {
      Eigen::VectorXd& out = *slots[k];
      for (Index u = 0; u < out.size(); ++u) {
        const SliceKey key{roles[k], original_unit(block, roles[k], u)};
        out(u) = linear() ? slice_sum(block, *st, key) : reduce_elements(block, *st, key);
        if (options_.reduce == Reduction::mean) out(u) /= count;
      }
    }
    return combine_roles(L, n, options_.weights);
  }

  /// The running scores of a block, or nullptr before its first update.
  const BlockState* state(std::string_view block) const noexcept {
    const auto it = states_.find(block);
    return it == states_.end() ? nullptr : &it->second;
  }
  /// Forgets every block's running scores.
  void reset() noexcept { states_.clear(); }
  /// Forgets one block's running scores.
  void reset(const std::string& block) noexcept { states_.erase(block); }

 private:
  bool linear() const noexcept {
    return options_.reduce == Reduction::mean || options_.reduce == Reduction::sum;
  }

  template <typename Scalar>
  static Index original_unit(const AttentionBlock<Scalar>& block, Role role, Index unit) {
    const bool kv = role == Role::key || role == Role::value;
    return (kv ? block.kv_head_ids() : block.head_ids())[static_cast<std::size_t>(unit)];
  }

  template <typename Scalar>
  static void check_dims(const AttentionBlock<Scalar>& block, const BlockState& st) {
    const HeadLayout& L = block.layout();
    if (st.head_dim != L.head_dim() || st.model_dim != L.model_dim()) {
      throw shape_error(detail::message(
          name(), ": block \"", block.name(), "\" has d=", L.head_dim(), ", D=", L.model_dim(),
          " but its running scores were built for d=", st.head_dim, ", D=", st.model_dim));
    }
  }

  template <typename Scalar>
  static std::string missing_slice(const AttentionBlock<Scalar>& block, const SliceKey& key) {
    return detail::message(name(), ": block \"", block.name(), "\" has no running score for the ",
                           to_string(key.first), " slice of original head ", key.second);
  }

  template <typename Scalar>
  double slice_sum(const AttentionBlock<Scalar>& block, const BlockState& st, const SliceKey& key) const {
    const auto it = st.sums.find(key);
    if (it == st.sums.end()) throw evidence_error(missing_slice(block, key));
    return it->second;
  }

  template <typename Scalar>
  double reduce_elements(const AttentionBlock<Scalar>& block, const BlockState& st,
                         const SliceKey& key) const {
    const auto it = st.elements.find(key);
    if (it == st.elements.end()) throw evidence_error(missing_slice(block, key));
    const float* s = it->second.data();
    const auto n = static_cast<Index>(it->second.size());
    if (options_.reduce == Reduction::max)
      return detail::reduce_run<detail::IdentityFn, Reduction::max>(s, s, 1, n);
    return std::sqrt(detail::reduce_run<detail::IdentityFn, Reduction::l2>(s, s, 1, n));
  }

  // mean/sum: the new slice sums are computed aside, then swapped in.
  template <typename Scalar>
  void update_sums(const AttentionBlock<Scalar>& block, const Evidence& ev, const BlockState* old) {
    const RoleNumbers step = element_wise_numbers<SnipFn>(block, ev, Reduction::sum, name());
    const HeadLayout& L = block.layout();
    BlockState next;
    next.head_dim = L.head_dim();
    next.model_dim = L.model_dim();
    next.steps = old ? old->steps + 1 : 1;
    const Eigen::VectorXd* slots[4] = {&step.query, &step.key, &step.value, &step.output};
    const Role roles[4] = {Role::query, Role::key, Role::value, Role::output};
    for (int k = 0; k < 4; ++k) {
      for (Index u = 0; u < slots[k]->size(); ++u) {
        const SliceKey key{roles[k], original_unit(block, roles[k], u)};
        double prev = 0.0;
        if (old) {
          const auto it = old->sums.find(key);
          if (it != old->sums.end()) prev = it->second;
        }
        next.sums[key] = options_.alpha * prev + options_.beta * (*slots[k])(u);
      }
    }
    BlockState& slot = states_[block.name()];  // may throw bad_alloc: nothing changed yet
    slot = std::move(next);                    // noexcept
  }

  // max/l2: S is large, so it is updated in place once every slice it needs exists.
  template <typename Scalar>
  void update_elements(const AttentionBlock<Scalar>& block, const std::vector<const GradientView*>& grads) {
    const HeadLayout& L = block.layout();
    const bool created = states_.find(block.name()) == states_.end();
    BlockState& st = states_[block.name()];
    std::vector<SliceKey> added;
    // Per tensor, the state of each segment (nullptr: not a Q/K/V/O slice).
    std::vector<std::vector<float*>> seg_state(block.tensors().size());
    try {
      for (std::size_t i = 0; i < block.tensors().size(); ++i) {
        const BoundTensor<Scalar>& t = block.tensors()[i];
        if (!detail::is_scored_weight(t)) continue;
        seg_state[i].assign(t.segments.size(), nullptr);
        for (std::size_t s = 0; s < t.segments.size(); ++s) {
          const Segment& seg = t.segments[s];
          if (detail::role_slot(seg.role) < 0) continue;
          const SliceKey key{seg.role, original_unit(block, seg.role, seg.unit)};
          const auto size = static_cast<std::size_t>(seg.width * t.other_extent());
          auto it = st.elements.find(key);
          if (it == st.elements.end()) {
            it = st.elements.emplace(key, std::vector<float>(size, 0.0f)).first;
            added.push_back(key);
          }
          seg_state[i][s] = it->second.data();
        }
      }
    } catch (...) {
      for (const SliceKey& key : added) st.elements.erase(key);
      if (created) states_.erase(block.name());
      throw;
    }

    // Nothing below throws.
    for (std::size_t i = 0; i < block.tensors().size(); ++i) {
      const BoundTensor<Scalar>& t = block.tensors()[i];
      if (!detail::is_scored_weight(t)) continue;
      const Scalar* w = t.ref.data();
      const StorageOrder order = t.ref.order();
      const Index length = detail::line_geometry(t).length;
      const GradientView& gv = *grads[i];
      detail::with_dtype(gv.dtype, gv.data, [&](const auto* g) {
        detail::for_each_run(t, [&](Index si, Index line, Index begin, Index n, Index offset) {
          float* s = seg_state[i][static_cast<std::size_t>(si)];
          if (s == nullptr) return;
          const detail::GradientRun gr = detail::gradient_run(gv, order, line, begin);
          detail::momentum_run<SnipFn>(w + line * length + begin, g + gr.start, gr.stride, n, s + offset,
                                       options_.alpha, options_.beta);
        });
      });
    }
    for (auto it = st.elements.begin(); it != st.elements.end();) {
      const bool kv = it->first.first == Role::key || it->first.first == Role::value;
      const auto& ids = kv ? block.kv_head_ids() : block.head_ids();
      const bool current = std::find(ids.begin(), ids.end(), it->first.second) != ids.end();
      it = current ? std::next(it) : st.elements.erase(it);
    }
    st.head_dim = L.head_dim();
    st.model_dim = L.model_dim();
    ++st.steps;
  }

  SnipMomentumOptions options_;
  std::map<std::string, BlockState, std::less<>> states_;
};

}  // namespace mhaprune
