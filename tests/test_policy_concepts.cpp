// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The three kinds of pruner policy as checked interfaces: the traits (is_criterion, is_mask_policy,
// is_schedule) accept the built-ins and reject made-up types missing each required member; under C++20
// the concepts agree with them; the pruner accepts user policies without a name. Then the one
// type-erasure design of AnyCriterion, AnyMaskPolicy and AnySchedule: names and their fallbacks,
// copies that copy state, target<T>(), and the same errors for a moved-from value and an uncopyable
// held policy.
#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <memory>
#include <mhaprune/criteria/any_criterion.hpp>
#include <mhaprune/criteria/concept.hpp>
#include <mhaprune/criteria/magnitude.hpp>
#include <mhaprune/criteria/random.hpp>
#include <mhaprune/criteria/snip_momentum.hpp>
#include <mhaprune/error.hpp>
#include <mhaprune/pruner/any_policy.hpp>
#include <mhaprune/pruner/mha_pruner.hpp>
#include <mhaprune/schedules/concept.hpp>
#include <mhaprune/schedules/iterative.hpp>
#include <mhaprune/selection/concept.hpp>
#include <mhaprune/selection/explicit_selection.hpp>
#include <mhaprune/selection/global_selection.hpp>
#include <mhaprune/selection/local_selection.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/message_of.hpp"

namespace test_policy_concepts {

using mhaprune::AnyCriterion;
using mhaprune::AnyMaskPolicy;
using mhaprune::AnySchedule;
using mhaprune::AttentionBlock;
using mhaprune::BlockScores;
using mhaprune::Evidence;
using mhaprune::Selection;
using mhaprune::SelectionOptions;
using mhaprune_test::message_of;
using Blocks = std::vector<BlockScores>;

namespace {

// --- made-up mask policies ---------------------------------------------------------------------------

/// A complete mask policy without a name: removes nothing, and counts its calls.
struct KeepAll {
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  int copies_made = 0;
  KeepAll() = default;
  KeepAll(const KeepAll& o) : calls(o.calls), copies_made(o.copies_made + 1) {}
  KeepAll(KeepAll&&) = default;
  Selection select(const Blocks& blocks, double, const SelectionOptions&) const {
    ++*calls;
    return Selection(blocks.size());
  }
};
/// Named the way criteria are, with a function.
struct NamedByFunction {
  static constexpr const char* name() { return "by_function"; }
  Selection select(const Blocks& blocks, double, const SelectionOptions&) const {
    return Selection(blocks.size());
  }
};
struct NoSelect {};
struct NonConstSelect {
  Selection select(const Blocks& blocks, double, const SelectionOptions&) { return Selection(blocks.size()); }
};
struct SelectMissingOptions {
  Selection select(const Blocks& blocks, double) const { return Selection(blocks.size()); }
};
struct SelectReturnsInt {
  int select(const Blocks&, double, const SelectionOptions&) const { return 0; }
};
/// Has `select`, but cannot be held by value.
struct PinnedPolicy {
  PinnedPolicy() = default;
  PinnedPolicy(PinnedPolicy&&) = delete;
  Selection select(const Blocks& blocks, double, const SelectionOptions&) const {
    return Selection(blocks.size());
  }
};
/// A mask policy that can be moved but not copied.
struct MoveOnlyPolicy {
  std::unique_ptr<int> state = std::make_unique<int>(1);
  Selection select(const Blocks& blocks, double, const SelectionOptions&) const {
    return Selection(blocks.size());
  }
};

// --- made-up schedules -------------------------------------------------------------------------------

/// A complete schedule without a name: prunes every other step, up to the final target.
struct EveryOtherStep {
  bool is_pruning_step(long step) const { return step % 2 == 0; }
  double target_at(long, double final_target) const { return final_target; }
};
struct NoScheduleMembers {};
struct OnlyIsPruningStep {
  bool is_pruning_step(long) const { return true; }
};
struct OnlyTargetAt {
  double target_at(long, double t) const { return t; }
};
struct NonConstSchedule {
  bool is_pruning_step(long) { return true; }
  double target_at(long, double t) { return t; }
};
struct TargetAtReturnsString {
  bool is_pruning_step(long) const { return true; }
  std::string target_at(long, double) const { return "all"; }
};
struct PinnedSchedule {
  PinnedSchedule() = default;
  PinnedSchedule(PinnedSchedule&&) = delete;
  bool is_pruning_step(long) const { return true; }
  double target_at(long, double t) const { return t; }
};
struct MoveOnlySchedule {
  std::unique_ptr<int> state = std::make_unique<int>(1);
  bool is_pruning_step(long) const { return true; }
  double target_at(long, double t) const { return t; }
};

// --- a made-up criterion (cheap to instantiate for all four scalar types inside AnyCriterion) -------

struct ZeroScores {
  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence&) {
    return Eigen::VectorXd::Zero(block.layout().heads());
  }
};
struct MoveOnlyCriterion {
  std::unique_ptr<int> state = std::make_unique<int>(1);
  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence&) {
    return Eigen::VectorXd::Zero(block.layout().heads());
  }
};
struct NoScores {};
/// Scores float blocks only.
struct FloatOnlyScores {
  Eigen::VectorXd scores(const AttentionBlock<float>& block, const Evidence&) {
    return Eigen::VectorXd::Zero(block.layout().heads());
  }
};

}  // namespace

