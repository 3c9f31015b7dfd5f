// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/mask_heads.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/criteria/concept.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/schedules/concept.hpp"
#include "mhaprune/schedules/iterative.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/concept.hpp"
#include "mhaprune/selection/global_selection.hpp"

namespace mhaprune {

/// Evidence for each block, by block name; a block without an entry gets empty evidence.
using EvidenceMap = std::map<std::string, Evidence, std::less<>>;

/// The attention-head pruner: scores heads with a criterion, picks them with a mask policy, and removes
/// them in place — in one call (`prune`), or step by step inside a training loop (the hooks).
///
/// @tparam CriterionT a head-scoring criterion (mhaprune/criteria/concept.hpp): `Magnitude`, `Taylor`,
///         `WandaSp`, `AnyCriterion`, your own class or a wrapped lambda.
/// @tparam MaskPolicyT a mask policy (mhaprune/selection/concept.hpp): a class with `Selection
///         select(const std::vector<BlockScores>&, double target, const SelectionOptions&) const`:
///         `GlobalSelection`, `LocalSelection`, `ExplicitSelection`, `AnyMaskPolicy` or your own.
/// @tparam ScheduleT a schedule (mhaprune/schedules/concept.hpp): a class with `bool
///         is_pruning_step(long) const` and `double target_at(long, double) const`: `OneshotSchedule`,
///         `IterativeSchedule`, `AnySchedule` or your own.
/// @tparam Scalar the element type of the blocks.
///
/// `MhaPruner<> p; p.prune(blocks, 0.3);` removes the 30% of all heads with the lowest mean |W|,
/// globally. Targets are fractions of the blocks' original heads, cumulative across calls.
///
/// Training loop: `attach(blocks)` once; then every step `on_step_begin()` (or `on_step_begin(step)`),
/// the backward pass, `on_before_optimizer_step(evidence)`, `optimizer.step()`,
/// `on_after_optimizer_step()`. At the schedule's pruning steps heads are masked (their Q/K/V rows,
/// bias entries and O columns zeroed, see `mask_heads`) and stay masked; `finalize()` slices them out
/// for good. A masked block computes exactly what the sliced one does.
///
/// The two forms of `on_step_begin`, one per `attach` (mixing them throws `error`):
/// - `on_step_begin()` counts steps as the reference pruner (Intel Neural Compressor) does: the step is
///   the number of `on_after_optimizer_step` calls since `attach` (`optimizer_steps()`), whatever the
///   loop's own counters say, so a loop over epochs with a per-epoch step index reaches the end of the
///   schedule. Each counted step is handled once (a second call before the next optimizer step, as
///   with gradient accumulation, does nothing). A pruning step at which the criterion cannot score yet
///   because no `on_before_optimizer_step` has fed it evidence (a gradient criterion before the first
///   backward pass) is skipped and recorded (`skipped_steps()`, and the report of `finalize`).
/// - `on_step_begin(step)` prunes at the step the caller names; there, a criterion without the
///   evidence it needs throws `evidence_error`, as a pruning step the caller asked for cannot happen.
///
/// Whole-call atomicity: every block is checked, scored, selected and planned before the first one is
/// changed; if anything throws, no block is changed.
template <typename CriterionT = Magnitude, typename MaskPolicyT = GlobalSelection,
          typename ScheduleT = OneshotSchedule, typename Scalar = float>
class MhaPruner {
  static_assert(check_criterion<CriterionT, Scalar>());
  static_assert(check_mask_policy<MaskPolicyT>());
  static_assert(check_schedule<ScheduleT>());

 public:
  using Block = AttentionBlock<Scalar>;

  MhaPruner() = default;
  explicit MhaPruner(CriterionT criterion, MaskPolicyT policy = MaskPolicyT{},
                     ScheduleT schedule = ScheduleT{}, SelectionOptions options = SelectionOptions{})
      : criterion_(std::move(criterion)),
        policy_(std::move(policy)),
        schedule_(std::move(schedule)),
        options_(options) {
    options_.check();
  }

  CriterionT& criterion() noexcept { return criterion_; }
  const MaskPolicyT& policy() const noexcept { return policy_; }
  const ScheduleT& schedule() const noexcept { return schedule_; }
  const SelectionOptions& options() const noexcept { return options_; }
  void set_options(const SelectionOptions& o) {
    o.check();
    options_ = o;
  }

  /// Scores, selects and removes in one call, so that `target` of all the blocks' original heads are
  /// gone afterwards. `blocks`: a range of `AttentionBlock<Scalar>` or of pointers to them, with
  /// distinct names. Throws whatever scoring, selection or removal throws, and then no block changed.
  template <typename Blocks>
  PruneReport prune(Blocks& blocks, double target, const EvidenceMap& evidence = {}) {
    std::vector<Block*> list = pointers(blocks);
    check_names(list);
    std::vector<Eigen::VectorXd> scores;
    std::vector<BlockScores> summary;
    for (Block* b : list) {
      b->validate();
      scores.push_back(score_heads(criterion_, *b, evidence_for(evidence, b->name())));
      summary.push_back(BlockScores::of(*b, scores.back()));
    }
    const Selection chosen = policy_.select(summary, target, options_);
    return remove_all(list, chosen, scores, target);
  }

