// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// GlobalSelection: exactly k = floor(target * all original heads) heads gone, never more, ties by
// (score, block order, head position); the guards per block; both GQA modes; the exact dynamic
// programme checked against brute force; normalisation; cumulative targets over rounds.
//
// Guard precedence (SelectionOptions): min_heads and max_ratio_per_block are hard caps on what a block
// may lose; round_to then lowers a block's removal until its kept count is a multiple of round_to.
#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <mhaprune/schedules/iterative.hpp>
#include <mhaprune/selection/global_selection.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "support/message_of.hpp"
#include "support/selection_blocks.hpp"

namespace test_selection_global {

using mhaprune::BlockScores;
using mhaprune::GlobalSelection;
using mhaprune::GqaMode;
using mhaprune::Index;
using mhaprune::Normalization;
using mhaprune::Selection;
using mhaprune::SelectionOptions;
using mhaprune_test::exact_message;
using mhaprune_test::fresh_block;
using mhaprune_test::pruned_block;

namespace {

Index total_removed(const Selection& s) {
  Index n = 0;
  for (const auto& block : s) n += static_cast<Index>(block.size());
  return n;
}

/// What the block looks like after the selected heads are removed: the next round's BlockScores.
BlockScores after_removal(const BlockScores& b, const std::vector<Index>& removed) {
  std::vector<char> gone(static_cast<std::size_t>(b.heads), 0);
  for (Index h : removed) gone[static_cast<std::size_t>(h)] = 1;
  std::vector<Index> ids;
  std::vector<double> scores;
  std::vector<Index> left(static_cast<std::size_t>(b.kv_heads), 0);
  for (Index h = 0; h < b.heads; ++h) {
    if (gone[static_cast<std::size_t>(h)]) continue;
    ids.push_back(b.head_ids[static_cast<std::size_t>(h)]);
    scores.push_back(b.scores(h));
    ++left[static_cast<std::size_t>(h / b.group_size())];
  }
  Index groups = 0, per = -1;
  for (Index n : left) {
    if (n == 0) continue;
    ++groups;
    if (per >= 0) REQUIRE(n == per);  // the policy never leaves ragged groups
    per = n;
  }
  return pruned_block(b.name, b.original_heads, b.original_kv_heads, groups, std::move(ids), scores);
}

// ---- An independent brute force over every combination of per-block counts. ----

struct Choice {
  Index count;
  double cost;
  std::vector<Index> heads;  // ascending positions
};

/// Every removal a block may make under `o` (normalisation none), written from the headers' text: a
/// block that was grouped-query attention originally stays so, even when down to one head per group.
std::vector<Choice> choices_of(const BlockScores& b, const SelectionOptions& o) {
  const Index H = b.heads, G = b.kv_heads, r = H / G;
  const bool grouped = b.original_kv_heads < b.original_heads;
  auto by_score = [&](std::vector<Index> v, const Eigen::VectorXd& s) {
    std::stable_sort(v.begin(), v.end(), [&](Index x, Index y) { return s(x) < s(y); });
    return v;
  };
  Index step = 1, layout_cap = H - 1;
  if (grouped && o.gqa_mode == GqaMode::uniform_per_group) {
    step = G;
    layout_cap = (r - 1) * G;
  } else if (grouped) {
    step = r;
    layout_cap = (G - 1) * r;
  }
  const Index ratio_cap =
      static_cast<Index>(std::floor(o.max_ratio_per_block * static_cast<double>(b.original_heads) + 1e-9)) -
      (b.original_heads - H);
  const Index cap = std::min({layout_cap, H - o.min_heads, ratio_cap});

  std::vector<Choice> out;
  for (Index c = 0; c <= cap; c += step) {
    if (c != 0 && (H - c) % o.round_to != 0) continue;
    std::vector<Index> heads;
    if (!grouped) {
      std::vector<Index> all(static_cast<std::size_t>(H));
      std::iota(all.begin(), all.end(), Index{0});
      const auto sorted = by_score(all, b.scores);
      heads.assign(sorted.begin(), sorted.begin() + c);
    } else if (o.gqa_mode == GqaMode::uniform_per_group) {
      for (Index g = 0; g < G; ++g) {
        std::vector<Index> members(static_cast<std::size_t>(r));
        std::iota(members.begin(), members.end(), g * r);
        const auto sorted = by_score(members, b.scores);
        heads.insert(heads.end(), sorted.begin(), sorted.begin() + c / G);
      }
    } else {
      Eigen::VectorXd mean(G);
      for (Index g = 0; g < G; ++g) mean(g) = b.scores.segment(g * r, r).mean();
      std::vector<Index> groups(static_cast<std::size_t>(G));
      std::iota(groups.begin(), groups.end(), Index{0});
      const auto sorted = by_score(groups, mean);
      for (Index i = 0; i < c / r; ++i)
        for (Index j = 0; j < r; ++j) heads.push_back(sorted[static_cast<std::size_t>(i)] * r + j);
    }
    std::sort(heads.begin(), heads.end());
    double cost = 0.0;
    for (Index h : heads) cost += b.scores(h);
    out.push_back({c, cost, heads});
  }
  return out;
}

struct BruteForce {
  Index total = -1;
  double cost = 0.0;
  std::vector<std::size_t> pick;  // index into each block's choices
  int optimal_combinations = 0;   // how many combinations reach (total, cost), within 1e-9
};

BruteForce brute_force(const std::vector<std::vector<Choice>>& choices, Index k) {
  BruteForce best;
  std::vector<std::size_t> pick(choices.size(), 0);
  std::function<void(std::size_t, Index, double)> walk = [&](std::size_t b, Index total, double cost) {
    if (total > k) return;
    if (b == choices.size()) {
      if (total > best.total || (total == best.total && cost < best.cost - 1e-9)) {
        best.total = total;
        best.cost = cost;
        best.pick = pick;
        best.optimal_combinations = 1;
      } else if (total == best.total && std::abs(cost - best.cost) <= 1e-9) {
        ++best.optimal_combinations;
      }
      return;
    }
    for (std::size_t i = 0; i < choices[b].size(); ++i) {
      pick[b] = i;
      walk(b + 1, total + choices[b][i].count, cost + choices[b][i].cost);
    }
  };
  walk(0, 0, 0.0);
  return best;
}

}  // namespace

TEST_CASE("global selection: exactly k heads under ties, where a threshold rule takes every tie",
          "[selection][global][ties]") {
  // Eight heads of score 0 among twelve.
  const std::vector<BlockScores> blocks{
      fresh_block("a", 4, {1, 0, 0, 1}),
      fresh_block("b", 4, {0, 0, 1, 0}),
      fresh_block("c", 4, {0, 1, 0, 0}),
  };
  const Index total_original = 12;

  for (double target : {0.25, 0.5}) {
    INFO("target " << target);
    const Index k = static_cast<Index>(std::floor(target * static_cast<double>(total_original)));
    // The reference pruner's rule: threshold = k-th smallest score, remove every score <= threshold.
    std::vector<double> all;
    for (const BlockScores& b : blocks) all.insert(all.end(), b.scores.data(), b.scores.data() + b.heads);
    std::sort(all.begin(), all.end());
    const double threshold = all[static_cast<std::size_t>(k - 1)];
    const auto by_threshold = std::count_if(all.begin(), all.end(), [&](double s) { return s <= threshold; });
    CHECK(by_threshold == 8);
    CHECK(by_threshold > k);

    const Selection got = GlobalSelection().select(blocks, target, {});
    CHECK(total_removed(got) == k);
  }
  // Ties go by block order, then head position: which heads, exactly.
  CHECK(GlobalSelection().select(blocks, 0.25, {}) == Selection{{1, 2}, {0}, {}});
  CHECK(GlobalSelection().select(blocks, 0.5, {}) == Selection{{1, 2}, {0, 1, 3}, {0}});
}

TEST_CASE("global selection: never more than k for any target", "[selection][global][ties]") {
  const std::vector<BlockScores> blocks{
      fresh_block("a", 4, {0.5, 0.5, 0.5, 0.5}),
      fresh_block("b", 4, {0.5, 0.25, 0.5, 0.25}),
      fresh_block("c", 4, {0.25, 0.5, 0.5, 0.5}),
  };
  // min_heads 1: each block can lose 3, nine in all.
  for (Index k = 0; k <= 12; ++k) {
    INFO("k " << k);
    const Selection got = GlobalSelection().select(blocks, static_cast<double>(k) / 12.0, {});
    CHECK(total_removed(got) == std::min<Index>(k, 9));
  }
  // The three 0.25s, then the 0.5s in (block, position) order within the caps.
  CHECK(GlobalSelection().select(blocks, 3.0 / 12.0, {}) == Selection{{}, {1, 3}, {0}});
  CHECK(GlobalSelection().select(blocks, 5.0 / 12.0, {}) == Selection{{0, 1}, {1, 3}, {0}});
  CHECK(GlobalSelection().select(blocks, 7.0 / 12.0, {}) == Selection{{0, 1, 2}, {0, 1, 3}, {0}});

  // The same interleaving across blocks: 0.25s at alternate positions.
  const std::vector<BlockScores> alternating{
      fresh_block("a", 4, {0.5, 0.25, 0.5, 0.25}),
      fresh_block("b", 4, {0.25, 0.5, 0.25, 0.5}),
  };
  CHECK(GlobalSelection().select(alternating, 3.0 / 8.0, {}) == Selection{{1, 3}, {0}});
}

TEST_CASE("global selection: the guards hold per block", "[selection][global][guards]") {
  // Block a holds all the weak heads.
  const std::vector<BlockScores> blocks{
      fresh_block("a", 8, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}),
      fresh_block("b", 8, {1.8, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1}),
  };
  SECTION("max_ratio 0.25 with target 0.5: a loses 2, b the rest") {
    SelectionOptions o;
    o.max_ratio_per_block = 0.25;
    // k = 8, but each block may lose only 2.
    CHECK(GlobalSelection().select(blocks, 0.5, o) == Selection{{0, 1}, {6, 7}});
    o.exact_target = true;
    CHECK(exact_message<mhaprune::constraint_error>([&] { GlobalSelection().select(blocks, 0.5, o); }) ==
          "global selection: the target asks to remove 8 more heads, but the guards and the layouts allow "
          "only 4");
  }
  SECTION("min_heads 5") {
    SelectionOptions o;
    o.min_heads = 5;
    CHECK(GlobalSelection().select(blocks, 0.25, o) == Selection{{0, 1, 2}, {7}});
  }
  SECTION("min_heads 3, round_to 4: each block keeps 8 or 4") {
    SelectionOptions o;
    o.min_heads = 3;
    o.round_to = 4;
    // k = 6: one block loses 4 (a, the cheaper); 6 is out of reach.
    CHECK(GlobalSelection().select(blocks, 6.0 / 16.0, o) == Selection{{0, 1, 2, 3}, {}});
    CHECK(GlobalSelection().select(blocks, 1.0, o) == Selection{{0, 1, 2, 3}, {4, 5, 6, 7}});
    o.exact_target = true;
    CHECK_THAT(
        exact_message<mhaprune::constraint_error>([&] { GlobalSelection().select(blocks, 6.0 / 16.0, o); }),
        Catch::Contains("asks to remove 6 more heads") && Catch::Contains("allow only 4"));
    CHECK_NOTHROW(GlobalSelection().select(blocks, 0.5, o));
  }
  SECTION("round_to with no multiple inside the caps: that block loses nothing") {
    SelectionOptions o;
    o.max_ratio_per_block = 0.25;
    o.round_to = 4;
    CHECK(GlobalSelection().select(blocks, 1.0, o) == Selection{{}, {}});
  }
}

