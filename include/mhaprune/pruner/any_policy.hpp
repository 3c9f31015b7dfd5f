// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/schedules/iterative.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/global_selection.hpp"

namespace mhaprune {

/// A mask policy chosen at run time (from a config): holds any class with the mask-policy interface
/// (see `LocalSelection`) by value. Defaults to `GlobalSelection`.
class AnyMaskPolicy {
 public:
  AnyMaskPolicy() : AnyMaskPolicy(GlobalSelection{}) {}
  template <typename Policy,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<Policy>, AnyMaskPolicy>>>
  AnyMaskPolicy(Policy policy)  // NOLINT(google-explicit-constructor): a policy is-a policy
      : name_(Policy::name),
        select_([p = std::move(policy)](const std::vector<BlockScores>& blocks, double target,
                                        const SelectionOptions& options) {
          return p.select(blocks, target, options);
        }) {}

  Selection select(const std::vector<BlockScores>& blocks, double target,
                   const SelectionOptions& options) const {
    return select_(blocks, target, options);
  }
  const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  std::function<Selection(const std::vector<BlockScores>&, double, const SelectionOptions&)> select_;
};

/// A schedule chosen at run time: holds any class with the schedule interface (see
/// `IterativeSchedule`) by value. Defaults to `OneshotSchedule` at step 0.
class AnySchedule {
 public:
  AnySchedule() : AnySchedule(OneshotSchedule{}) {}
  template <typename S, typename = std::enable_if_t<!std::is_same_v<std::decay_t<S>, AnySchedule>>>
  AnySchedule(S schedule)  // NOLINT(google-explicit-constructor)
      : name_(S::name), self_(std::make_shared<const Model<S>>(std::move(schedule))) {}

  bool is_pruning_step(long step) const { return self_->is_pruning_step(step); }
  double target_at(long step, double final_target) const { return self_->target_at(step, final_target); }
  const std::string& name() const noexcept { return name_; }

 private:
  struct Concept {
    virtual ~Concept() = default;
    virtual bool is_pruning_step(long step) const = 0;
    virtual double target_at(long step, double final_target) const = 0;
  };
  template <typename S>
  struct Model final : Concept {
    explicit Model(S s) : schedule(std::move(s)) {}
    bool is_pruning_step(long step) const override { return schedule.is_pruning_step(step); }
    double target_at(long step, double final_target) const override {
      return schedule.target_at(step, final_target);
    }
    S schedule;
  };
  std::string name_;
  std::shared_ptr<const Concept> self_;  // immutable, so sharing between copies is safe
};

}  // namespace mhaprune
