// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <string>
#include <type_traits>
#include <utility>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/evidence.hpp"

namespace mhaprune {

/// The "no update step" marker of `LambdaCriterion`.
struct NoUpdate {};

/// A criterion made of callables, so a lambda can go wherever a criterion class can (a pruner's
/// template argument, `AnyCriterion`, the registry). Make one with `make_criterion`.
///
/// @tparam ScoreFn called as `score(block, evidence)` with `const AttentionBlock<Scalar>&` and
///         `const Evidence&`, returning one score per current query head (anything convertible to
///         `Eigen::VectorXd`). A generic lambda (`const auto& block`) serves every scalar type; it must
///         compile for each one it is used with (all four inside `AnyCriterion`).
/// @tparam UpdateFn `NoUpdate` (a stateless criterion), or called as `update(block, evidence)` once
///         per step; state lives in what the lambdas capture (e.g. a shared_ptr to a map keyed by
///         block name).
template <typename ScoreFn, typename UpdateFn = NoUpdate>
class LambdaCriterion {
 public:
  explicit LambdaCriterion(ScoreFn score, UpdateFn update = UpdateFn{})
      : score_(std::move(score)), update_(std::move(update)) {}

  /// Sets the name used in messages (default "lambda").
  LambdaCriterion named(std::string name) && {
    name_ = std::move(name);
    return std::move(*this);
  }
  const std::string& name() const noexcept { return name_; }

  template <typename Scalar>
  auto scores(const AttentionBlock<Scalar>& block, const Evidence& ev)
      -> decltype(Eigen::VectorXd(std::declval<ScoreFn&>()(block, ev))) {
    return Eigen::VectorXd(score_(block, ev));
  }

  template <typename Scalar, typename U = UpdateFn, std::enable_if_t<!std::is_same_v<U, NoUpdate>, int> = 0>
  auto update(const AttentionBlock<Scalar>& block, const Evidence& ev)
      -> decltype(void(std::declval<U&>()(block, ev))) {
    update_(block, ev);
  }

  ScoreFn& score_function() noexcept { return score_; }
  UpdateFn& update_function() noexcept { return update_; }

 private:
  ScoreFn score_;
  UpdateFn update_;
  std::string name_ = "lambda";
};

/// Wraps a scoring callable: `make_criterion([](const auto& block, const Evidence& ev) { ... })`.
template <typename ScoreFn>
LambdaCriterion<std::decay_t<ScoreFn>> make_criterion(ScoreFn&& score) {
  return LambdaCriterion<std::decay_t<ScoreFn>>(std::forward<ScoreFn>(score));
}

/// Wraps a scoring callable and an update callable (a criterion that accumulates over steps).
template <typename ScoreFn, typename UpdateFn>
LambdaCriterion<std::decay_t<ScoreFn>, std::decay_t<UpdateFn>> make_criterion(ScoreFn&& score,
                                                                              UpdateFn&& update) {
  return LambdaCriterion<std::decay_t<ScoreFn>, std::decay_t<UpdateFn>>(std::forward<ScoreFn>(score),
                                                                        std::forward<UpdateFn>(update));
}

}  // namespace mhaprune