TEST_CASE("global selection: GQA uniform_per_group competes by the cost of a rung",
          "[selection][global][gqa]") {
  // A rung takes the weakest remaining head of every group. a's rung costs 0.125 + 0.25 = 0.375;
  // b's costs 0.0625 + 0.625 = 0.6875, although b has the single weakest head.
  const std::vector<BlockScores> blocks{
      fresh_block("a", 2, {0.125, 0.875, 0.25, 0.75}),
      fresh_block("b", 2, {0.0625, 0.5, 0.625, 0.6875}),
  };
  SelectionOptions o;
  o.gqa_mode = GqaMode::uniform_per_group;
  CHECK(GlobalSelection().select(blocks, 0.25, o) == Selection{{0, 2}, {}});
  // 3 is not a whole rung: still 2.
  CHECK(GlobalSelection().select(blocks, 0.375, o) == Selection{{0, 2}, {}});
  CHECK(GlobalSelection().select(blocks, 0.5, o) == Selection{{0, 2}, {0, 2}});
  // A group is never emptied: 4 of 8 at most.
  CHECK(GlobalSelection().select(blocks, 1.0, o) == Selection{{0, 2}, {0, 2}});
  o.exact_target = true;
  CHECK_THAT(exact_message<mhaprune::constraint_error>([&] { GlobalSelection().select(blocks, 0.75, o); }),
             Catch::Contains("asks to remove 6 more heads") && Catch::Contains("allow only 4"));
}

