// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Removal is exact: over random blocks of every layout, storage and scalar type, the reference
// forward of the pruned block equals the forward of the unpruned block with the removed heads
// masked, every tensor holds exactly its survivors' original slices, and the bookkeeping
// (head ids, layout, RemovedHeads, per-head extras) follows the heads across rounds.
//
// The cases are a fixed grid (head shape x QKV layout x orientation x storage x biases/extras); the
// rest (d, D, T, vector shapes, head sets, the API used) comes from a std::mt19937 seeded from the
// run's --rng-seed and the case index, both printed on failure, so a failing case replays exactly.

#include <algorithm>
#include <catch2/catch.hpp>
#include <mhaprune/mhaprune.hpp>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "support/random_block.hpp"

namespace test_remove_property {

namespace {

using mhaprune::Axis;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::Orientation;
using mhaprune::OriginalIds;
using mhaprune::Positions;
using mhaprune::RemovedHeads;
using mhaprune::Role;
using mhaprune::StorageOrder;
using mhaprune::reference::AttentionOptions;
using namespace mhaprune_test;

/// Largest error of the pruned forward, relative to the largest output of the masked forward.
/// The oracle computes in double whatever the storage type, so only the summation order differs.
template <typename Scalar>
constexpr double forward_tolerance() {
  return std::is_same_v<Scalar, double> ? 1e-12 : 1e-5;
}

/// How a round names its heads.
enum class Api { positions, original_ids, mask, kv_heads };

const char* to_string(Api a) {
  switch (a) {
    case Api::positions:
      return "Positions";
    case Api::original_ids:
      return "OriginalIds";
    case Api::mask:
      return "HeadMask";
    case Api::kv_heads:
      return "remove_kv_heads";
  }
  return "?";
}

std::string list(const std::vector<Index>& v) {
  std::ostringstream s;
  s << '{';
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  s << '}';
  return s.str();
}

double max_abs(const Eigen::MatrixXd& m) { return m.size() == 0 ? 0.0 : m.cwiseAbs().maxCoeff(); }

/// `w` restricted to the surviving units (rows, or columns for O), in their current order.
Eigen::MatrixXd surviving(const Eigen::MatrixXd& w, const std::vector<Index>& ids, Index d, bool columns) {
  Eigen::MatrixXd out(columns ? w.rows() : static_cast<Index>(ids.size()) * d,
                      columns ? static_cast<Index>(ids.size()) * d : w.cols());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const Index to = static_cast<Index>(k) * d, from = ids[k] * d;
    if (columns) {
      out.middleCols(to, d) = w.middleCols(from, d);
    } else {
      out.middleRows(to, d) = w.middleRows(from, d);
    }
  }
  return out;
}

/// The reference reading of the pruned block's weights and biases is the unpruned one's restricted
/// to the survivors, exactly: removal only moves elements.
template <typename Scalar>
void require_weights_sliced(const RandomBlock<Scalar>& pruned, const RandomBlock<Scalar>& twin) {
  const auto& b = pruned.block();
  const Index d = b.layout().head_dim();
  for (Role role : {Role::query, Role::key, Role::value, Role::output}) {
    INFO("role " << mhaprune::to_string(role));
    const bool kv = role == Role::key || role == Role::value;
    const auto& ids = kv ? b.kv_head_ids() : b.head_ids();
    const Eigen::MatrixXd w = mhaprune::reference::weight(b, role);
    REQUIRE(w == surviving(mhaprune::reference::weight(twin.block(), role), ids, d, role == Role::output));
    const auto bias = mhaprune::reference::bias(b, role);
    const auto twin_bias = mhaprune::reference::bias(twin.block(), role);
    REQUIRE(bias.has_value() == twin_bias.has_value());
    if (!bias) continue;
    if (role == Role::output) {
      REQUIRE(*bias == *twin_bias);
    } else {
      REQUIRE(*bias == surviving(*twin_bias, ids, d, false));
    }
  }
}

/// Each survivor keeps its own ALiBi slope and sink, read through the reference's own path.
template <typename Scalar>
void require_extras_follow(const RandomBlock<Scalar>& pruned) {
  if (!pruned.config().extras) return;
  const auto& b = pruned.block();
  for (auto [role, name] : {std::pair<Role, const char*>{Role::alibi_slope, "alibi_slopes"},
                            std::pair<Role, const char*>{Role::attention_sink, "sinks"}}) {
    const auto values = mhaprune::reference::per_head_values(b, role);
    REQUIRE(values.has_value());
    REQUIRE(values->size() == b.layout().heads());
    const Eigen::MatrixXd& original = pruned.entry(name)->original;
    for (Index p = 0; p < b.layout().heads(); ++p) {
      const Index id = b.head_ids()[static_cast<std::size_t>(p)];
      INFO(name << " of original head " << id << " at position " << p);
      REQUIRE((*values)(p) == original(original.cols() == 1 ? id : 0, original.cols() == 1 ? 0 : id));
    }
  }
}

/// Pruned forward == unpruned forward with every removed original head masked, causal and not.
template <typename Scalar>
void require_forward_equal(const RandomBlock<Scalar>& pruned, const RandomBlock<Scalar>& twin,
                           const Eigen::MatrixXd& x) {
  const auto& b = pruned.block();
  HeadMask mask(b.original_heads());
  for (Index id = 0; id < b.original_heads(); ++id)
    if (b.position_of(id) < 0) mask.remove(id);
  for (bool causal : {false, true}) {
    INFO("causal " << causal << ", masked heads " << list(mask.removed().ids));
    AttentionOptions masked;
    masked.causal = causal;
    masked.mask = mask;
    AttentionOptions plain;
    plain.causal = causal;
    const Eigen::MatrixXd expected = mhaprune::reference::attention(x, twin.block(), masked);
    const Eigen::MatrixXd got = mhaprune::reference::attention(x, b, plain);
    REQUIRE(got.rows() == expected.rows());
    REQUIRE(got.cols() == expected.cols());
    const double scale = std::max(max_abs(expected), 1e-300);
    const double error = max_abs(got - expected) / scale;
    INFO("relative error " << error << ", output scale " << scale);
    REQUIRE(error <= forward_tolerance<Scalar>());
    if (mask.removed_count() > 0) {
      // The comparison has teeth: with the removed heads present the output is clearly different.
      const Eigen::MatrixXd unmasked = mhaprune::reference::attention(x, twin.block(), plain);
      REQUIRE(max_abs(got - unmasked) / scale > 1e3 * forward_tolerance<Scalar>());
    }
  }
}

/// One random case: one to three rounds of removal on a fresh block, each checked in full.
template <typename Scalar>
void run_case(const BlockConfig& config, std::uint32_t seed, std::size_t case_index) {
  RandomBlock<Scalar> pruned(config, seed), twin(config, seed);
  auto& block = pruned.block();
  std::mt19937 rng(seed ^ 0xA5A5A5A5u);
  const Eigen::MatrixXd x = random_input(rng, uniform_index(rng, 3, 7), config.model_dim);
  REQUIRE(pruned.check_contents() == "");

  const Index rounds = uniform_index(rng, 1, 3);
  for (Index round = 0; round < rounds; ++round) {
    const HeadLayout L = block.layout();
    std::vector<Selection> kinds;
    for (Selection s : all_selections)
      if (applicable(s, L)) kinds.push_back(s);
    // The first round walks through every kind as the cases go by; later rounds are random.
    const Selection kind =
        round == 0 ? kinds[case_index % kinds.size()]
                   : kinds[static_cast<std::size_t>(uniform_index(rng, 0, Index(kinds.size()) - 1))];
    const std::vector<Index> positions = pick_heads(L, kind, rng);
    bool whole = false;
    const std::vector<Index> kv_gone = whole_kv_groups(block, positions, &whole);
    // Later rounds favour original ids, the Hugging Face way of naming heads across rounds.
    Api api = round == 0 ? static_cast<Api>(case_index / kinds.size() % 3)
                         : static_cast<Api>(uniform_index(rng, 0, 2));
    if (round > 0 && uniform_index(rng, 0, 1) == 0) api = Api::original_ids;
    if (kind == Selection::whole_groups && whole && uniform_index(rng, 0, 1) == 0) api = Api::kv_heads;

    std::vector<Index> expected_removed = original_ids(block, positions);
    std::sort(expected_removed.begin(), expected_removed.end());
    std::vector<Index> expected_heads, expected_kv;
    for (Index id : block.head_ids())
      if (!std::binary_search(expected_removed.begin(), expected_removed.end(), id))
        expected_heads.push_back(id);
    for (Index id : block.kv_head_ids())
      if (std::find(kv_gone.begin(), kv_gone.end(), id) == kv_gone.end()) expected_kv.push_back(id);
    const HeadLayout expected_layout(L.heads() - Index(positions.size()),
                                     L.kv_heads() - Index(kv_gone.size()), L.head_dim(), L.model_dim());

    INFO("round " << round << ": " << to_string(kind) << " via " << to_string(Api(api)) << ", positions "
                  << list(positions) << " = original ids " << list(expected_removed) << " of "
                  << list(block.head_ids()) << ", kv groups gone " << list(kv_gone));
    const Snapshot before = snapshot(pruned);
    RemovedHeads removed;
    switch (api) {
      case Api::positions:
        removed = mhaprune::remove_heads(block, Positions(positions));
        break;
      case Api::original_ids:
        removed = mhaprune::remove_heads(block, OriginalIds(original_ids(block, positions)));
        break;
      case Api::mask: {
        HeadMask mask(L.heads());
        for (Index p : positions) mask.remove(p);
        removed = mhaprune::remove_heads(block, mask);
        break;
      }
      case Api::kv_heads:
        removed = mhaprune::remove_kv_heads(block, OriginalIds(kv_gone));
        break;
    }

    REQUIRE(removed.heads == expected_removed);
    REQUIRE(removed.kv_heads == kv_gone);
    REQUIRE(block.head_ids() == expected_heads);
    REQUIRE(block.kv_head_ids() == expected_kv);
    REQUIRE(block.layout() == expected_layout);
    REQUIRE(block.original_heads() == config.heads);
    REQUIRE(block.original_kv_heads() == config.kv_heads);
    if (positions.empty()) REQUIRE(snapshot(pruned) == before);
    REQUIRE_NOTHROW(block.validate());
    REQUIRE(pruned.check_contents() == "");
    require_weights_sliced(pruned, twin);
    require_extras_follow(pruned);
    require_forward_equal(pruned, twin, x);
  }
}

/// Every structural combination for one head shape; the rest is drawn per case.
template <typename Scalar>
void run_grid(Index heads, Index kv_heads) {
  const std::uint32_t base = Catch::rngSeed();
  std::size_t index = 0;
  for (QkvLayout qkv : {QkvLayout::separate, QkvLayout::concat, QkvLayout::interleaved, QkvLayout::grouped}) {
    if (qkv == QkvLayout::interleaved && heads != kv_heads) continue;
    for (Orientation orientation : {Orientation::out_in, Orientation::in_out}) {
      for (Container container : {Container::matrix, Container::map, Container::buffer}) {
        for (StorageOrder order : {StorageOrder::row_major, StorageOrder::col_major}) {
          // Biases (bit 0) and extras (bit 1), each combination twice with different draws.
          for (int features = 0; features < 8; ++features, ++index) {
            const std::uint32_t seed =
                case_seed(base ^ static_cast<std::uint32_t>(heads * 97 + kv_heads), index);
            std::mt19937 rng(seed);
            BlockConfig config;
            config.heads = heads;
            config.kv_heads = kv_heads;
            config.head_dim = uniform_index(rng, 2, 8);
            config.model_dim = uniform_index(rng, 8, 32);
            config.qkv = qkv;
            config.orientation = orientation;
            config.storage.container = container;
            config.storage.order = order;
            config.storage.vector_types = uniform_index(rng, 0, 1) == 1;
            config.storage.slack = container == Container::matrix ? 0 : uniform_index(rng, 0, 3);
            config.row_vectors = uniform_index(rng, 0, 1) == 1;
            config.qkv_bias = (features & 1) != 0;
            config.output_bias = (features & 1) != 0 && uniform_index(rng, 0, 3) != 0;
            config.extras = (features & 2) != 0;
            config.buckets = uniform_index(rng, 2, 4);
            INFO("case " << index << ", seed " << seed << " (run with --rng-seed " << base
                         << " to replay): " << config.describe());
            run_case<Scalar>(config, seed, index);
          }
        }
      }
    }
  }
  REQUIRE(index > 0);
}

}  // namespace

