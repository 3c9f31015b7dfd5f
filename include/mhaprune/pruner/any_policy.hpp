// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mhaprune/core/detail/erased_value.hpp"
#include "mhaprune/schedules/concept.hpp"
#include "mhaprune/schedules/iterative.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/concept.hpp"
#include "mhaprune/selection/global_selection.hpp"

/// A mask policy and a schedule chosen at run time (from a config), the way `AnyCriterion` holds a
/// criterion: the same design (core/detail/erased_value.hpp), so all three copy, name, report a
/// moved-from use and give back what they hold (`target<T>()`) alike.
namespace mhaprune {

/// Any mask policy behind one type (see selection/concept.hpp), held by value: copying an
/// `AnyMaskPolicy` copies the policy. It is itself a mask policy. Default-constructed it holds
/// `GlobalSelection`.
///
/// Throws `config_error` when copying a policy that cannot be copied, or when used after it was moved
/// from; and whatever the policy throws.
class AnyMaskPolicy {
 public:
  AnyMaskPolicy() : AnyMaskPolicy(GlobalSelection{}) {}

  /// @tparam P a mask policy (selection/concept.hpp).
  /// @param name for messages; defaults to the policy's `name`, or "mask_policy".
  template <typename P, typename = std::enable_if_t<!std::is_same_v<std::decay_t<P>, AnyMaskPolicy>>>
  AnyMaskPolicy(P policy, std::string name = {})  // NOLINT(google-explicit-constructor): a policy is-a policy
      : erased_(std::move(policy), std::move(name)) {
    static_assert(check_mask_policy<P>());
  }

  Selection select(const std::vector<BlockScores>& blocks, double target,
                   const SelectionOptions& options) const {
    return erased_.get().select(blocks, target, options);
  }

  const std::string& name() const noexcept { return erased_.name(); }
  /// Renames it (for messages).
  void rename(std::string name) { erased_.rename(std::move(name)); }

  /// The held policy, if it is a `P`, else nullptr.
  template <typename P>
  P* target() noexcept {
    return erased_.template target<P>();
  }
  template <typename P>
  const P* target() const noexcept {
    return erased_.template target<P>();
  }

 private:
  struct Concept : detail::ErasedConcept<Concept> {
    static constexpr const char* owner = "AnyMaskPolicy";
    static constexpr const char* kind = "mask policy";
    template <typename P>
    static std::string name_of(const P& policy) {
      return mask_policy_name(policy);
    }

    virtual Selection select(const std::vector<BlockScores>& blocks, double target,
                             const SelectionOptions& options) const = 0;
  };

  template <typename P>
  struct Model final : detail::ErasedModel<Concept, P, Model<P>> {
    using detail::ErasedModel<Concept, P, Model<P>>::ErasedModel;
    Selection select(const std::vector<BlockScores>& blocks, double target,
                     const SelectionOptions& options) const override {
      return this->held.select(blocks, target, options);
    }
  };

  detail::ErasedValue<Concept, Model> erased_;
};

/// Any schedule behind one type (see schedules/concept.hpp), held by value: copying an `AnySchedule`
/// copies the schedule. It is itself a schedule. Default-constructed it holds `OneshotSchedule` at
/// step 0.
///
/// Throws `config_error` when copying a schedule that cannot be copied, or when used after it was
/// moved from; and whatever the schedule throws.
class AnySchedule {
 public:
  AnySchedule() : AnySchedule(OneshotSchedule{}) {}

  /// @tparam S a schedule (schedules/concept.hpp).
  /// @param name for messages; defaults to the schedule's `name`, or "schedule".
  template <typename S, typename = std::enable_if_t<!std::is_same_v<std::decay_t<S>, AnySchedule>>>
  AnySchedule(S schedule, std::string name = {})  // NOLINT(google-explicit-constructor)
      : erased_(std::move(schedule), std::move(name)) {
    static_assert(check_schedule<S>());
  }

  bool is_pruning_step(long step) const { return erased_.get().is_pruning_step(step); }
  double target_at(long step, double final_target) const {
    return erased_.get().target_at(step, final_target);
  }

  const std::string& name() const noexcept { return erased_.name(); }
  /// Renames it (for messages).
  void rename(std::string name) { erased_.rename(std::move(name)); }

  /// The held schedule, if it is an `S`, else nullptr.
  template <typename S>
  S* target() noexcept {
    return erased_.template target<S>();
  }
  template <typename S>
  const S* target() const noexcept {
    return erased_.template target<S>();
  }

 private:
  struct Concept : detail::ErasedConcept<Concept> {
    static constexpr const char* owner = "AnySchedule";
    static constexpr const char* kind = "schedule";
    template <typename S>
    static std::string name_of(const S& schedule) {
      return schedule_name(schedule);
    }

    virtual bool is_pruning_step(long step) const = 0;
    virtual double target_at(long step, double final_target) const = 0;
  };

  template <typename S>
  struct Model final : detail::ErasedModel<Concept, S, Model<S>> {
    using detail::ErasedModel<Concept, S, Model<S>>::ErasedModel;
    bool is_pruning_step(long step) const override { return this->held.is_pruning_step(step); }
    double target_at(long step, double final_target) const override {
      return this->held.target_at(step, final_target);
    }
  };

  detail::ErasedValue<Concept, Model> erased_;
};

}  // namespace mhaprune
