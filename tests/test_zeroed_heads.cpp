// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// find_zeroed_heads / plan_zeroed_removal: which heads a masked model can lose, under the
// grouped-query rules, and that removing them gives exactly the masked block's output (the
// reference forward of the slimmed block against that of the unslimmed, masked one).

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <mhaprune/mhaprune.hpp>
#include <mhaprune/selection/zeroed_heads.hpp>
#include <random>
#include <string>
#include <vector>

#include "support/message_of.hpp"

namespace test_zeroed_heads {

namespace {

using mhaprune::HeadLayout;
using mhaprune::Index;
using mhaprune::KeptZeroedHead;
using mhaprune::OriginalIds;
using mhaprune::ZeroedHeads;
using mhaprune::ZeroedKeptReason;
namespace layout = mhaprune::layout;
using Ids = std::vector<Index>;

std::vector<char> flags(Index heads, const Ids& zeroed) {
  std::vector<char> out(static_cast<std::size_t>(heads), 0);
  for (Index p : zeroed) out[static_cast<std::size_t>(p)] = 1;
  return out;
}

Ids iota(Index n) {
  Ids v;
  for (Index i = 0; i < n; ++i) v.push_back(i);
  return v;
}

Ids kept_ids(const ZeroedHeads& z) {
  Ids v;
  for (const KeptZeroedHead& k : z.kept) v.push_back(k.id);
  return v;
}

ZeroedHeads plan(Index H, Index Hkv, const Ids& zeroed) {
  return mhaprune::plan_zeroed_removal("b", HeadLayout(H, Hkv, 4, 16), iota(H), iota(Hkv), flags(H, zeroed));
}

Eigen::MatrixXf random_matrix(std::mt19937& rng, Index rows, Index cols) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Eigen::MatrixXf m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) m(i, j) = u(rng);
  return m;
}

/// A separate-QKV block with every bias, over weights it owns; `o` is `[D, H*d]`.
struct Block {
  HeadLayout L;
  Eigen::MatrixXf q, k, v, o;
  Eigen::VectorXf qb, kb, vb, ob;
  mhaprune::AttentionBlock<float> block;

  Block(HeadLayout layout, unsigned seed) : L(layout), block("layers.0.attn", layout) {
    std::mt19937 rng(seed);
    const Index D = L.model_dim();
    q = random_matrix(rng, L.query_width(), D);
    k = random_matrix(rng, L.kv_width(), D);
    v = random_matrix(rng, L.kv_width(), D);
    o = random_matrix(rng, D, L.query_width());
    qb = random_matrix(rng, L.query_width(), 1);
    kb = random_matrix(rng, L.kv_width(), 1);
    vb = random_matrix(rng, L.kv_width(), 1);
    ob = random_matrix(rng, D, 1);
  }
  void bind() {
    block.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));
    block.add(layout::query_bias(qb)).add(layout::key_bias(kb)).add(layout::value_bias(vb));
    block.add(layout::output_bias(ob));
  }
  void zero_o(Index head) { o.middleCols(head * L.head_dim(), L.head_dim()).setZero(); }
};

Eigen::MatrixXd sequence(Index T, Index D, unsigned seed) {
  std::mt19937 rng(seed);
  return random_matrix(rng, T, D).cast<double>();
}

}  // namespace

TEST_CASE("plan_zeroed_removal: multi-head attention loses every zeroed head", "[zeroed_heads]") {
  const ZeroedHeads z = plan(6, 6, {1, 4, 5});
  CHECK(z.zeroed == Ids{1, 4, 5});
  CHECK(z.removable == Ids{1, 4, 5});
  CHECK(z.removable_kv == Ids{1, 4, 5});  // with MHA each head is its own key/value group
  CHECK(z.kept.empty());
  CHECK(z.anything_to_remove());
  const ZeroedHeads none = plan(6, 6, {});
  CHECK(none.zeroed.empty());
  CHECK(none.removable.empty());
  CHECK_FALSE(none.anything_to_remove());
}