TEST_CASE("global selection: GQA whole_groups removes whole groups by score", "[selection][global][gqa]") {
  // a: 4 groups of 2 with sums 1.0, 0.375, 1.5, 1.0; head 6 is the weakest of all but its group is not.
  // b: 2 groups of 2 with sums 0.625, 1.75.
  const std::vector<BlockScores> blocks{
      fresh_block("a", 4, {0.5, 0.5, 0.25, 0.125, 0.75, 0.75, 0.0625, 0.9375}),
      fresh_block("b", 2, {0.3125, 0.3125, 0.875, 0.875}),
  };
  SelectionOptions o;
  o.gqa_mode = GqaMode::whole_groups;
  CHECK(GlobalSelection().select(blocks, 2.0 / 12.0, o) == Selection{{2, 3}, {}});
  CHECK(GlobalSelection().select(blocks, 4.0 / 12.0, o) == Selection{{2, 3}, {0, 1}});
  // Groups 0 and 3 of a tie at 1.0: group 0 first.
  CHECK(GlobalSelection().select(blocks, 6.0 / 12.0, o) == Selection{{0, 1, 2, 3}, {0, 1}});
  CHECK(GlobalSelection().select(blocks, 5.0 / 12.0, o) == Selection{{2, 3}, {0, 1}});
}