TEST_CASE("is_mask_policy: accepts the built-ins, rejects types missing select", "[policy][concept]") {
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<mhaprune::LocalSelection>);
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<mhaprune::GlobalSelection>);
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<mhaprune::ExplicitSelection>);
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<AnyMaskPolicy>);
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<KeepAll>);
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<NamedByFunction>);
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<MoveOnlyPolicy>);
  STATIC_REQUIRE(mhaprune::check_mask_policy<KeepAll>());

  STATIC_REQUIRE_FALSE(mhaprune::is_mask_policy_v<int>);
  STATIC_REQUIRE_FALSE(mhaprune::is_mask_policy_v<NoSelect>);
  STATIC_REQUIRE_FALSE(mhaprune::is_mask_policy_v<NonConstSelect>);
  STATIC_REQUIRE_FALSE(mhaprune::is_mask_policy_v<SelectMissingOptions>);
  STATIC_REQUIRE_FALSE(mhaprune::is_mask_policy_v<SelectReturnsInt>);
  // The trait is about the call; holding by value is the concept's (and check_mask_policy's) other half.
  STATIC_REQUIRE(mhaprune::is_mask_policy_v<PinnedPolicy>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<PinnedPolicy>);
  // Schedules are not mask policies, nor the other way round.
  STATIC_REQUIRE_FALSE(mhaprune::is_mask_policy_v<mhaprune::OneshotSchedule>);
  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<mhaprune::GlobalSelection>);
}

TEST_CASE("is_schedule: accepts the built-ins, rejects types missing either member", "[policy][concept]") {
  STATIC_REQUIRE(mhaprune::is_schedule_v<mhaprune::OneshotSchedule>);
  STATIC_REQUIRE(mhaprune::is_schedule_v<mhaprune::IterativeSchedule>);
  STATIC_REQUIRE(mhaprune::is_schedule_v<AnySchedule>);
  STATIC_REQUIRE(mhaprune::is_schedule_v<EveryOtherStep>);
  STATIC_REQUIRE(mhaprune::is_schedule_v<MoveOnlySchedule>);
  STATIC_REQUIRE(mhaprune::check_schedule<EveryOtherStep>());

  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<int>);
  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<NoScheduleMembers>);
  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<OnlyIsPruningStep>);
  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<OnlyTargetAt>);
  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<NonConstSchedule>);
  STATIC_REQUIRE_FALSE(mhaprune::is_schedule_v<TargetAtReturnsString>);
  // Each missing member has its own trait, so check_schedule names the one that is missing.
  STATIC_REQUIRE(mhaprune::has_is_pruning_step<OnlyIsPruningStep>::value);
  STATIC_REQUIRE_FALSE(mhaprune::has_target_at<OnlyIsPruningStep>::value);
  STATIC_REQUIRE_FALSE(mhaprune::has_is_pruning_step<OnlyTargetAt>::value);
  STATIC_REQUIRE(mhaprune::has_target_at<OnlyTargetAt>::value);
  STATIC_REQUIRE(mhaprune::is_schedule_v<PinnedSchedule>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<PinnedSchedule>);
}