TEST_CASE("plan_zeroed_removal: grouped-query attention removes the same number from each group",
          "[zeroed_heads]") {
  // 8 heads in 2 groups of 4: group 0 has 3 zeroed heads (0, 2, 3), group 1 two (5, 7): each loses 2,
  // the zeroed heads of lowest id; head 3 stays, limited by key/value head 1.
  const ZeroedHeads z = plan(8, 2, {0, 2, 3, 5, 7});
  CHECK(z.zeroed == Ids{0, 2, 3, 5, 7});
  CHECK(z.removable == Ids{0, 2, 5, 7});
  CHECK(z.removable_kv.empty());
  REQUIRE(z.kept.size() == 1);
  CHECK(z.kept[0].id == 3);
  CHECK(z.kept[0].reason == ZeroedKeptReason::gqa_balance);
  CHECK(z.kept[0].why ==
        "grouped-query attention: every key/value group that stays keeps the same number of query heads, and "
        "key/value head 1 has only 2 zeroed of its 4 query heads, so each group loses 2");
  CHECK(std::string(mhaprune::to_string(z.kept[0].reason)) == "gqa_balance");

  // A group without a zeroed head keeps every other group whole.
  const ZeroedHeads blocked = plan(8, 2, {0, 1});
  CHECK(blocked.removable.empty());
  CHECK(kept_ids(blocked) == Ids{0, 1});
  CHECK_FALSE(blocked.anything_to_remove());
}

TEST_CASE("plan_zeroed_removal: a fully zeroed group goes whole, with its key/value head", "[zeroed_heads]") {
  // 12 heads in 3 groups of 4: group 1 all zeroed (4..7) goes whole; groups 0 and 2 have 1 and 2.
  const ZeroedHeads z = plan(12, 3, {1, 4, 5, 6, 7, 8, 11});
  CHECK(z.removable == Ids{1, 4, 5, 6, 7, 8});
  CHECK(z.removable_kv == Ids{1});
  CHECK(kept_ids(z) == Ids{11});
  CHECK(z.kept[0].reason == ZeroedKeptReason::gqa_balance);
  CHECK(z.kept[0].why.find("key/value head 0 has only 1 zeroed") != std::string::npos);
}

TEST_CASE("plan_zeroed_removal: a block whose heads are all zeroed keeps one", "[zeroed_heads]") {
  const ZeroedHeads gqa = plan(8, 2, iota(8));
  CHECK(gqa.removable == Ids{1, 2, 3, 4, 5, 6, 7});
  CHECK(gqa.removable_kv == Ids{1});
  REQUIRE(gqa.kept.size() == 1);
  CHECK(gqa.kept[0].id == 0);
  CHECK(gqa.kept[0].reason == ZeroedKeptReason::min_heads);
  CHECK(gqa.kept[0].why ==
        "every head of the block is zeroed and a block keeps at least one head; head 0 stays");
  const ZeroedHeads mha = plan(3, 3, iota(3));
  CHECK(mha.removable == Ids{1, 2});
  CHECK(mha.removable_kv == Ids{1, 2});
  CHECK(kept_ids(mha) == Ids{0});
  const ZeroedHeads mqa = plan(4, 1, iota(4));  // multi-query: one group
  CHECK(mqa.removable == Ids{1, 2, 3});
  CHECK(mqa.removable_kv.empty());
}

TEST_CASE("plan_zeroed_removal: reports original ids of an already pruned block", "[zeroed_heads]") {
  // Originally 8 heads in 2 groups of 4; heads 1 and 5 are gone, so positions 0..5 are ids
  // 0, 2, 3, 4, 6, 7 (groups of 3 now).
  const Ids ids{0, 2, 3, 4, 6, 7};
  const ZeroedHeads z =
      mhaprune::plan_zeroed_removal("b", HeadLayout(6, 2, 4, 16), ids, Ids{0, 1}, flags(6, {1, 2, 4}));
  CHECK(z.zeroed == Ids{2, 3, 6});
  CHECK(z.removable == Ids{2, 6});
  CHECK(kept_ids(z) == Ids{3});
  CHECK(mhaprune_test::exact_message<mhaprune::shape_error>([&] {
          mhaprune::plan_zeroed_removal("b", HeadLayout(6, 2, 4, 16), ids, Ids{0, 1}, flags(5, {}));
        }) ==
        "plan_zeroed_removal: block \"b\" has 6 query and 2 key/value heads, got 6 query ids, 2 "
        "key/value ids and 5 zeroed flags");
}

