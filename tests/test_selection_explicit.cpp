// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// ExplicitSelection: heads named by original id (Hugging Face prune_heads semantics), blocks by name or
// index, over several calls; every error names what is wrong.
#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <mhaprune/mhaprune.hpp>
#include <mhaprune/selection/explicit_selection.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "support/message_of.hpp"

namespace test_selection_explicit {

using mhaprune::BlockScores;
using mhaprune::ExplicitSelection;
using mhaprune::Index;
using mhaprune::OriginalIds;
using mhaprune::Selection;
using mhaprune::SelectionOptions;
using mhaprune_test::exact_message;

namespace {

BlockScores pruned_block(std::string name, Index original, Index kv_heads, std::vector<Index> ids) {
  BlockScores b;
  b.name = std::move(name);
  b.heads = static_cast<Index>(ids.size());
  b.kv_heads = kv_heads;
  b.original_heads = original;
  b.head_ids = std::move(ids);
  b.scores = Eigen::VectorXd::Zero(b.heads);
  return b;
}

BlockScores fresh_block(std::string name, Index heads, Index kv_heads) {
  std::vector<Index> ids(static_cast<std::size_t>(heads));
  std::iota(ids.begin(), ids.end(), Index{0});
  return pruned_block(std::move(name), heads, kv_heads, std::move(ids));
}

}  // namespace

TEST_CASE("explicit selection: heads by original id, blocks by name or index", "[selection][explicit]") {
  const std::vector<BlockScores> blocks{fresh_block("layer.0", 4, 4), fresh_block("layer.1", 6, 6),
                                        fresh_block("layer.2", 4, 4)};
  ExplicitSelection sel;
  CHECK(sel.empty());
  sel.remove("layer.1", {5, 0, 3}).remove(2, {1});
  CHECK_FALSE(sel.empty());
  // Positions come back ascending, whatever order the ids were given in.
  CHECK(sel.select(blocks, 0.0, {}) == Selection{{}, {0, 3, 5}, {1}});

  // Name and index may name the same block; their ids add up.
  ExplicitSelection both;
  both.remove("layer.0", {3}).remove(0, {1});
  CHECK(both.select(blocks, 0.0, {}) == Selection{{1, 3}, {}, {}});

  // Target and guards play no part: min_heads 4 and max_ratio 0 would forbid any removal.
  SelectionOptions strict;
  strict.min_heads = 4;
  strict.max_ratio_per_block = 0.0;
  strict.exact_target = true;
  CHECK(sel.select(blocks, 0.9, strict) == Selection{{}, {0, 3, 5}, {1}});

  // Nothing named: nothing removed, one entry per block.
  CHECK(ExplicitSelection().select(blocks, 0.5, {}) == Selection{{}, {}, {}});
}

TEST_CASE("explicit selection: ids stay original across calls", "[selection][explicit][rounds]") {
  // Call 1 on a fresh block of 8 (two KV groups of 4): original heads 1 and 6 go.
  const std::vector<BlockScores> first{fresh_block("attn", 8, 2)};
  CHECK(ExplicitSelection().remove("attn", {6, 1}).select(first, 0.0, {}) == Selection{{1, 6}});

  // Call 2: the block now holds original heads 0 2 3 4 5 7 at positions 0..5.
  const std::vector<BlockScores> second{pruned_block("attn", 8, 2, {0, 2, 3, 4, 5, 7})};
  CHECK(ExplicitSelection().remove("attn", {7, 2}).select(second, 0.0, {}) == Selection{{1, 5}});
  CHECK(ExplicitSelection().remove(0, {0, 5}).select(second, 0.0, {}) == Selection{{0, 4}});

  SECTION("an id removed in the first call") {
    CHECK(exact_message<mhaprune::head_id_error>([&] {
            ExplicitSelection().remove("attn", {2, 6}).select(second, 0.0, {});
          }) == "block \"attn\": original head 6 was already removed");
    CHECK(exact_message<mhaprune::head_id_error>([&] {
            ExplicitSelection().remove(0, {1}).select(second, 0.0, {});
          }) == "block \"attn\": original head 1 was already removed");
  }
  SECTION("an id that never existed") {
    CHECK(exact_message<mhaprune::head_id_error>([&] {
            ExplicitSelection().remove("attn", {8}).select(second, 0.0, {});
          }) == "block \"attn\": original head 8 does not exist");
    CHECK(exact_message<mhaprune::head_id_error>([&] {
            ExplicitSelection().remove("attn", {-1}).select(second, 0.0, {});
          }) == "block \"attn\": original head -1 does not exist");
  }
  SECTION("an id named twice, in one list or by name and index") {
    CHECK(exact_message<mhaprune::head_id_error>([&] {
            ExplicitSelection().remove("attn", {3, 4, 3}).select(second, 0.0, {});
          }) == "block \"attn\": original head 3 is named twice");
    CHECK(exact_message<mhaprune::head_id_error>([&] {
            ExplicitSelection().remove("attn", {4}).remove(0, {4}).select(second, 0.0, {});
          }) == "block \"attn\": original head 4 is named twice");
  }
}

TEST_CASE("explicit selection: unknown blocks", "[selection][explicit][errors]") {
  const std::vector<BlockScores> blocks{fresh_block("layer.0", 4, 4), fresh_block("layer.1", 4, 4)};
  CHECK(exact_message<mhaprune::error>([&] {
          ExplicitSelection().remove("layer.2", {0}).select(blocks, 0.0, {});
        }) == "explicit selection names block \"layer.2\", which is not among the 2 blocks");
  CHECK(exact_message<mhaprune::error>([&] { ExplicitSelection().remove(2, {0}).select(blocks, 0.0, {}); }) ==
        "explicit selection names block index 2, but there are only 2 blocks");
  // A valid entry does not hide an unknown one.
  CHECK_THROWS_AS(ExplicitSelection().remove("layer.0", {1}).remove("Layer.1", {1}).select(blocks, 0.0, {}),
                  mhaprune::error);
  CHECK_THROWS_AS(ExplicitSelection().remove(1, {1}).remove(7, {1}).select({}, 0.0, {}), mhaprune::error);
}

TEST_CASE("explicit selection: two calls on a real block remove what they name",
          "[selection][explicit][rounds]") {
  using Mat = Eigen::MatrixXf;
  const mhaprune::HeadLayout L(8, 4, 2, 6);  // groups of 2
  Mat q = Mat::Random(16, 6), k = Mat::Random(8, 6), v = Mat::Random(8, 6), o = Mat::Random(6, 16);
  mhaprune::AttentionBlock<float> block("attn", L);
  namespace layout = mhaprune::layout;
  block.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));

  auto scores_now = [&] { return BlockScores::of(block, Eigen::VectorXd::Zero(block.layout().heads())); };

  // Call 1: one head from every group (uniform), named out of order.
  std::vector<BlockScores> now{scores_now()};
  Selection s = ExplicitSelection().remove("attn", {7, 0, 5, 2}).select(now, 0.0, {});
  REQUIRE(s == Selection{{0, 2, 5, 7}});
  mhaprune::remove_heads(block, mhaprune::Positions(s[0]));
  CHECK(block.head_ids() == std::vector<Index>{1, 3, 4, 6});

  // Call 2 by original ids: 3 and 4 are now at positions 1 and 2 (whole groups 1 and 2).
  now = {scores_now()};
  CHECK(now[0].original_heads == 8);
  CHECK(now[0].head_ids == std::vector<Index>{1, 3, 4, 6});
  s = ExplicitSelection().remove(0, {4, 3}).select(now, 0.0, {});
  REQUIRE(s == Selection{{1, 2}});
  const mhaprune::RemovedHeads gone = mhaprune::remove_heads(block, mhaprune::Positions(s[0]));
  CHECK(gone.heads == std::vector<Index>{3, 4});
  CHECK(gone.kv_heads == std::vector<Index>{1, 2});
  CHECK(block.head_ids() == std::vector<Index>{1, 6});
  CHECK(block.kv_head_ids() == std::vector<Index>{0, 3});

  // Call 3 naming a head from call 1.
  now = {scores_now()};
  CHECK_THROWS_AS(ExplicitSelection().remove("attn", {5}).select(now, 0.0, {}), mhaprune::head_id_error);
}

}  // namespace test_selection_explicit