TEST_CASE("MhaPruner checks all three policies and needs no names", "[policy][concept]") {
  using Pruner = mhaprune::MhaPruner<ZeroScores, KeepAll, EveryOtherStep>;
  STATIC_REQUIRE(sizeof(Pruner) > 0);  // instantiates the class and its three static_asserts
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<const Pruner&>().policy()), const KeepAll&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<const Pruner&>().schedule()), const EveryOtherStep&>);
  STATIC_REQUIRE(sizeof(mhaprune::MhaPruner<AnyCriterion, AnyMaskPolicy, AnySchedule>) > 0);
}

#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
TEST_CASE("C++20: the concepts agree with the traits", "[policy][concept][cxx20]") {
  STATIC_REQUIRE(mhaprune::MaskPolicy<mhaprune::LocalSelection>);
  STATIC_REQUIRE(mhaprune::MaskPolicy<mhaprune::GlobalSelection>);
  STATIC_REQUIRE(mhaprune::MaskPolicy<mhaprune::ExplicitSelection>);
  STATIC_REQUIRE(mhaprune::MaskPolicy<AnyMaskPolicy>);
  STATIC_REQUIRE(mhaprune::MaskPolicy<KeepAll>);
  STATIC_REQUIRE(mhaprune::MaskPolicy<MoveOnlyPolicy>);
  STATIC_REQUIRE_FALSE(mhaprune::MaskPolicy<NoSelect>);
  STATIC_REQUIRE_FALSE(mhaprune::MaskPolicy<NonConstSelect>);
  STATIC_REQUIRE_FALSE(mhaprune::MaskPolicy<SelectMissingOptions>);
  STATIC_REQUIRE_FALSE(mhaprune::MaskPolicy<SelectReturnsInt>);
  STATIC_REQUIRE_FALSE(mhaprune::MaskPolicy<PinnedPolicy>);  // trait yes, but cannot be held

  STATIC_REQUIRE(mhaprune::Schedule<mhaprune::OneshotSchedule>);
  STATIC_REQUIRE(mhaprune::Schedule<mhaprune::IterativeSchedule>);
  STATIC_REQUIRE(mhaprune::Schedule<AnySchedule>);
  STATIC_REQUIRE(mhaprune::Schedule<EveryOtherStep>);
  STATIC_REQUIRE_FALSE(mhaprune::Schedule<NoScheduleMembers>);
  STATIC_REQUIRE_FALSE(mhaprune::Schedule<OnlyIsPruningStep>);
  STATIC_REQUIRE_FALSE(mhaprune::Schedule<OnlyTargetAt>);
  STATIC_REQUIRE_FALSE(mhaprune::Schedule<NonConstSchedule>);
  STATIC_REQUIRE_FALSE(mhaprune::Schedule<TargetAtReturnsString>);
  STATIC_REQUIRE_FALSE(mhaprune::Schedule<PinnedSchedule>);

  STATIC_REQUIRE(mhaprune::Criterion<mhaprune::Magnitude>);
  STATIC_REQUIRE(mhaprune::Criterion<AnyCriterion, Eigen::bfloat16>);
  STATIC_REQUIRE(mhaprune::Criterion<ZeroScores, double>);
  STATIC_REQUIRE_FALSE(mhaprune::Criterion<NoScores>);
  STATIC_REQUIRE_FALSE(mhaprune::Criterion<KeepAll>);
  STATIC_REQUIRE_FALSE(mhaprune::Criterion<int>);
  STATIC_REQUIRE(mhaprune::Criterion<FloatOnlyScores, float>);
  STATIC_REQUIRE_FALSE(mhaprune::Criterion<FloatOnlyScores, double>);
  STATIC_REQUIRE(mhaprune::StatefulCriterion<mhaprune::SnipMomentum>);
  STATIC_REQUIRE_FALSE(mhaprune::StatefulCriterion<mhaprune::Magnitude>);

  // A constrained template sees the same: one spelling per kind, whichever standard.
  constexpr auto policy_ok = []<typename P>(P*) {
    return mhaprune::MaskPolicy<P> == mhaprune::is_mask_policy_v<P>;
  };
  STATIC_REQUIRE(policy_ok(static_cast<KeepAll*>(nullptr)));
  STATIC_REQUIRE(policy_ok(static_cast<NoSelect*>(nullptr)));
  constexpr auto constrained = []<mhaprune::Criterion C>(C*) { return true; };
  STATIC_REQUIRE(constrained(static_cast<mhaprune::Random*>(nullptr)));
}
#endif