  /// Scores without removing anything: one vector per block, in current head order.
  template <typename Blocks>
  std::vector<Eigen::VectorXd> score(Blocks& blocks, const EvidenceMap& evidence = {}) {
    std::vector<Eigen::VectorXd> out;
    for (Block* b : pointers(blocks))
      out.push_back(score_heads(criterion_, *b, evidence_for(evidence, b->name())));
    return out;
  }

  // --- Training-loop hooks -----------------------------------------------------------------------

  /// Holds the blocks (which must outlive the pruner's use of them) for the hooks, aiming at
  /// `final_target`; every head starts unmasked. Removing heads from an attached block outside the
  /// pruner makes the hooks and `finalize` throw `head_id_error`, changing nothing, until it is
  /// attached again.
  template <typename Blocks>
  void attach(Blocks& blocks, double final_target) {
    if (!(final_target >= 0.0 && final_target <= 1.0)) {
      throw error(detail::message("the target sparsity must be in [0, 1], got ", final_target));
    }
    std::vector<Block*> list = pointers(blocks);
    check_names(list);
    for (Block* b : list) b->validate();
    std::vector<HeadMask> masks;
    for (Block* b : list) masks.emplace_back(b->layout().heads());
    attached_ = std::move(list);
    masks_ = std::move(masks);
    cached_scores_.assign(attached_.size(), Eigen::VectorXd());
    final_target_ = final_target;
    step_ = 0;
    optimizer_steps_ = 0;
    handled_step_ = -1;
    form_ = StepForm::none;
    skipped_.clear();
  }

  /// Start of a training step, counted by the pruner (the reference pruner's `on_step_begin`, whose
  /// argument it ignores): the step is `optimizer_steps()`. At the schedule's pruning steps, masks
  /// more heads up to the step's target (masked heads never come back). Returns true when it masked
  /// anything. Handles each counted step once: another call before the next
  /// `on_after_optimizer_step` returns false and changes nothing.
  ///
  /// A pruning step before any `on_before_optimizer_step` since `attach` (or `finalize`), at which the
  /// criterion throws `evidence_error` for want of evidence, is skipped: nothing is masked, the step
  /// and the reason are recorded (`skipped_steps()`, then the report of `finalize`), and the schedule
  /// goes on (the next pruning step aims at its own target, as in the reference pruner).
  ///
  /// @throws error after `on_step_begin(step)` since `attach` (one form per attach); otherwise as
  ///         `on_step_begin(step)`, and then nothing changed.
  bool on_step_begin() {
    use_form(StepForm::counted);
    if (handled_step_ == optimizer_steps_) return false;
    const bool any = begin_step(optimizer_steps_, true);
    handled_step_ = optimizer_steps_;
    return any;
  }

  /// Start of training step `step`, as the caller counts it: at the schedule's pruning steps, masks
  /// more heads up to the step's target (masked heads never come back). Returns true when it masked
  /// anything. Every call acts; `step()` becomes `step`.
  ///
  /// @throws error after `on_step_begin()` since `attach` (one form per attach); `evidence_error` at a
  ///         pruning step where the criterion lacks the evidence it needs (e.g. a gradient criterion
  ///         before any `on_before_optimizer_step`); `shape_error`/`head_id_error` for blocks changed
  ///         behind the pruner's back; whatever the criterion or the mask policy throws. On any
  ///         throw, no block and no mask changed.
  bool on_step_begin(long step) {
    use_form(StepForm::explicit_step);
    step_ = step;
    return begin_step(step, false);
  }

