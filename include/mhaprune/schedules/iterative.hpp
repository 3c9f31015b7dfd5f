// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>

#include "mhaprune/schedules/decay.hpp"

namespace mhaprune {

/// Schedule: prune at steps `start, start + frequency, ...` up to `end`, the target rising by `decay`
/// from `initial` to the final target. Pruning step j (0-based) of m gets the target of step i = j of
/// n = m - 1, so the first pruning step sits at the initial sparsity and the last reaches the final
/// one; with a single pruning step (start == end) that step reaches the final target — the
/// reference pruner's counting.
///
/// Use this as the template for your own schedule: a schedule is any class with
/// `bool is_pruning_step(long step) const` and `double target_at(long step, double final) const`
/// (the cumulative fraction of heads removed after pruning at that step). The optional static `name`
/// names it in messages and in `AnySchedule`. The whole contract, and the check the pruner makes
/// (`is_schedule`, the C++20 concept `Schedule`): schedules/concept.hpp.
///
/// Throws `error` on construction for negative steps, end < start, or frequency < 1.
class IterativeSchedule {
 public:
  static constexpr const char* name = "iterative";

  IterativeSchedule(long start_step, long end_step, long frequency, Decay decay = Decay::exp,
                    double initial = 0.0)
      : start_(start_step), end_(end_step), frequency_(frequency), decay_(decay), initial_(initial) {
    if (start_step < 0 || end_step < start_step || frequency < 1 || !(initial >= 0.0 && initial < 1.0)) {
      throw error(detail::message(
          "IterativeSchedule: need 0 <= start_step <= end_step, pruning_frequency >= 1 "
          "and 0 <= initial < 1, got start_step=",
          start_step, ", end_step=", end_step, ", pruning_frequency=", frequency, ", initial=", initial));
    }
  }

  long start_step() const noexcept { return start_; }
  long end_step() const noexcept { return end_; }
  long frequency() const noexcept { return frequency_; }
  Decay decay() const noexcept { return decay_; }
  double initial() const noexcept { return initial_; }
  /// How many pruning steps there are (m).
  long pruning_steps() const noexcept { return (end_ - start_) / frequency_ + 1; }

  bool is_pruning_step(long step) const noexcept {
    return step >= start_ && step <= end_ && (step - start_) % frequency_ == 0;
  }

  /// The target at pruning step `step`; before the first it is the initial sparsity, between pruning
  /// steps that of the last pruning step passed, after the last the final target.
  double target_at(long step, double final_target) const noexcept {
    if (step < start_) return initial_;
    const long m = pruning_steps();
    if (m == 1) return final_target;
    const long j = std::min((step - start_) / frequency_, m - 1);
    return decayed_target(decay_, initial_, final_target, j, m - 1);
  }

 private:
  long start_;
  long end_;
  long frequency_;
  Decay decay_;
  double initial_;
};

/// Schedule: one pruning step, at `step` (0 by default), straight to the final target. The simplest
/// complete schedule (schedules/concept.hpp).
class OneshotSchedule {
 public:
  static constexpr const char* name = "oneshot";

  explicit OneshotSchedule(long step = 0) : step_(step) {}
  bool is_pruning_step(long step) const noexcept { return step == step_; }
  double target_at(long /*step*/, double final_target) const noexcept { return final_target; }
  long step() const noexcept { return step_; }

 private:
  long step_;
};

}  // namespace mhaprune
