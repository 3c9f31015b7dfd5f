// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "mhaprune/core/detail/policy_name.hpp"

/// What a pruning schedule is, and how the library calls one.
///
/// A schedule says at which training steps the pruner's hooks prune, and how far. It is a small class
/// (a policy, passed by type to the pruner, or wrapped at run time by `AnySchedule`). Its interface,
/// the template for your own:
///
/// ```
/// class MySchedule {
///  public:
///    // Required. Whether `MhaPruner::on_step_begin(step)` masks more heads at this step.
///    bool is_pruning_step(long step) const;
///
///    // Required. The target at `step`: the cumulative fraction of all original heads gone after
///    // pruning at that step, in [0, 1], reaching `final_target` (the one given to
///    // `MhaPruner::attach`) at the last pruning step. The pruner asks only at pruning steps.
///    double target_at(long step, double final_target) const;
///
///    // Optional: a name for messages and for AnySchedule (a `name()` function also works);
///    // without one the name is "schedule".
///    static constexpr const char* name = "my_schedule";
/// };
/// ```
///
/// Both are const, because the pruner hands its schedule out as const (`MhaPruner::schedule()`).
/// Throw a mhaprune::error from the constructor on bad settings, so that the calls need not throw.
/// It must be move-constructible (the pruner holds it by value); default-constructible if it is to be
/// a pruner's default; copy-constructible if an `AnySchedule` holding it is to be copied. Built-ins:
/// `OneshotSchedule` (the simplest), `IterativeSchedule` (schedules/iterative.hpp).
///
/// One trait, `is_schedule<S>`, drives both `check_schedule<S>()` (static_asserts with readable
/// messages, one per missing member, for C++17 code such as the pruner) and, under C++20, the concept
/// `Schedule<S>`.
namespace mhaprune {

/// True when `S` has `is_pruning_step(long)` callable on a const `S` and returning something
/// convertible to bool.
template <typename S, typename = void>
struct has_is_pruning_step : std::false_type {};
template <typename S>
struct has_is_pruning_step<
    S, std::enable_if_t<std::is_convertible_v<
           decltype(std::declval<const S&>().is_pruning_step(std::declval<long>())), bool>>>
    : std::true_type {};

/// True when `S` has `target_at(long, double)` callable on a const `S` and returning something
/// convertible to double.
template <typename S, typename = void>
struct has_target_at : std::false_type {};
template <typename S>
struct has_target_at<
    S,
    std::enable_if_t<std::is_convertible_v<
        decltype(std::declval<const S&>().target_at(std::declval<long>(), std::declval<double>())), double>>>
    : std::true_type {};

/// True when `S` has both required members of a schedule.
template <typename S>
struct is_schedule : std::bool_constant<has_is_pruning_step<S>::value && has_target_at<S>::value> {};
template <typename S>
inline constexpr bool is_schedule_v = is_schedule<S>::value;

/// Fails to compile, with a message for each member that is missing, unless `S` is a schedule.
/// Returns true so it can sit in a `static_assert` or a constant.
template <typename S>
constexpr bool check_schedule() {
  static_assert(has_is_pruning_step<S>::value,
                "mhaprune: this type is not a schedule: it needs a const member `bool is_pruning_step(long "
                "step) const` (see mhaprune/schedules/concept.hpp; mhaprune::OneshotSchedule is a small "
                "example)");
  static_assert(has_target_at<S>::value,
                "mhaprune: this type is not a schedule: it needs a const member `double target_at(long "
                "step, double final_target) const` (see mhaprune/schedules/concept.hpp; "
                "mhaprune::OneshotSchedule is a small example)");
  static_assert(std::is_move_constructible_v<S>, "mhaprune: a schedule must be move-constructible");
  return true;
}

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
/// C++20 spelling of `is_schedule`: `template <mhaprune::Schedule S> ...`.
template <typename S>
concept Schedule = is_schedule_v<S> && std::is_move_constructible_v<S>;
#endif

/// The schedule's `name()` or static `name` when it has one, else "schedule".
template <typename S>
std::string schedule_name(const S& schedule) {
  return detail::name_or(schedule, "schedule");
}

}  // namespace mhaprune