TEST_CASE("find_zeroed_heads: removing what it finds gives the masked block's output exactly",
          "[zeroed_heads]") {
  const HeadLayout L(8, 2, 4, 16);
  Block b(L, 7);
  // Heads 0, 1 and 5 are masked by zeroing their O columns; their Q/K/V and V bias stay nonzero, so
  // the equality below also shows that a zeroed head's V bias contributes nothing.
  for (Index h : {0, 1, 5}) b.zero_o(h);
  b.bind();
  const ZeroedHeads z = mhaprune::find_zeroed_heads(b.block);
  CHECK(z.block == "layers.0.attn");
  CHECK(z.zeroed == Ids{0, 1, 5});
  CHECK(z.removable == Ids{0, 5});
  CHECK(kept_ids(z) == Ids{1});
  CHECK(z.zero_q.empty());
  CHECK(z.zero_k.empty());
  CHECK(z.zero_v.empty());

  const Eigen::MatrixXd x = sequence(5, L.model_dim(), 11);
  const Eigen::MatrixXd masked = mhaprune::reference::attention(x, b.block);
  // The masked model computes what the unmasked one computes with those heads silenced.
  Block unmasked(L, 7);
  unmasked.bind();
  mhaprune::HeadMask silence(8);
  silence.remove(0).remove(1).remove(5);
  mhaprune::reference::AttentionOptions opt;
  opt.mask = silence;
  CHECK((mhaprune::reference::attention(x, unmasked.block, opt) - masked).cwiseAbs().maxCoeff() <= 1e-5);

  mhaprune::remove_heads(b.block, OriginalIds(z.removable));
  CHECK(b.block.head_ids() == Ids{1, 2, 3, 4, 6, 7});
  CHECK(b.o.cols() == 6 * 4);
  const Eigen::MatrixXd slimmed = mhaprune::reference::attention(x, b.block);
  CHECK((slimmed - masked).cwiseAbs().maxCoeff() <= 1e-5 * masked.cwiseAbs().maxCoeff());
  // What is left to find: head 1 alone in its group, which cannot go.
  const ZeroedHeads again = mhaprune::find_zeroed_heads(b.block);
  CHECK(again.zeroed == Ids{1});
  CHECK(again.removable.empty());
}

TEST_CASE("find_zeroed_heads: a whole group goes with K and V, and the block's output is unchanged",
          "[zeroed_heads]") {
  const HeadLayout L(6, 3, 4, 12);
  Block b(L, 3);
  for (Index h : {2, 3}) b.zero_o(h);  // group 1 = heads 2, 3
  b.bind();
  const ZeroedHeads z = mhaprune::find_zeroed_heads(b.block);
  CHECK(z.removable == Ids{2, 3});
  CHECK(z.removable_kv == Ids{1});
  const Eigen::MatrixXd x = sequence(4, L.model_dim(), 5);
  const Eigen::MatrixXd masked = mhaprune::reference::attention(x, b.block);
  const mhaprune::RemovedHeads removed = mhaprune::remove_heads(b.block, OriginalIds(z.removable));
  CHECK(removed.kv_heads == Ids{1});
  CHECK(b.k.rows() == 2 * 4);
  CHECK(b.v.rows() == 2 * 4);
  CHECK((mhaprune::reference::attention(x, b.block) - masked).cwiseAbs().maxCoeff() <=
        1e-5 * masked.cwiseAbs().maxCoeff());
}