TEMPLATE_TEST_CASE("removal equals masking: multi-head attention", "[remove][property]", float, double,
                   Eigen::half, Eigen::bfloat16) {
  run_grid<TestType>(5, 5);
}

TEMPLATE_TEST_CASE("removal equals masking: grouped-query attention H=8, H_kv=2", "[remove][property][gqa]",
                   float, double, Eigen::half, Eigen::bfloat16) {
  run_grid<TestType>(8, 2);
}

TEMPLATE_TEST_CASE("removal equals masking: grouped-query attention H=6, H_kv=3", "[remove][property][gqa]",
                   float, double, Eigen::half, Eigen::bfloat16) {
  run_grid<TestType>(6, 3);
}

TEMPLATE_TEST_CASE("removal equals masking: multi-query attention H=4, H_kv=1", "[remove][property][gqa]",
                   float, double, Eigen::half, Eigen::bfloat16) {
  run_grid<TestType>(4, 1);
}

TEST_CASE("original ids name the same heads across rounds, and extras follow them",
          "[remove][original_ids]") {
  BlockConfig config;
  config.heads = 8;
  config.kv_heads = 8;
  config.head_dim = 2;
  config.model_dim = 8;
  config.qkv_bias = true;
  config.output_bias = true;
  config.extras = true;
  RandomBlock<double> pruned(config, 5), twin(config, 5);
  auto& b = pruned.block();
  const Eigen::MatrixXd slopes = pruned.entry("alibi_slopes")->original;  // [8, 1]
  std::mt19937 rng(5);
  const Eigen::MatrixXd x = random_input(rng, 5, 8);

  RemovedHeads r = mhaprune::remove_heads(b, OriginalIds{2, 1});
  CHECK(r.heads == std::vector<Index>{1, 2});
  CHECK(r.kv_heads == std::vector<Index>{1, 2});  // MHA: each head is its own key/value head
  CHECK(b.head_ids() == std::vector<Index>{0, 3, 4, 5, 6, 7});
  CHECK(b.position_of(5) == 3);
  CHECK(mhaprune::reference::per_head_values(b, Role::alibi_slope)->coeff(3) == slopes(5, 0));

  r = mhaprune::remove_heads(b, OriginalIds{7, 0});
  CHECK(r.heads == std::vector<Index>{0, 7});
  CHECK(b.head_ids() == std::vector<Index>{3, 4, 5, 6});
  CHECK(b.position_of(5) == 2);
  CHECK(mhaprune::reference::per_head_values(b, Role::alibi_slope)->coeff(2) == slopes(5, 0));

  r = mhaprune::remove_heads(b, Positions{0});  // position 0 is now original head 3
  CHECK(r.heads == std::vector<Index>{3});
  CHECK(b.head_ids() == std::vector<Index>{4, 5, 6});
  CHECK(b.kv_head_ids() == std::vector<Index>{4, 5, 6});
  CHECK(b.position_of(3) == -1);
  CHECK(b.layout() == HeadLayout::mha(3, 2, 8));
  REQUIRE(pruned.check_contents() == "");
  require_forward_equal(pruned, twin, x);
}

