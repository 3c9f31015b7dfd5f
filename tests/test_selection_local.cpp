// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// LocalSelection, the guards of SelectionOptions, and the input checks every score-driven policy makes.
//
// Which guard wins (the spec, from SelectionOptions in selection/block_scores.hpp): min_heads and
// max_ratio_per_block are hard caps on how many heads a block may lose; round_to then lowers the removal
// until the number of heads the block keeps is a multiple of round_to, and a block that cannot reach
// such a count within the caps loses nothing. The target is met from below; with exact_target a
// shortfall throws constraint_error naming the numbers instead.
#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <mhaprune/selection/global_selection.hpp>
#include <mhaprune/selection/local_selection.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "support/message_of.hpp"
#include "support/selection_blocks.hpp"
#include "support/weakest.hpp"

namespace test_selection_local {

using mhaprune::BlockScores;
using mhaprune::GqaMode;
using mhaprune::Index;
using mhaprune::LocalSelection;
using mhaprune::Selection;
using mhaprune::SelectionOptions;
using mhaprune_test::exact_message;
using mhaprune_test::fresh_block;
using mhaprune_test::pruned_block;
using mhaprune_test::weakest;

namespace {

/// Query heads removed from each key/value group.
std::vector<Index> removed_per_group(const BlockScores& b, const std::vector<Index>& removed) {
  std::vector<Index> per(static_cast<std::size_t>(b.kv_heads), 0);
  for (Index h : removed) ++per[static_cast<std::size_t>(h / b.group_size())];
  return per;
}

}  // namespace

TEST_CASE("local selection: each block loses its weakest heads, ties by position", "[selection][local]") {
  const std::vector<BlockScores> blocks{
      fresh_block("a", 8, {0.5, 0.1, 0.1, 0.9, 0.3, 0.1, 0.7, 0.2}),
      fresh_block("b", 4, {0.4, 0.3, 0.2, 0.1}),
  };
  const LocalSelection local;
  const SelectionOptions options;

  // floor(0.5 * 8) = 4: the three 0.1s (positions 1, 2, 5) and 0.2 (7); floor(0.5 * 4) = 2.
  CHECK(local.select(blocks, 0.5, options) == Selection{{1, 2, 5, 7}, {2, 3}});
  // floor(0.25 * 8) = 2: two of the three tied 0.1s, the first two by position.
  CHECK(local.select(blocks, 0.25, options) == Selection{{1, 2}, {3}});
  // floor(0.3 * 8) = 2, floor(0.3 * 4) = 1: counts are floors, never rounded up.
  CHECK(local.select(blocks, 0.3, options) == Selection{{1, 2}, {3}});
  CHECK(local.select(blocks, 0.0, options) == Selection{{}, {}});
  // Target 1 stops at min_heads = 1: every block keeps its best head.
  CHECK(local.select(blocks, 1.0, options) == Selection{{0, 1, 2, 4, 5, 6, 7}, {1, 2, 3}});
  CHECK(local.select({}, 0.5, options).empty());
}

TEST_CASE("local selection: the count is floor(target * heads) despite rounding in the product",
          "[selection][local]") {
  std::vector<double> scores(100);
  std::iota(scores.begin(), scores.end(), 0.0);
  const std::vector<BlockScores> blocks{fresh_block("wide", 100, scores)};
  // 0.29 * 100 is 28.999999999999996 in double; the spec says 29 heads.
  CHECK(LocalSelection().select(blocks, 0.29, {})[0].size() == 29u);
  CHECK(LocalSelection().select(blocks, 0.57, {})[0].size() == 57u);
  CHECK(LocalSelection().select(blocks, 0.999, {})[0].size() == 99u);
}

TEST_CASE("local selection: min_heads, max_ratio_per_block and round_to together",
          "[selection][local][guards]") {
  struct Case {
    const char* what;
    Index heads, kv_heads, original, original_kv;
    Index min_heads;
    double max_ratio;
    Index round_to;
    GqaMode mode;
    double target;
    Index want;      // floor(target * original) - already removed, clamped at 0
    Index expected;  // what the guards let the block lose now
  };
  const GqaMode U = GqaMode::uniform_per_group, W = GqaMode::whole_groups;
  // clang-format off
  const Case cases[] = {
    // what                                                 H  Hkv orig okv min ratio round mode target want exp
    {"no guards",                                           8, 8,  8,   8,  1, 1.0,  1,    U,   0.5,   4,   4},
    {"target 1 stops at min_heads 1",                       8, 8,  8,   8,  1, 1.0,  1,    U,   1.0,   8,   7},
    {"min_heads 3 caps 6 at 5",                             8, 8,  8,   8,  3, 1.0,  1,    U,   0.75,  6,   5},
    {"round_to 4 lowers 6 to 4",                            8, 8,  8,   8,  1, 1.0,  4,    U,   0.75,  6,   4},
    {"min_heads 3, round_to 4: keep 8 or 4; 6 -> 4",        8, 8,  8,   8,  3, 1.0,  4,    U,   0.75,  6,   4},
    {"min_heads 3, round_to 4: 2 -> 0",                     8, 8,  8,   8,  3, 1.0,  4,    U,   0.25,  2,   0},
    {"min_heads 3, round_to 4: 8 -> 4",                     8, 8,  8,   8,  3, 1.0,  4,    U,   1.0,   8,   4},
    {"min_heads 5, round_to 4: no multiple within caps",    8, 8,  8,   8,  5, 1.0,  4,    U,   1.0,   8,   0},
    {"max_ratio 0.25 with target 0.5",                      8, 8,  8,   8,  1, 0.25, 1,    U,   0.5,   4,   2},
    {"max_ratio 0.25, round_to 2",                          8, 8,  8,   8,  1, 0.25, 2,    U,   0.5,   4,   2},
    {"max_ratio 0.25, round_to 3: keeps 6",                 8, 8,  8,   8,  1, 0.25, 3,    U,   0.5,   4,   2},
    {"max_ratio 0.25, round_to 4: no multiple within caps", 8, 8,  8,   8,  1, 0.25, 4,    U,   0.5,   4,   0},
    {"max_ratio 0.5 and min_heads 6: the tighter wins",     8, 8,  8,   8,  6, 0.5,  1,    U,   0.5,   4,   2},
    {"round_to 3, target 1: keeps 3",                       8, 8,  8,   8,  1, 1.0,  3,    U,   1.0,   8,   5},
    {"round_to 3, target 0.5: keeps 6",                     8, 8,  8,   8,  1, 1.0,  3,    U,   0.5,   4,   2},
    {"round_to = H: nothing can go",                        8, 8,  8,   8,  1, 1.0,  8,    U,   1.0,   8,   0},
    {"round_to 4 from 6 heads: keeps 4",                    6, 6,  6,   6,  1, 1.0,  4,    U,   0.5,   3,   2},
    {"pruned 8 -> 6, max_ratio 0.5 counts the 2 gone",      6, 6,  8,   8,  1, 0.5,  1,    U,   1.0,   6,   2},
    {"pruned 8 -> 6, target 0.5: 2 more",                   6, 6,  8,   8,  1, 1.0,  1,    U,   0.5,   2,   2},
    {"pruned 8 -> 6, target 0.25 already met",              6, 6,  8,   8,  1, 1.0,  1,    U,   0.25,  0,   0},
    {"pruned 8 -> 6, target 0.125 below what is gone",      6, 6,  8,   8,  1, 1.0,  1,    U,   0.125, 0,   0},
    {"pruned 8 -> 7, round_to 4: keeps 4",                  7, 7,  8,   8,  1, 1.0,  4,    U,   0.5,   3,   3},
    {"pruned 8 -> 7, round_to 4: 1 -> 0",                   7, 7,  8,   8,  1, 1.0,  4,    U,   0.25,  1,   0},
    {"uniform H8/2: steps of 2, 5 -> 4",                    8, 2,  8,   2,  1, 1.0,  1,    U,   0.625, 5,   4},
    {"uniform H8/2, target 1: a group is never emptied",    8, 2,  8,   2,  1, 1.0,  1,    U,   1.0,   8,   6},
    {"uniform H8/2, round_to 4: 6 -> 4",                    8, 2,  8,   2,  1, 1.0,  4,    U,   0.75,  6,   4},
    {"uniform H8/4, min_heads 5: a step of 4 is too big",   8, 4,  8,   4,  5, 1.0,  1,    U,   1.0,   8,   0},
    {"uniform H8/2, max_ratio 0.5",                         8, 2,  8,   2,  1, 0.5,  1,    U,   1.0,   8,   4},
    {"uniform MQA H4/1 steps one head",                     4, 1,  4,   1,  1, 1.0,  1,    U,   0.5,   2,   2},
    {"whole groups H8/4: steps of 2, 5 -> 4",               8, 4,  8,   4,  1, 1.0,  1,    W,   0.625, 5,   4},
    {"whole groups H8/4, target 1: one group stays",        8, 4,  8,   4,  1, 1.0,  1,    W,   1.0,   8,   6},
    {"whole groups H8/4, min_heads 3",                      8, 4,  8,   4,  3, 1.0,  1,    W,   1.0,   8,   4},
    {"whole groups H8/4, round_to 4: 6 -> 4",               8, 4,  8,   4,  1, 1.0,  4,    W,   0.75,  6,   4},
    {"whole groups H8/2, max_ratio 0.25 < group of 4",      8, 2,  8,   2,  1, 0.25, 1,    W,   0.5,   4,   0},
    {"whole groups MQA H4/1: the only group stays",         4, 1,  4,   1,  1, 1.0,  1,    W,   0.5,   2,   0},
    {"whole groups pruned 8/4 -> 6/3, max_ratio 0.5",       6, 3,  8,   4,  1, 0.5,  1,    W,   1.0,   6,   2},
    {"uniform GQA 8/4 cut to 4/4: groups of 1 stay",        4, 4,  8,   4,  1, 1.0,  1,    U,   1.0,   4,   0},
    {"whole groups GQA 8/4 cut to 4/4: a head is a group",  4, 4,  8,   4,  1, 1.0,  1,    W,   0.75,  2,   2},
    {"MHA pruned 8 -> 4 still loses heads one by one",      4, 4,  8,   8,  1, 1.0,  1,    U,   0.75,  2,   2},
  };
  // clang-format on
  const std::vector<double> pattern{0.6, 0.2, 0.8, 0.1, 0.7, 0.3, 0.5, 0.4};

  for (const Case& c : cases) {
    INFO(c.what);
    std::vector<Index> ids(static_cast<std::size_t>(c.heads));
    std::iota(ids.begin(), ids.end(), c.original - c.heads);
    const std::vector<double> scores(pattern.begin(), pattern.begin() + c.heads);
    const std::vector<BlockScores> blocks{
        pruned_block("attn", c.original, c.original_kv, c.kv_heads, ids, scores)};
    SelectionOptions options;
    options.min_heads = c.min_heads;
    options.max_ratio_per_block = c.max_ratio;
    options.round_to = c.round_to;
    options.gqa_mode = c.mode;

    const Selection got = LocalSelection().select(blocks, c.target, options);
    REQUIRE(got.size() == 1u);
    const std::vector<Index>& removed = got[0];
    CHECK(static_cast<Index>(removed.size()) == c.expected);
    CHECK(std::is_sorted(removed.begin(), removed.end()));
    const Index kept = c.heads - c.expected;
    CHECK(kept >= c.min_heads);
    CHECK((c.expected == 0 || kept % c.round_to == 0));

    const BlockScores& b = blocks[0];
    if (b.group_size() == 1) {
      CHECK(removed == weakest(b.scores, c.expected));
    } else if (c.mode == GqaMode::uniform_per_group) {
      for (Index n : removed_per_group(b, removed)) CHECK(n == c.expected / b.kv_heads);
    } else {
      for (Index n : removed_per_group(b, removed)) CHECK((n == 0 || n == b.group_size()));
    }

    // exact_target: the same answer when the guards allow the target, else constraint_error.
    options.exact_target = true;
    if (c.expected == c.want) {
      CHECK(LocalSelection().select(blocks, c.target, options) == got);
    } else {
      const std::string msg = exact_message<mhaprune::constraint_error>(
          [&] { LocalSelection().select(blocks, c.target, options); });
      CHECK_THAT(msg, Catch::Contains("attn"));
      CHECK_THAT(msg, Catch::Contains("asks to remove " + std::to_string(c.want) + " heads"));
      CHECK_THAT(msg, Catch::Contains("the closest is " + std::to_string(c.expected)));
    }
  }
}

TEST_CASE("local selection: exact_target names the allowed counts", "[selection][local][guards]") {
  const std::vector<BlockScores> blocks{fresh_block("layer.7", 8, {1, 2, 3, 4, 5, 6, 7, 8})};
  SelectionOptions options;
  options.min_heads = 3;
  options.round_to = 4;
  options.exact_target = true;
  // Removal 0..5 under min_heads; kept 8 or 4 under round_to.
  const std::string msg =
      exact_message<mhaprune::constraint_error>([&] { LocalSelection().select(blocks, 0.75, options); });
  CHECK_THAT(msg, Catch::Contains("layer.7"));
  CHECK_THAT(msg, Catch::EndsWith(": the target asks to remove 6 heads, but the guards and the layout allow "
                                  "only {0, 4}; the closest is 4"));
  // constraint_error is an mhaprune::error.
  CHECK_THROWS_AS(LocalSelection().select(blocks, 0.75, options), mhaprune::error);
  CHECK(LocalSelection().select(blocks, 0.5, options) == Selection{{0, 1, 2, 3}});
}

TEST_CASE("local selection: GQA uniform_per_group takes the lowest query heads of every group",
          "[selection][local][gqa]") {
  // Two groups of 4. Group 1 holds the lowest scores overall, yet both groups lose the same number.
  const std::vector<BlockScores> blocks{fresh_block("gqa", 2, {0.5, 0.1, 0.9, 0.3, 0.2, 0.8, 0.05, 0.7})};
  SelectionOptions options;
  options.gqa_mode = GqaMode::uniform_per_group;
  const LocalSelection local;
  // 3 -> 2: one per group, the 0.1 (1) and the 0.05 (6).
  CHECK(local.select(blocks, 0.375, options) == Selection{{1, 6}});
  // 4: two per group: 0.1, 0.3 of group 0; 0.05, 0.2 of group 1.
  CHECK(local.select(blocks, 0.5, options) == Selection{{1, 3, 4, 6}});
  // Target 1: each group keeps its best head (2 and 5); the K/V heads stay.
  CHECK(local.select(blocks, 1.0, options) == Selection{{0, 1, 3, 4, 6, 7}});

  // Ties inside a group go by position.
  const std::vector<BlockScores> tied{fresh_block("tied", 2, {0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25})};
  CHECK(local.select(tied, 0.5, options) == Selection{{0, 1, 4, 5}});
}

TEST_CASE("local selection: GQA whole_groups removes groups by the mean of their query heads",
          "[selection][local][gqa]") {
  // Four groups of 2, means 0.5, 0.5, 0.25, 0.5. Head 7 has the lowest score of all, but its group's
  // mean ties with groups 0 and 1, and ties go by group index.
  const std::vector<BlockScores> blocks{
      fresh_block("gqa", 4, {0.5, 0.5, 0.875, 0.125, 0.25, 0.25, 0.9375, 0.0625})};
  SelectionOptions options;
  options.gqa_mode = GqaMode::whole_groups;
  const LocalSelection local;
  CHECK(local.select(blocks, 0.25, options) == Selection{{4, 5}});
  CHECK(local.select(blocks, 0.5, options) == Selection{{0, 1, 4, 5}});
  CHECK(local.select(blocks, 0.75, options) == Selection{{0, 1, 2, 3, 4, 5}});
  // Target 1: the last group (here group 3, the last of the tied means) is never removed.
  CHECK(local.select(blocks, 1.0, options) == Selection{{0, 1, 2, 3, 4, 5}});
  // 3 heads is not a whole number of groups: 2.
  CHECK(local.select(blocks, 0.375, options) == Selection{{4, 5}});
}

TEST_CASE("local selection: normalisation never changes a block's own ranking", "[selection][local]") {
  const std::vector<BlockScores> blocks{fresh_block("a", 6, {3.0, -1.0, 7.0, 2.0, 2.0, 10.0})};
  for (auto n :
       {mhaprune::Normalization::none, mhaprune::Normalization::l2, mhaprune::Normalization::standardize}) {
    SelectionOptions options;
    options.normalization = n;
    CHECK(LocalSelection().select(blocks, 0.5, options) == Selection{{1, 3, 4}});
  }
}

TEST_CASE("local selection: targets are cumulative over rounds", "[selection][local][rounds]") {
  // Round 1 on a fresh block of 8.
  std::vector<double> scores{0.6, 0.2, 0.8, 0.1, 0.7, 0.3, 0.5, 0.4};
  const std::vector<BlockScores> round1{fresh_block("a", 8, scores)};
  CHECK(LocalSelection().select(round1, 0.25, {}) == Selection{{1, 3}});

  // Round 2: heads 1 and 3 are gone; positions are current, ids original.
  const std::vector<BlockScores> round2{
      pruned_block("a", 8, 8, 8 - 2, {0, 2, 4, 5, 6, 7}, {0.6, 0.8, 0.7, 0.3, 0.5, 0.4})};
  SelectionOptions exact;
  exact.exact_target = true;
  CHECK(LocalSelection().select(round2, 0.25, exact) == Selection{{}});   // already there
  CHECK(LocalSelection().select(round2, 0.125, exact) == Selection{{}});  // below what is gone
  // 0.5 of 8 = 4 in all: 2 more, the current positions of original heads 5 and 7.
  CHECK(LocalSelection().select(round2, 0.5, exact) == Selection{{3, 5}});
}

TEMPLATE_TEST_CASE("score-driven selection rejects bad inputs", "[selection][errors]",
                   mhaprune::LocalSelection, mhaprune::GlobalSelection) {
  const TestType policy;
  const std::vector<BlockScores> good{fresh_block("attn.0", 4, {0.1, 0.2, 0.3, 0.4})};
  using mhaprune::error;
  using mhaprune::shape_error;

  SECTION("target outside [0, 1]") {
    CHECK(exact_message<error>([&] { policy.select(good, -0.1, {}); }) ==
          "the target sparsity must be in [0, 1], got -0.1");
    CHECK(exact_message<error>([&] { policy.select(good, 1.5, {}); }) ==
          "the target sparsity must be in [0, 1], got 1.5");
    CHECK_THAT(exact_message<error>([&] { policy.select(good, std::nan(""), {}); }),
               Catch::Contains("the target sparsity must be in [0, 1], got"));
    CHECK_NOTHROW(policy.select(good, 0.0, {}));
    CHECK_NOTHROW(policy.select(good, 1.0, {}));
  }
  SECTION("options out of range") {
    SelectionOptions o;
    o.min_heads = 0;
    CHECK(exact_message<error>([&] { policy.select(good, 0.5, o); }) == "min_heads must be >= 1, got 0");
    o = {};
    o.max_ratio_per_block = 1.5;
    CHECK(exact_message<error>([&] { policy.select(good, 0.5, o); }) ==
          "max_ratio_per_block must be in [0, 1], got 1.5");
    o.max_ratio_per_block = -0.25;
    CHECK(exact_message<error>([&] { policy.select(good, 0.5, o); }) ==
          "max_ratio_per_block must be in [0, 1], got -0.25");
    o = {};
    o.round_to = 0;
    CHECK(exact_message<error>([&] { policy.select(good, 0.5, o); }) == "round_to must be >= 1, got 0");
    o.round_to = -3;
    CHECK(exact_message<error>([&] { policy.select(good, 0.5, o); }) == "round_to must be >= 1, got -3");
    // The bounds themselves are valid.
    o = {};
    o.max_ratio_per_block = 0.0;
    CHECK(policy.select(good, 1.0, o) == Selection{{}});
  }
  SECTION("scores that do not fit the block") {
    BlockScores short_scores = good[0];
    short_scores.scores = Eigen::VectorXd::Constant(3, 0.5);
    CHECK(exact_message<shape_error>([&] {
            policy.select({good[0], short_scores}, 0.5, {});
          }) ==
          "block \"attn.0\": scores for 3 heads and 4 ids, but the block has 4 heads in 4 key/value groups "
          "(originally 4)");
    BlockScores long_scores = good[0];
    long_scores.scores = Eigen::VectorXd::Constant(5, 0.5);
    CHECK_THAT(exact_message<shape_error>([&] { policy.select({long_scores}, 0.5, {}); }),
               Catch::Contains("scores for 5 heads"));
    BlockScores ids = good[0];
    ids.head_ids.pop_back();
    CHECK_THAT(exact_message<shape_error>([&] { policy.select({ids}, 0.5, {}); }),
               Catch::Contains("scores for 4 heads and 3 ids"));
    BlockScores ragged = fresh_block("attn.1", 4, {1, 2, 3, 4, 5, 6});
    CHECK_THAT(exact_message<shape_error>([&] { policy.select({ragged}, 0.5, {}); }),
               Catch::Contains("the block has 6 heads in 4 key/value groups"));
    BlockScores grown = good[0];
    grown.original_heads = 3;
    CHECK_THAT(exact_message<shape_error>([&] { policy.select({grown}, 0.5, {}); }),
               Catch::Contains("(originally 3)"));
  }
  SECTION("non-finite scores") {
    const BlockScores pruned = pruned_block("attn.1", 8, 8, 4, {0, 3, 5, 7}, {0.1, 0.2, std::nan(""), 0.4});
    CHECK(exact_message<error>([&] {
            policy.select({good[0], pruned}, 0.5, {});
          }) == "block \"attn.1\": the score of head 2 (original id 5) is not finite");
    const BlockScores inf =
        pruned_block("attn.2", 4, 4, 4, {0, 1, 2, 3}, {-std::numeric_limits<double>::infinity(), 0, 0, 0});
    CHECK(exact_message<error>([&] { policy.select({inf}, 0.5, {}); }) ==
          "block \"attn.2\": the score of head 0 (original id 0) is not finite");
  }
}

}  // namespace test_selection_local