TEST_CASE("global selection: only the exact dynamic programme reaches k with an MHA and a GQA block",
          "[selection][global][gqa][dp]") {
  // a: MHA, 4 heads; with max_ratio 0.75 it may lose 0..3. b: 12 heads in 3 groups of 4, whole_groups;
  // it may lose 0, 4 or 8. k = floor(0.5 * 16) = 8 is reachable only as a 0, b 8.
  const std::vector<BlockScores> blocks{
      fresh_block("a", 4, {0.01, 0.02, 0.03, 0.9}),
      fresh_block("b", 3, {0.10, 0.11, 0.12, 0.13, 0.20, 0.21, 0.22, 0.23, 0.90, 0.91, 0.92, 0.93}),
  };
  SelectionOptions o;
  o.max_ratio_per_block = 0.75;
  o.gqa_mode = GqaMode::whole_groups;
  const Index k = 8;

  // A greedy over units weakest first (a's heads one by one, b's groups), skipping what does not fit,
  // stops at 7: a0, a1, a2, then b's first group; b's second group would make 11.
  struct Unit {
    double mean;
    Index size;
    char block;
  };
  std::vector<Unit> units{{0.01, 1, 'a'}, {0.02, 1, 'a'}, {0.03, 1, 'a'}, {0.115, 4, 'b'}, {0.215, 4, 'b'}};
  std::sort(units.begin(), units.end(), [](const Unit& x, const Unit& y) { return x.mean < y.mean; });
  Index greedy = 0;
  for (const Unit& u : units)
    if (greedy + u.size <= k) greedy += u.size;
  CHECK(greedy == 7);
  // So does ranking heads one by one and rounding each block down to what it may lose: a 3, b 5 -> 4.
  CHECK(3 + (5 / 4) * 4 == 7);

  const Selection got = GlobalSelection().select(blocks, 0.5, o);
  CHECK(total_removed(got) == k);
  CHECK(got == Selection{{}, {0, 1, 2, 3, 4, 5, 6, 7}});
  o.exact_target = true;
  CHECK(GlobalSelection().select(blocks, 0.5, o) == got);
  // a 0..3 plus b 0, 4, 8 reaches anything up to 11; 12 is out of reach.
  CHECK(
      exact_message<mhaprune::constraint_error>([&] { GlobalSelection().select(blocks, 0.75, o); }) ==
      "global selection: the target asks to remove 12 more heads, but the guards and the layouts allow only "
      "11");
}