 private:
  // The step's pruning, when it is a pruning step; `may_skip`: a missing first evidence skips it.
  bool begin_step(long step, bool may_skip) {
    step_ = step;
    if (attached_.empty() || !schedule_.is_pruning_step(step)) return false;
    const double target = schedule_.target_at(step, final_target_);
    for (std::size_t i = 0; i < attached_.size(); ++i) {
      attached_[i]->validate();
      check_mask(i);
    }
    std::vector<BlockScores> summary;
    std::vector<std::vector<Index>> live;  // unmasked positions of each block
    for (std::size_t i = 0; i < attached_.size(); ++i) {
      Block& b = *attached_[i];
      Eigen::VectorXd s;
      if (cached_scores_[i].size() == b.layout().heads()) {
        s = cached_scores_[i];
      } else if (may_skip && cached_scores_[i].size() == 0) {
        try {
          s = score_heads(criterion_, b, Evidence{});
        } catch (const evidence_error& e) {
          skipped_.push_back(SkippedStep{
              step, detail::message("pruning step ", step, " skipped: no on_before_optimizer_step has given ",
                                    criterion_name(criterion_), " evidence yet (", e.what(), ")")});
          return false;
        }
      } else {
        s = score_heads(criterion_, b, Evidence{});
      }
      live.push_back(unmasked(i));
      summary.push_back(masked_summary(i, s, live.back()));
    }
    const Selection chosen = policy_.select(summary, target, options_);
    std::vector<HeadMask> next = masks_;
    bool any = false;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      for (Index p : chosen[i]) {
        next[i].remove(live[i][static_cast<std::size_t>(p)]);
        any = true;
      }
    }
    for (std::size_t i = 0; i < attached_.size(); ++i) mask_heads(*attached_[i], next[i]);
    masks_ = std::move(next);
    return any;
  }

 public:
  /// After the backward pass, before the optimizer step: feeds this step's evidence to the criterion
  /// (`update` for the ones that accumulate) and keeps each block's scores for the next pruning step.
  /// A criterion that keeps state is updated on a copy that replaces it only when every block
  /// succeeded, so evidence that one block rejects leaves the pruner as it was (when the criterion
  /// is copyable; otherwise the blocks before the failing one keep their update).
  void on_before_optimizer_step(const EvidenceMap& evidence = {}) {
    if constexpr (std::is_copy_constructible_v<CriterionT> && std::is_move_assignable_v<CriterionT>) {
      CriterionT updated = criterion_;
      std::vector<Eigen::VectorXd> next = update_and_score(updated, evidence);
      criterion_ = std::move(updated);
      cached_scores_ = std::move(next);
    } else {
      cached_scores_ = update_and_score(criterion_, evidence);
    }
  }

  /// After the optimizer step: zeroes the masked heads again (the optimizer may have moved them), and
  /// counts the optimizer step (`optimizer_steps()`, the step of the next `on_step_begin()`).
  /// @throws head_id_error for a block that lost heads outside the pruner; then nothing changed.
  void on_after_optimizer_step() {
    for (std::size_t i = 0; i < attached_.size(); ++i) check_mask(i);
    for (std::size_t i = 0; i < attached_.size(); ++i) mask_heads(*attached_[i], masks_[i]);
    ++step_;
    ++optimizer_steps_;
  }

  /// The current masks, one per attached block, over its current heads.
  const std::vector<HeadMask>& masks() const noexcept { return masks_; }
  /// The current step: the last one `on_step_begin` handled, plus one after each optimizer step.
  long step() const noexcept { return step_; }
  /// The pruner's own count of optimizer steps: `on_after_optimizer_step` calls since `attach`.
  long optimizer_steps() const noexcept { return optimizer_steps_; }
  /// The pruning steps `on_step_begin()` skipped since `attach` (or the last `finalize`), in order.
  const std::vector<SkippedStep>& skipped_steps() const noexcept { return skipped_; }
  /// The head scores the next pruning step will use, one vector per attached block (in current head
  /// order): the criterion's scores at the last `on_before_optimizer_step`, empty before the first.
  const std::vector<Eigen::VectorXd>& cached_scores() const noexcept { return cached_scores_; }

  /// Slices every masked head out of the attached blocks, for good, and reports it, with the pruning
  /// steps skipped since `attach` (or the last `finalize`); the masks and the skip record reset, the
  /// step count goes on.
  PruneReport finalize() {
    Selection chosen;
    std::vector<Eigen::VectorXd> scores;
    for (std::size_t i = 0; i < attached_.size(); ++i) {
      check_mask(i);
      chosen.push_back(masks_[i].removed().ids);
      scores.push_back(cached_scores_[i].size() == attached_[i]->layout().heads()
                           ? cached_scores_[i]
                           : Eigen::VectorXd::Zero(attached_[i]->layout().heads()));
    }
    PruneReport report = remove_all(attached_, chosen, scores, final_target_);
    report.skipped_steps = std::move(skipped_);
    skipped_.clear();
    masks_.clear();
    for (Block* b : attached_) masks_.emplace_back(b->layout().heads());
    cached_scores_.assign(attached_.size(), Eigen::VectorXd());
    return report;
  }

 private:
  enum class StepForm { none, counted, explicit_step };

  void use_form(StepForm form) {
    if (form_ != StepForm::none && form_ != form) {
      throw error(form == StepForm::counted
                      ? "MhaPruner: on_step_begin() after on_step_begin(step) since attach; use one form: "
                        "on_step_begin() counts optimizer steps itself, on_step_begin(step) takes yours"
                      : "MhaPruner: on_step_begin(step) after on_step_begin() since attach; use one form: "
                        "on_step_begin() counts optimizer steps itself, on_step_begin(step) takes yours");
    }
    form_ = form;
  }