TEST_CASE("a whole key/value group goes the same way by every API", "[remove][gqa]") {
  BlockConfig config;
  config.heads = 8;
  config.kv_heads = 2;
  config.head_dim = 3;
  config.model_dim = 10;
  config.qkv = QkvLayout::grouped;
  config.qkv_bias = true;
  config.extras = true;
  config.storage.container = Container::map;
  config.storage.order = StorageOrder::col_major;
  RandomBlock<float> by_kv(config, 9), by_ids(config, 9), by_mask(config, 9), by_positions(config, 9);

  std::vector<RemovedHeads> results;
  results.push_back(mhaprune::remove_kv_heads(by_kv.block(), OriginalIds{1}));
  results.push_back(mhaprune::remove_heads(by_ids.block(), OriginalIds{4, 5, 6, 7}));
  HeadMask mask(8);
  mask.remove(7).remove(5).remove(6).remove(4);
  results.push_back(mhaprune::remove_heads(by_mask.block(), mask));
  results.push_back(mhaprune::remove_heads(by_positions.block(), Positions{6, 4, 7, 5}));
  for (const RemovedHeads& r : results) {
    CHECK(r.heads == std::vector<Index>{4, 5, 6, 7});
    CHECK(r.kv_heads == std::vector<Index>{1});
  }
  CHECK(by_kv.block().layout() == HeadLayout(4, 1, 3, 10));
  CHECK(by_kv.block().head_ids() == std::vector<Index>{0, 1, 2, 3});
  CHECK(by_kv.block().kv_head_ids() == std::vector<Index>{0});
  REQUIRE(by_kv.check_contents() == "");
  const Snapshot expected = snapshot(by_kv);
  CHECK((snapshot(by_ids) == expected));
  CHECK((snapshot(by_mask) == expected));
  CHECK((snapshot(by_positions) == expected));
}