TEST_CASE("global selection: the dynamic programme matches brute force on random scores",
          "[selection][global][gqa][dp]") {
  struct Shape {
    Index heads, kv_heads, original, original_kv;
  };
  const std::vector<std::vector<Shape>> block_sets{
      {{4, 4, 4, 4}, {12, 3, 12, 3}},                              // MHA + GQA
      {{4, 4, 4, 4}, {12, 3, 12, 3}, {6, 2, 6, 2}, {6, 6, 8, 8}},  // + GQA, + an already pruned MHA
      {{4, 4, 4, 4}, {6, 6, 8, 8}, {5, 5, 5, 5}},                  // MHA only: greedy with round_to 1
      {{8, 2, 8, 2}, {6, 3, 8, 4}, {4, 4, 4, 4}, {4, 4, 8, 4}},    // GQA pruned: 8/4 -> 6/3, 8/4 -> 4/4
  };
  struct Guards {
    Index min_heads;
    double max_ratio;
    Index round_to;
  };
  const std::vector<Guards> guards{{1, 1.0, 1}, {2, 0.75, 1}, {1, 1.0, 2}, {1, 0.75, 3}, {3, 0.5, 2}};
  std::mt19937 rng(0x5eed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);

  int compared = 0, unique_compared = 0;
  for (const auto& shapes : block_sets) {
    for (int draw = 0; draw < 5; ++draw) {
      std::vector<BlockScores> blocks;
      Index total_original = 0;
      for (std::size_t i = 0; i < shapes.size(); ++i) {
        const Shape& s = shapes[i];
        std::vector<Index> ids(static_cast<std::size_t>(s.heads));
        std::iota(ids.begin(), ids.end(), s.original - s.heads);
        std::vector<double> scores(static_cast<std::size_t>(s.heads));
        for (double& x : scores) x = uniform(rng);
        blocks.push_back(
            pruned_block("block" + std::to_string(i), s.original, s.original_kv, s.kv_heads, ids, scores));
        total_original += s.original;
      }
      Index already = 0;
      for (const auto& b : blocks) already += b.original_heads - b.heads;

      for (GqaMode mode : {GqaMode::uniform_per_group, GqaMode::whole_groups}) {
        for (const Guards& g : guards) {
          SelectionOptions o;
          o.gqa_mode = mode;
          o.min_heads = g.min_heads;
          o.max_ratio_per_block = g.max_ratio;
          o.round_to = g.round_to;
          std::vector<std::vector<Choice>> choices;
          for (const auto& b : blocks) choices.push_back(choices_of(b, o));

          for (Index target_count = 0; target_count <= total_original; ++target_count) {
            const double target = static_cast<double>(target_count) / static_cast<double>(total_original);
            const Index k = std::max<Index>(0, target_count - already);
            const BruteForce best = brute_force(choices, k);
            const Selection got = GlobalSelection().select(blocks, target, o);
            REQUIRE(got.size() == blocks.size());
            INFO("set of " << shapes.size() << " blocks, draw " << draw << ", min_heads " << g.min_heads
                           << ", max_ratio " << g.max_ratio << ", round_to " << g.round_to
                           << ", whole_groups " << (mode == GqaMode::whole_groups) << ", k " << k);
            CHECK(total_removed(got) == best.total);
            CHECK(total_removed(got) <= k);
            double cost = 0.0;
            for (std::size_t b = 0; b < blocks.size(); ++b)
              for (Index h : got[b]) cost += blocks[b].scores(h);
            CHECK(cost == Approx(best.cost).margin(1e-9));
            ++compared;
            if (best.optimal_combinations == 1) {
              ++unique_compared;
              for (std::size_t b = 0; b < blocks.size(); ++b) CHECK(got[b] == choices[b][best.pick[b]].heads);
            }
          }
        }
      }
    }
  }
  CHECK(compared > 1000);
  CHECK(unique_compared > compared / 2);
}