  template <typename Blocks>
  static std::vector<Block*> pointers(Blocks& blocks) {
    std::vector<Block*> out;
    for (auto& b : blocks) {
      if constexpr (std::is_pointer_v<std::decay_t<decltype(b)>>) {
        out.push_back(b);
      } else if constexpr (std::is_same_v<std::decay_t<decltype(b)>, std::reference_wrapper<Block>>) {
        out.push_back(&b.get());
      } else {
        out.push_back(&b);
      }
    }
    return out;
  }

  static void check_names(const std::vector<Block*>& list) {
    for (std::size_t i = 0; i < list.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (list[i]->name() == list[j]->name()) {
          throw error(detail::message("two blocks are named \"", list[i]->name(),
                                      "\"; the pruner and its report need distinct names"));
        }
  }

  std::vector<Eigen::VectorXd> update_and_score(CriterionT& criterion, const EvidenceMap& evidence) const {
    std::vector<Eigen::VectorXd> scores;
    for (Block* b : attached_) {
      const Evidence& ev = evidence_for(evidence, b->name());
      update_criterion(criterion, *b, ev);
      scores.push_back(score_heads(criterion, *b, ev));
    }
    return scores;
  }

  static const Evidence& evidence_for(const EvidenceMap& evidence, const std::string& name) {
    static const Evidence none;
    const auto it = evidence.find(name);
    return it == evidence.end() ? none : it->second;
  }

  // The masks are over the heads the blocks had at attach; a block that lost heads elsewhere since
  // would have its mask read out of range, or the wrong heads sliced at finalize.
  void check_mask(std::size_t i) const {
    const Block& b = *attached_[i];
    if (masks_[i].heads() != b.layout().heads()) {
      throw head_id_error(detail::message("block \"", b.name(), "\" has ", b.layout().heads(),
                                          " heads, but the pruner's mask covers the ", masks_[i].heads(),
                                          " it had when attached; attach again after removing heads "
                                          "outside the pruner"));
    }
  }

  std::vector<Index> unmasked(std::size_t i) const {
    std::vector<Index> out;
    for (Index h = 0; h < masks_[i].heads(); ++h)
      if (masks_[i].keeps(h)) out.push_back(h);
    return out;
  }

  // The block as the policy should see it: masked heads count as already gone.
  BlockScores masked_summary(std::size_t i, const Eigen::VectorXd& s, const std::vector<Index>& live) const {
    const Block& b = *attached_[i];
    const Index r = b.layout().group_size();
    std::vector<char> group_alive(static_cast<std::size_t>(b.layout().kv_heads()), 0);
    BlockScores out;
    out.name = b.name();
    out.original_heads = b.original_heads();
    out.original_kv_heads = b.original_kv_heads();
    out.scores.resize(static_cast<Index>(live.size()));
    for (std::size_t k = 0; k < live.size(); ++k) {
      out.head_ids.push_back(b.head_ids()[static_cast<std::size_t>(live[k])]);
      out.scores(static_cast<Index>(k)) = s(live[k]);
      group_alive[static_cast<std::size_t>(live[k] / r)] = 1;
    }
    out.heads = static_cast<Index>(live.size());
    for (char alive : group_alive) out.kv_heads += alive;
    out.check();
    return out;
  }

  PruneReport remove_all(const std::vector<Block*>& list, const Selection& chosen,
                         const std::vector<Eigen::VectorXd>& scores, double target) {
    if (chosen.size() != list.size()) {
      throw error(detail::message("the mask policy returned ", chosen.size(), " selections for ", list.size(),
                                  " blocks"));
    }
    std::vector<RemovalPlan> plans;
    PruneReport report;
    report.target = target;
    for (std::size_t i = 0; i < list.size(); ++i) {
      plans.push_back(plan_removal(*list[i], Positions(chosen[i])));
      report.blocks.push_back(detail::begin_block_report(*list[i], scores[i]));
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      RemovedHeads removed = apply_removal(*list[i], std::move(plans[i]));
      detail::finish_block_report(report.blocks[i], *list[i], std::move(removed));
    }
    return report;
  }

  CriterionT criterion_{};
  MaskPolicyT policy_{};
  ScheduleT schedule_{};
  SelectionOptions options_{};
  std::vector<Block*> attached_;
  std::vector<HeadMask> masks_;
  std::vector<Eigen::VectorXd> cached_scores_;
  double final_target_ = 0.0;
  long step_ = 0;
  long optimizer_steps_ = 0;  // on_after_optimizer_step calls since attach
  long handled_step_ = -1;    // the last counted step on_step_begin() handled
  StepForm form_ = StepForm::none;
  std::vector<SkippedStep> skipped_;
};

}  // namespace mhaprune