TEST_CASE("uniform per-group removal keeps every group", "[remove][gqa]") {
  BlockConfig config;
  config.heads = 8;
  config.kv_heads = 2;
  config.head_dim = 2;
  config.model_dim = 8;
  config.qkv = QkvLayout::concat;
  config.extras = true;
  RandomBlock<double> pruned(config, 3), twin(config, 3);
  auto& b = pruned.block();
  const RemovedHeads r = mhaprune::remove_heads(b, Positions{5, 0});
  CHECK(r.heads == std::vector<Index>{0, 5});
  CHECK(r.kv_heads.empty());
  CHECK(b.layout() == HeadLayout(6, 2, 2, 8));
  CHECK(b.head_ids() == std::vector<Index>{1, 2, 3, 4, 6, 7});
  CHECK(b.kv_head_ids() == std::vector<Index>{0, 1});
  // K/V and the key/value-owned norm are untouched.
  CHECK(pruned.tensor("k_norm").values() == pruned.entry("k_norm")->original);
  REQUIRE(pruned.check_contents() == "");
  std::mt19937 rng(3);
  require_forward_equal(pruned, twin, random_input(rng, 6, 8));
}

TEST_CASE("a Map reports its new shape and keeps its data at the front of the caller's buffer",
          "[remove][map]") {
  // H=4, d=2, D=3; Q row-major, O column-major, both Maps over the test's own vectors.
  using RowMap = Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;
  using ColMap = Eigen::Map<Eigen::MatrixXf>;
  std::vector<float> qbuf(24), kbuf(24, 1.0f), vbuf(24, 2.0f), obuf(24);
  for (std::size_t i = 0; i < 24; ++i) qbuf[i] = obuf[i] = static_cast<float>(i);
  RowMap q(qbuf.data(), 8, 3), k(kbuf.data(), 8, 3), v(vbuf.data(), 8, 3);
  ColMap o(obuf.data(), 3, 8);
  mhaprune::AttentionBlock<float> b("attn", HeadLayout::mha(4, 2, 3));
  b.add(mhaprune::layout::query(q))
      .add(mhaprune::layout::key(k))
      .add(mhaprune::layout::value(v))
      .add(mhaprune::layout::output(o));
  mhaprune::remove_heads(b, Positions{1});
  REQUIRE(q.rows() == 6);
  REQUIRE(q.cols() == 3);
  REQUIRE(q.data() == qbuf.data());
  REQUIRE(o.rows() == 3);
  REQUIRE(o.cols() == 6);
  REQUIRE(o.data() == obuf.data());
  // Q keeps rows 0, 1, 4..7 (elements 0..5 and 12..23); O keeps columns 0, 1, 4..7 likewise.
  const std::vector<float> kept = {0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
  REQUIRE(std::vector<float>(qbuf.begin(), qbuf.begin() + 18) == kept);
  REQUIRE(std::vector<float>(obuf.begin(), obuf.begin() + 18) == kept);
  REQUIRE(q(2, 0) == 12.0f);
  REQUIRE(o(0, 2) == 12.0f);
}

}  // namespace test_remove_property