TEST_CASE("global selection: equal costs in the dynamic programme go to the earlier block",
          "[selection][global][ties][dp]") {
  // The same tie rule as one-head steps: (score, block order, head position).
  SECTION("MHA blocks with round_to 2") {
    const std::vector<BlockScores> blocks{fresh_block("a", 4, {1, 1, 1, 1}),
                                          fresh_block("b", 4, {1, 1, 1, 1})};
    SelectionOptions o;
    o.round_to = 2;
    CHECK(GlobalSelection().select(blocks, 0.25, o) == Selection{{0, 1}, {}});
    CHECK(GlobalSelection().select(blocks, 0.5, o) == Selection{{0, 1}, {0, 1}});
    // With one-head steps the same scores give the same answer.
    CHECK(GlobalSelection().select(blocks, 0.25, {}) == Selection{{0, 1}, {}});
  }
  SECTION("GQA blocks, both modes") {
    const std::vector<BlockScores> blocks{fresh_block("a", 2, {0.5, 0.5, 0.5, 0.5}),
                                          fresh_block("b", 2, {0.5, 0.5, 0.5, 0.5})};
    SelectionOptions o;
    o.gqa_mode = GqaMode::uniform_per_group;
    CHECK(GlobalSelection().select(blocks, 0.25, o) == Selection{{0, 2}, {}});
    o.gqa_mode = GqaMode::whole_groups;
    CHECK(GlobalSelection().select(blocks, 0.25, o) == Selection{{0, 1}, {}});
  }
  SECTION("three blocks, the middle one cheaper") {
    const std::vector<BlockScores> blocks{fresh_block("a", 2, {1, 1, 1, 1}),
                                          fresh_block("b", 2, {0, 0, 0, 0}),
                                          fresh_block("c", 2, {1, 1, 1, 1})};
    SelectionOptions o;
    o.gqa_mode = GqaMode::whole_groups;
    CHECK(GlobalSelection().select(blocks, 4.0 / 12.0, o) == Selection{{0, 1}, {0, 1}, {}});
  }
}

TEST_CASE("global selection: normalisation changes the ranking across blocks", "[selection][global][norm]") {
  const std::vector<BlockScores> blocks{fresh_block("a", 4, {1, 2, 3, 4}),
                                        fresh_block("b", 4, {10, 20, 30, 100})};
  SelectionOptions o;
  // k = 4; each block may lose 3.
  SECTION("none: a's small raw scores lose") {
    o.normalization = Normalization::none;
    CHECK(GlobalSelection().select(blocks, 0.5, o) == Selection{{0, 1, 2}, {0}});
  }
  SECTION("l2: a / sqrt(30) = .183 .365 .548 .730, b / sqrt(11400) = .094 .187 .281 .937") {
    o.normalization = Normalization::l2;
    CHECK(GlobalSelection().select(blocks, 0.5, o) == Selection{{0}, {0, 1, 2}});
  }
  SECTION("standardize (sample sd): a = -1.162 -.387 .387 1.162, b = -.735 -.490 -.245 1.470") {
    o.normalization = Normalization::standardize;
    CHECK(GlobalSelection().select(blocks, 0.5, o) == Selection{{0, 1}, {0, 1}});
  }
  SECTION("standardize divides by the sample standard deviation (n - 1), as torch.std does") {
    // a = {0, 1} -> -0.7071 0.7071; b = {0, 0.25, 1} -> -0.8006 -0.3203 1.1209. With the population
    // deviation a's 0 would be -1 and b's -0.9806: the other head would go.
    const std::vector<BlockScores> sizes{fresh_block("a", 2, {0, 1}), fresh_block("b", 3, {0, 0.25, 1})};
    o.normalization = Normalization::standardize;
    CHECK(GlobalSelection().select(sizes, 0.2, o) == Selection{{}, {0}});
    o.normalization = Normalization::none;  // a tie at 0: block order
    CHECK(GlobalSelection().select(sizes, 0.2, o) == Selection{{0}, {}});
  }
  SECTION("standardize makes a flat block all zeros") {
    // c's constant scores become 0: they rank after a's -1.162 and -0.387, before its +0.387.
    const std::vector<BlockScores> flat{fresh_block("a", 4, {1, 2, 3, 4}), fresh_block("c", 4, {7, 7, 7, 7})};
    o.normalization = Normalization::standardize;
    CHECK(GlobalSelection().select(flat, 3.0 / 8.0, o) == Selection{{0, 1}, {0}});
    o.normalization = Normalization::none;
    CHECK(GlobalSelection().select(flat, 3.0 / 8.0, o) == Selection{{0, 1, 2}, {}});
  }
}

