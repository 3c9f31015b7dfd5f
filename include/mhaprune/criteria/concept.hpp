// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <string>
#include <type_traits>
#include <utility>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/policy_name.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/error.hpp"

/// What a head-scoring criterion is, and how the library calls one.
///
/// A criterion is a small class (a policy, passed by type to the pruner, or wrapped at run time by
/// `AnyCriterion`). Its required interface, the template for your own:
///
/// ```
/// class MyCriterion {
///  public:
///    // Required. One score per CURRENT query head of `block` (size block.layout().heads(), in
///    // current head order), higher = more important = keep. Must work for every Scalar you use it
///    // with (float, double, Eigen::half, Eigen::bfloat16); need not be const (the library calls it
///    // on a non-const object), but should not change the block. Throw a mhaprune::error (e.g.
///    // evidence_error, shape_error) on unusable input, naming block.name().
///    template <class Scalar>
///    Eigen::VectorXd scores(const mhaprune::AttentionBlock<Scalar>& block, const mhaprune::Evidence& ev);
///
///    // Optional: only for criteria that accumulate over training steps or calibration batches.
///    // Called once per optimizer step (or batch) per block, with that step's evidence. Keep state
///    // per block keyed by block.name(), and per head by ORIGINAL id (block.head_ids(),
///    // block.kv_head_ids()), so a block pruned between two steps still works: drop the state of heads
///    // that are gone. Strong guarantee: validate everything before changing any state.
///    template <class Scalar>
///    void update(const mhaprune::AttentionBlock<Scalar>& block, const mhaprune::Evidence& ev);
///
///    // Optional: a name for messages and for AnyCriterion; without one the name is "criterion".
///    static constexpr const char* name() { return "my_criterion"; }
/// };
/// ```
///
/// It must be move-constructible (the pruner holds it by value); default-constructible if it is to be
/// a pruner's default. A lambda can stand in for a class through `make_criterion`
/// (lambda_criterion.hpp). Built-ins: `Magnitude`, `Gradient`, `Snip`, `SnipMomentum`, `Taylor`,
/// `Fisher`, `WandaSp`, `Fluctuation`, `Random` (the simplest complete one to copy from).
///
/// One trait, `is_criterion<C, Scalar>`, drives both `check_criterion<C, Scalar>()` (a static_assert
/// with a readable message, for C++17 code such as the pruner) and, under C++20, the concept
/// `Criterion<C, Scalar>`. Mask policies (selection/concept.hpp) and schedules (schedules/concept.hpp)
/// are described the same way.
namespace mhaprune {

/// True when `C` has `scores(const AttentionBlock<Scalar>&, const Evidence&)` callable on a non-const
/// `C` and returning something convertible to `Eigen::VectorXd`.
template <typename C, typename Scalar, typename = void>
struct is_criterion : std::false_type {};
template <typename C, typename Scalar>
struct is_criterion<C, Scalar,
                    std::enable_if_t<std::is_convertible_v<decltype(std::declval<C&>().scores(
                                                               std::declval<const AttentionBlock<Scalar>&>(),
                                                               std::declval<const Evidence&>())),
                                                           Eigen::VectorXd>>> : std::true_type {};
template <typename C, typename Scalar>
inline constexpr bool is_criterion_v = is_criterion<C, Scalar>::value;

/// True when `C` has the optional `update(const AttentionBlock<Scalar>&, const Evidence&)`.
template <typename C, typename Scalar, typename = void>
struct has_update : std::false_type {};
template <typename C, typename Scalar>
struct has_update<C, Scalar,
                  std::void_t<decltype(std::declval<C&>().update(
                      std::declval<const AttentionBlock<Scalar>&>(), std::declval<const Evidence&>()))>>
    : std::true_type {};
template <typename C, typename Scalar>
inline constexpr bool has_update_v = has_update<C, Scalar>::value;

/// Fails to compile, with a message saying what is missing, unless `C` is a criterion for blocks of
/// `Scalar`. Returns true so it can sit in a `static_assert` or a constant.
template <typename C, typename Scalar = float>
constexpr bool check_criterion() {
  static_assert(
      is_criterion_v<C, Scalar>,
      "mhaprune: this type is not a head-scoring criterion for blocks of this Scalar: it needs a member "
      "`Eigen::VectorXd scores(const mhaprune::AttentionBlock<Scalar>& block, const mhaprune::Evidence& "
      "evidence)` callable on a non-const object (see mhaprune/criteria/concept.hpp; "
      "mhaprune::Random is a small example; wrap a lambda with mhaprune::make_criterion)");
  static_assert(std::is_move_constructible_v<C>, "mhaprune: a criterion must be move-constructible");
  return true;
}

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
/// C++20 spelling of `is_criterion`: `template <mhaprune::Criterion C> ...` checks float blocks;
/// `Criterion<C, Eigen::bfloat16>` another scalar.
template <typename C, typename Scalar = float>
concept Criterion = is_criterion_v<C, Scalar> && std::is_move_constructible_v<C>;

/// A criterion that also accumulates evidence over steps (`update`).
template <typename C, typename Scalar = float>
concept StatefulCriterion = Criterion<C, Scalar> && has_update_v<C, Scalar>;
#endif

/// The criterion's `name()` when it has one, else "criterion".
template <typename C>
std::string criterion_name(const C& criterion) {
  if constexpr (detail::has_name_function<C>::value) {
    return std::string(criterion.name());
  } else {
    (void)criterion;
    return "criterion";
  }
}

/// Scores every current query head of `block` with `criterion` and checks the result's size.
/// This is how the library calls a criterion.
///
/// @throws shape_error when the criterion returns other than `block.layout().heads()` scores; and
///         whatever the criterion throws.
template <typename C, typename Scalar>
Eigen::VectorXd score_heads(C& criterion, const AttentionBlock<Scalar>& block,
                            const Evidence& evidence = Evidence{}) {
  static_assert(check_criterion<C, Scalar>());
  Eigen::VectorXd s = criterion.scores(block, evidence);
  if (s.size() != block.layout().heads()) {
    throw shape_error(detail::message(criterion_name(criterion), ": block \"", block.name(), "\": returned ",
                                      s.size(), " scores for ", block.layout().heads(),
                                      " current query heads"));
  }
  return s;
}

/// Feeds one step's evidence to a criterion that accumulates (`update`); does nothing for one that
/// does not, so callers need not know which kind they hold.
template <typename C, typename Scalar>
void update_criterion(C& criterion, const AttentionBlock<Scalar>& block, const Evidence& evidence) {
  static_assert(check_criterion<C, Scalar>());
  if constexpr (has_update_v<C, Scalar>) {
    criterion.update(block, evidence);
  } else {
    (void)criterion;
    (void)block;
    (void)evidence;
  }
}

}  // namespace mhaprune