TEST_CASE("find_zeroed_heads: the tolerance is absolute on the stored values", "[zeroed_heads]") {
  const HeadLayout L(4, 4, 2, 8);
  Block b(L, 1);
  b.zero_o(1);
  b.o(3, 1 * 2 + 1) = -1e-7f;  // one tiny value in head 1's columns
  b.zero_o(2);
  b.o(0, 2 * 2) = -0.0f;  // negative zero is zero
  b.zero_o(3);
  b.o(5, 3 * 2) = std::numeric_limits<float>::quiet_NaN();  // NaN is never zero
  b.bind();
  CHECK(mhaprune::find_zeroed_heads(b.block).zeroed == Ids{2});
  CHECK(mhaprune::find_zeroed_heads(b.block, 1e-6).zeroed == Ids{1, 2});
  CHECK(mhaprune::find_zeroed_heads(b.block, 1e30).zeroed == Ids{0, 1, 2});
  CHECK(mhaprune::find_zeroed_heads(b.block, 1e30).removable ==
        Ids{0, 1, 2});  // head 3 keeps the block alive
  const Eigen::MatrixXf o_before = b.o;
  CHECK(mhaprune_test::exact_message<mhaprune::config_error>([&] {
          mhaprune::find_zeroed_heads(b.block, -1.0);
        }) == "find_zeroed_heads: block \"layers.0.attn\": tolerance -1 must be finite and >= 0");
  CHECK_THROWS_AS(mhaprune::find_zeroed_heads(b.block, std::numeric_limits<double>::infinity()),
                  mhaprune::config_error);
  CHECK_THROWS_AS(mhaprune::find_zeroed_heads(b.block, std::nan("")), mhaprune::config_error);
  CHECK(b.o.cwiseEqual(o_before).count() + 1 == b.o.size());  // unchanged but for NaN != NaN
}

TEST_CASE("find_zeroed_heads: Q, K or V rows zero while O is not are reported, not removed",
          "[zeroed_heads]") {
  const HeadLayout L(4, 2, 2, 8);
  Block b(L, 9);
  b.q.middleRows(1 * 2, 2).setZero();
  b.qb.segment(1 * 2, 2).setZero();    // head 1: Q rows and bias zero
  b.q.middleRows(2 * 2, 2).setZero();  // head 2: Q rows zero, bias not: not reported
  b.v.middleRows(1 * 2, 2).setZero();
  b.vb.segment(1 * 2, 2).setZero();  // key/value head 1: V zero
  b.k.middleRows(0, 2).setZero();
  b.kb.segment(0, 2).setZero();  // key/value head 0: K zero ...
  b.zero_o(0);
  b.zero_o(1);  // ... but both its query heads are zeroed in O: nothing reads it, nothing to report
  b.bind();
  const ZeroedHeads z = mhaprune::find_zeroed_heads(b.block);
  CHECK(z.zeroed == Ids{0, 1});
  CHECK(z.removable == Ids{0, 1});
  CHECK(z.removable_kv == Ids{0});
  CHECK(z.zero_q.empty());  // head 1 is zeroed in O: it goes, it is not a Q report
  CHECK(z.zero_k.empty());
  CHECK(z.zero_v == Ids{1});
}

TEST_CASE("find_zeroed_heads: fused QKV stored in x out (GPT-2 Conv1D) finds O's columns as rows",
          "[zeroed_heads]") {
  const HeadLayout L = HeadLayout::mha(3, 2, 6);
  std::mt19937 rng(4);
  Eigen::MatrixXf c_attn = random_matrix(rng, 6, 3 * 6);  // [D, 3D]
  Eigen::MatrixXf c_proj = random_matrix(rng, 6, 6);      // [H*d, D]: head h is rows h*d..
  c_proj.middleRows(2 * 2, 2).setZero();
  c_attn.middleCols(3 * 2 + 0, 2).setZero();  // head 0's K part (after the 3 Q heads of 2)
  mhaprune::AttentionBlock<float> block("h.0.attn", L);
  block.add(layout::qkv_concat(c_attn).stored_as(mhaprune::Orientation::in_out));
  block.add(layout::output(c_proj).stored_as(mhaprune::Orientation::in_out));
  const ZeroedHeads z = mhaprune::find_zeroed_heads(block);
  CHECK(z.zeroed == Ids{2});
  CHECK(z.removable == Ids{2});
  CHECK(z.removable_kv == Ids{2});
  CHECK(z.zero_k == Ids{0});
  const Eigen::MatrixXd x = sequence(3, 6, 2);
  const Eigen::MatrixXd masked = mhaprune::reference::attention(x, block);
  mhaprune::remove_heads(block, OriginalIds(z.removable));
  CHECK(c_proj.rows() == 4);
  CHECK((mhaprune::reference::attention(x, block) - masked).cwiseAbs().maxCoeff() <=
        1e-5 * masked.cwiseAbs().maxCoeff());
}

}  // namespace test_zeroed_heads