TEST_CASE("policy names: name() or a static name, else the kind's fallback", "[policy][name]") {
  CHECK(mhaprune::mask_policy_name(mhaprune::LocalSelection{}) == "local");
  CHECK(mhaprune::mask_policy_name(mhaprune::GlobalSelection{}) == "global");
  CHECK(mhaprune::mask_policy_name(mhaprune::ExplicitSelection{}) == "explicit");
  CHECK(mhaprune::mask_policy_name(NamedByFunction{}) == "by_function");
  CHECK(mhaprune::mask_policy_name(KeepAll{}) == "mask_policy");
  CHECK(mhaprune::schedule_name(mhaprune::OneshotSchedule{}) == "oneshot");
  CHECK(mhaprune::schedule_name(mhaprune::IterativeSchedule(0, 4, 2)) == "iterative");
  CHECK(mhaprune::schedule_name(EveryOtherStep{}) == "schedule");
  CHECK(mhaprune::criterion_name(mhaprune::Magnitude{}) == "magnitude");
  CHECK(mhaprune::criterion_name(ZeroScores{}) == "criterion");
}

TEST_CASE("AnyMaskPolicy, AnySchedule, AnyCriterion: one design", "[policy][any]") {
  SECTION("default-constructed: the pruner's defaults, named") {
    CHECK(AnyMaskPolicy().name() == "global");
    CHECK(AnyMaskPolicy().target<mhaprune::GlobalSelection>() != nullptr);
    CHECK(AnySchedule().name() == "oneshot");
    CHECK(AnySchedule().target<mhaprune::OneshotSchedule>() != nullptr);
    CHECK(AnyCriterion().name() == "magnitude");
    CHECK(AnyCriterion().target<mhaprune::Magnitude>() != nullptr);
  }
  SECTION("a name given, a policy's own, or the kind's fallback; rename") {
    AnyMaskPolicy nameless = KeepAll{};
    CHECK(nameless.name() == "mask_policy");
    AnyMaskPolicy named(KeepAll{}, "keep_all");
    CHECK(named.name() == "keep_all");
    named.rename("keep");
    CHECK(named.name() == "keep");
    CHECK(AnyMaskPolicy(mhaprune::LocalSelection{}).name() == "local");
    CHECK(AnyMaskPolicy(NamedByFunction{}).name() == "by_function");

    AnySchedule every = EveryOtherStep{};
    CHECK(every.name() == "schedule");
    CHECK(AnySchedule(EveryOtherStep{}, "every_other").name() == "every_other");
    CHECK(AnySchedule(mhaprune::IterativeSchedule(0, 4, 2)).name() == "iterative");

    CHECK(AnyCriterion(ZeroScores{}).name() == "criterion");
    CHECK(AnyCriterion(ZeroScores{}, "zero").name() == "zero");
  }
  SECTION("forwarding, copies of the held policy, target<T>()") {
    AnyMaskPolicy policy = KeepAll{};
    const Selection s = policy.select(Blocks{}, 0.5, SelectionOptions{});
    CHECK(s.empty());
    REQUIRE(policy.target<KeepAll>() != nullptr);
    CHECK(*policy.target<KeepAll>()->calls == 1);
    CHECK(policy.target<mhaprune::GlobalSelection>() == nullptr);
    const int copies_before = policy.target<KeepAll>()->copies_made;
    const AnyMaskPolicy copy = policy;
    REQUIRE(copy.target<KeepAll>() != nullptr);
    CHECK(copy.target<KeepAll>()->copies_made == copies_before + 1);  // a copy of the held policy

    AnySchedule schedule = mhaprune::IterativeSchedule(2, 8, 3);
    const AnySchedule schedule_copy = schedule;
    REQUIRE(schedule_copy.target<mhaprune::IterativeSchedule>() != nullptr);
    CHECK(schedule_copy.target<mhaprune::IterativeSchedule>() !=
          schedule.target<mhaprune::IterativeSchedule>());
    CHECK(schedule_copy.target<mhaprune::IterativeSchedule>()->frequency() == 3);
    CHECK(schedule_copy.target<mhaprune::OneshotSchedule>() == nullptr);
    for (long step = 0; step < 10; ++step) {
      CHECK(schedule_copy.is_pruning_step(step) ==
            mhaprune::IterativeSchedule(2, 8, 3).is_pruning_step(step));
      CHECK(schedule_copy.target_at(step, 0.5) == mhaprune::IterativeSchedule(2, 8, 3).target_at(step, 0.5));
    }
  }
  SECTION("moved from: every use throws config_error naming the holder") {
    AnyMaskPolicy policy;
    AnyMaskPolicy policy_to = std::move(policy);
    CHECK(policy_to.name() == "global");
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from state is what is under test
    CHECK(message_of<mhaprune::config_error>([&] {
            (void)policy.select(Blocks{}, 0.5, SelectionOptions{});
          }) == "AnyMaskPolicy: used after it was moved from");
    CHECK(policy.target<mhaprune::GlobalSelection>() == nullptr);
    CHECK_THROWS_AS(AnyMaskPolicy(policy), mhaprune::config_error);

    AnySchedule schedule;
    AnySchedule schedule_to = std::move(schedule);
    CHECK(schedule_to.is_pruning_step(0));
    // NOLINTNEXTLINE(bugprone-use-after-move)
    CHECK(message_of<mhaprune::config_error>([&] { (void)schedule.is_pruning_step(0); }) ==
          "AnySchedule: used after it was moved from");
    CHECK_THROWS_AS(schedule.target_at(0, 0.5), mhaprune::config_error);
    CHECK(schedule.target<mhaprune::OneshotSchedule>() == nullptr);

    AnyCriterion criterion(ZeroScores{});
    AnyCriterion criterion_to = std::move(criterion);
    // NOLINTNEXTLINE(bugprone-use-after-move)
    CHECK(message_of<mhaprune::config_error>([&] { (void)criterion.stateful(); }) ==
          "AnyCriterion: used after it was moved from");
    CHECK(criterion.target<ZeroScores>() == nullptr);

    policy = policy_to;  // assigning brings a moved-from value back
    CHECK(policy.name() == "global");
    CHECK(policy.select(Blocks{}, 0.5, SelectionOptions{}).empty());
  }
  SECTION("a held policy that cannot be copied: moves work, copies throw config_error") {
    AnyMaskPolicy policy = MoveOnlyPolicy{};
    AnyMaskPolicy moved = std::move(policy);
    CHECK(moved.select(Blocks{}, 0.5, SelectionOptions{}).empty());
    CHECK(message_of<mhaprune::config_error>([&] { AnyMaskPolicy copy = moved; }) ==
          "AnyMaskPolicy: the held mask policy cannot be copied");

    AnySchedule schedule = MoveOnlySchedule{};
    CHECK(message_of<mhaprune::config_error>([&] { AnySchedule copy = schedule; }) ==
          "AnySchedule: the held schedule cannot be copied");

    AnyCriterion criterion(MoveOnlyCriterion{});
    CHECK(message_of<mhaprune::config_error>([&] { AnyCriterion copy = criterion; }) ==
          "AnyCriterion: the held criterion cannot be copied");

    AnyMaskPolicy target;  // a failed copy-assignment leaves the target as it was
    CHECK_THROWS_AS(target = moved, mhaprune::config_error);
    CHECK(target.name() == "global");
    CHECK(target.target<mhaprune::GlobalSelection>() != nullptr);
  }
}

}  // namespace test_policy_concepts
