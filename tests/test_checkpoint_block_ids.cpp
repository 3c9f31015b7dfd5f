// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// AttentionBlock built over a checkpoint pruned before: original ids given, checked, kept.

#include <catch2/catch.hpp>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"

namespace test_checkpoint_block_ids {

using mhaprune::AttentionBlock;
using mhaprune::HeadLayout;
using mhaprune::Index;
using Ids = std::vector<Index>;

TEST_CASE("AttentionBlock with original ids: valid ids are kept and used by later removals", "[checkpoint]") {
  // Originally 8 query heads in 2 groups of 4; 2 heads of each group are left.
  AttentionBlock<float> block("b", HeadLayout(4, 2, 2, 8), Ids{1, 3, 4, 6}, Ids{0, 1}, 8, 2);
  CHECK(block.head_ids() == Ids{1, 3, 4, 6});
  CHECK(block.kv_head_ids() == Ids{0, 1});
  CHECK(block.original_heads() == 8);
  CHECK(block.original_kv_heads() == 2);
  CHECK(block.position_of(4) == 2);
  CHECK(block.position_of(0) == -1);

  Eigen::MatrixXf q = Eigen::MatrixXf::Random(8, 8), k = Eigen::MatrixXf::Random(4, 8),
                  v = Eigen::MatrixXf::Random(4, 8), o = Eigen::MatrixXf::Random(8, 8);
  block.add(mhaprune::layout::query(q)).add(mhaprune::layout::key(k));
  block.add(mhaprune::layout::value(v)).add(mhaprune::layout::output(o));
  const Eigen::MatrixXf q_before = q;
  const auto removed = mhaprune::remove_heads(block, mhaprune::OriginalIds{3, 6});
  CHECK(removed.heads == Ids{3, 6});
  CHECK(block.head_ids() == Ids{1, 4});
  CHECK(q.topRows(2) == q_before.topRows(2));
  CHECK(q.bottomRows(2) == q_before.middleRows(4, 2));
  CHECK_THROWS_AS(mhaprune::remove_heads(block, mhaprune::OriginalIds{3}), mhaprune::head_id_error);
}

TEST_CASE("AttentionBlock with original ids: inconsistent ids are refused", "[checkpoint]") {
  const HeadLayout L(4, 2, 2, 8);
  using mhaprune::head_id_error;
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{1, 3, 4}, Ids{0, 1}, 8, 2), head_id_error);     // too few
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{3, 1, 4, 6}, Ids{0, 1}, 8, 2), head_id_error);  // order
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{1, 1, 4, 6}, Ids{0, 1}, 8, 2),
                  head_id_error);  // repeated
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{1, 3, 4, 8}, Ids{0, 1}, 8, 2), head_id_error);  // range
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{-1, 3, 4, 6}, Ids{0, 1}, 8, 2),
                  head_id_error);  // negative
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{1, 3, 4, 6}, Ids{0, 2}, 8, 2),
                  head_id_error);  // kv range
  CHECK_THROWS_AS(AttentionBlock<float>("b", L, Ids{1, 3, 4, 6}, Ids{0, 1}, 8, 3), head_id_error);  // 8 % 3
  // Query heads 1 and 3 belong to original group 0, 4 and 6 to group 1: three heads from group 0
  // cannot sit in the two positions of one group.
  CHECK_THROWS_WITH(AttentionBlock<float>("b", L, Ids{1, 2, 3, 6}, Ids{0, 1}, 8, 2),
                    Catch::Contains("block \"b\"") && Catch::Contains("original key/value head"));
  // Current group 1 is original kv head 1 here, but its query heads say 0.
  CHECK_THROWS_AS(AttentionBlock<float>("b", HeadLayout(2, 1, 2, 8), Ids{0, 1}, Ids{1}, 8, 2), head_id_error);
}

}  // namespace test_checkpoint_block_ids