TEST_CASE("global selection: targets are cumulative over already pruned blocks",
          "[selection][global][rounds]") {
  // a had 8 heads and lost original heads 2 and 5.
  const std::vector<BlockScores> blocks{
      pruned_block("a", 8, 8, 6, {0, 1, 3, 4, 6, 7}, {0.3, 0.9, 0.2, 0.8, 0.7, 0.6}),
      fresh_block("b", 8, {0.5, 0.4, 0.95, 0.85, 0.1, 0.75, 0.65, 0.55}),
  };
  SelectionOptions exact;
  exact.exact_target = true;
  // 0.25 of 16 = 4 in all, 2 already gone: b's 0.1 and a's 0.2.
  CHECK(GlobalSelection().select(blocks, 0.25, exact) == Selection{{2}, {4}});
  // At or below what is gone: nothing more.
  CHECK(GlobalSelection().select(blocks, 0.125, exact) == Selection{{}, {}});
  CHECK(GlobalSelection().select(blocks, 0.0625, exact) == Selection{{}, {}});
  // 0.5 of 16 = 8, 6 more: .1 .2 .3 .4 .5 .55.
  CHECK(GlobalSelection().select(blocks, 0.5, exact) == Selection{{0, 2}, {0, 1, 4, 7}});
  // max_ratio counts the heads a lost before: 0.5 of 8 = 4 in all, 2 more for a.
  SelectionOptions capped;
  capped.max_ratio_per_block = 0.5;
  const Selection got = GlobalSelection().select(blocks, 0.75, capped);
  CHECK(got[0].size() == 2u);
  CHECK(got[1].size() == 4u);
}

TEST_CASE("global selection: rounds driven by an iterative schedule never over-prune",
          "[selection][global][rounds][schedule]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  auto random_block = [&](std::string name, Index heads, Index kv_heads) {
    std::vector<double> s(static_cast<std::size_t>(heads));
    for (double& x : s) x = uniform(rng);
    return fresh_block(std::move(name), kv_heads, s);
  };
  const mhaprune::IterativeSchedule schedule(0, 10, 2, mhaprune::Decay::cube, 0.1);
  const double final_target = 0.5;

  SECTION("MHA: exactly floor(target * 24) after every pruning step") {
    std::vector<BlockScores> blocks{random_block("a", 8, 8), random_block("b", 8, 8),
                                    random_block("c", 8, 8)};
    Index gone = 0;
    for (long step = 0; step <= 12; ++step) {
      if (!schedule.is_pruning_step(step)) continue;
      const double target = schedule.target_at(step, final_target);
      const Selection s = GlobalSelection().select(blocks, target, {});
      for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b] = after_removal(blocks[b], s[b]);
      const Index now = gone + total_removed(s);
      INFO("step " << step << ", target " << target);
      CHECK(now == static_cast<Index>(std::floor(target * 24.0 + 1e-9)));
      CHECK(now >= gone);
      gone = now;
    }
    CHECK(gone == 12);
  }
  SECTION("GQA uniform_per_group: rungs of 4, and a block down to one head per group loses no more") {
    std::vector<BlockScores> blocks{random_block("a", 8, 4), random_block("b", 8, 4),
                                    random_block("c", 8, 4)};
    SelectionOptions o;
    o.gqa_mode = GqaMode::uniform_per_group;
    Index gone = 0;
    for (long step = 0; step <= 12; ++step) {
      if (!schedule.is_pruning_step(step)) continue;
      const double target = schedule.target_at(step, final_target);
      const Selection s = GlobalSelection().select(blocks, target, o);
      for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b] = after_removal(blocks[b], s[b]);
      gone += total_removed(s);
      const Index k = static_cast<Index>(std::floor(target * 24.0 + 1e-9));
      INFO("step " << step << ", target " << target);
      CHECK(gone == k / 4 * 4);
      for (const BlockScores& b : blocks) CHECK(b.kv_heads == 4);  // K and V stay
    }
    CHECK(gone == 12);
    // All three are down to one head per group now: a higher target removes nothing.
    CHECK(GlobalSelection().select(blocks, 0.9, o) == Selection{{}, {}, {}});
  }
  SECTION("GQA whole_groups: whole groups of 2, never above the target") {
    std::vector<BlockScores> blocks{random_block("a", 8, 4), random_block("b", 8, 4),
                                    random_block("c", 8, 4)};
    SelectionOptions o;
    o.gqa_mode = GqaMode::whole_groups;
    Index gone = 0;
    for (long step = 0; step <= 12; ++step) {
      if (!schedule.is_pruning_step(step)) continue;
      const double target = schedule.target_at(step, final_target);
      const Selection s = GlobalSelection().select(blocks, target, o);
      for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b] = after_removal(blocks[b], s[b]);
      gone += total_removed(s);
      const Index k = static_cast<Index>(std::floor(target * 24.0 + 1e-9));
      INFO("step " << step << ", target " << target);
      CHECK(gone == k / 2 * 2);
      for (const BlockScores& b : blocks) CHECK(b.group_size() == 2);
    }
    CHECK(gone == 12);
  }
}

}  // namespace test_selection_global
