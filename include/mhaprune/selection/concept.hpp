// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mhaprune/core/detail/policy_name.hpp"
#include "mhaprune/selection/block_scores.hpp"

/// What a mask policy is, and how the library calls one.
///
/// A mask policy decides which heads go, from every block's scores. It is a small class (a policy,
/// passed by type to the pruner, or wrapped at run time by `AnyMaskPolicy`). Its interface, the
/// template for your own:
///
/// ```
/// class MyPolicy {
///  public:
///    // Required. For each of `blocks` (same order, same count), the CURRENT positions of the heads to
///    // remove, ascending. `target` is the fraction of all the blocks' ORIGINAL heads that should be
///    // gone once this selection is applied (cumulative: BlockScores::already_removed() counts);
///    // `options` holds the guards (min_heads, max_ratio_per_block, round_to), the GQA mode and
///    // exact_target — `make_ladder(block, options)` (removal_ladder.hpp) applies them for you.
///    // Const, because the pruner hands its policy out as const (`MhaPruner::policy()`). Throw a
///    // mhaprune::error on unusable input (constraint_error when exact_target cannot be met).
///    mhaprune::Selection select(const std::vector<mhaprune::BlockScores>& blocks, double target,
///                               const mhaprune::SelectionOptions& options) const;
///
///    // Optional: a name for messages and for AnyMaskPolicy (a `name()` function also works);
///    // without one the name is "mask_policy".
///    static constexpr const char* name = "my_policy";
/// };
/// ```
///
/// It must be move-constructible (the pruner holds it by value); default-constructible if it is to be
/// a pruner's default; copy-constructible if an `AnyMaskPolicy` holding it is to be copied. The pruner
/// throws `error` when a selection has other than one entry per block, and the removal throws
/// `head_id_error`/`removal_error` for positions out of range, repeated, or breaking the layout.
/// Built-ins: `LocalSelection` (the simplest to copy from), `GlobalSelection`, `ExplicitSelection`.
///
/// One trait, `is_mask_policy<P>`, drives both `check_mask_policy<P>()` (a static_assert with a
/// readable message, for C++17 code such as the pruner) and, under C++20, the concept `MaskPolicy<P>`.
namespace mhaprune {

/// True when `P` has `select(const std::vector<BlockScores>&, double, const SelectionOptions&)`
/// callable on a const `P` and returning something convertible to `Selection`.
template <typename P, typename = void>
struct is_mask_policy : std::false_type {};
template <typename P>
struct is_mask_policy<P, std::enable_if_t<std::is_convertible_v<
                             decltype(std::declval<const P&>().select(
                                 std::declval<const std::vector<BlockScores>&>(), std::declval<double>(),
                                 std::declval<const SelectionOptions&>())),
                             Selection>>> : std::true_type {};
template <typename P>
inline constexpr bool is_mask_policy_v = is_mask_policy<P>::value;

/// Fails to compile, with a message saying what is missing, unless `P` is a mask policy. Returns true
/// so it can sit in a `static_assert` or a constant.
template <typename P>
constexpr bool check_mask_policy() {
  static_assert(is_mask_policy_v<P>,
                "mhaprune: this type is not a mask policy: it needs a const member `mhaprune::Selection "
                "select(const std::vector<mhaprune::BlockScores>& blocks, double target, const "
                "mhaprune::SelectionOptions& options) const` (see mhaprune/selection/concept.hpp; "
                "mhaprune::LocalSelection is a small example)");
  static_assert(std::is_move_constructible_v<P>, "mhaprune: a mask policy must be move-constructible");
  return true;
}

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
/// C++20 spelling of `is_mask_policy`: `template <mhaprune::MaskPolicy P> ...`.
template <typename P>
concept MaskPolicy = is_mask_policy_v<P> && std::is_move_constructible_v<P>;
#endif

/// The policy's `name()` or static `name` when it has one, else "mask_policy".
template <typename P>
std::string mask_policy_name(const P& policy) {
  return detail::name_or(policy, "mask_policy");
}

}  // namespace mhaprune
