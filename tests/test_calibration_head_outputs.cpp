// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// attention_head_outputs, calibration's own forward, against reference::head_outputs, the oracle:
// over random blocks of every QKV layout, orientation, storage and head shape (MHA, GQA, MQA), with
// and without biases, ALiBi slopes and sinks, for every option (causal, head mask, logit scale),
// before and after a removal. Both read the same elements and compute in double, so only the order
// of summation differs: the tolerance is tight whatever the storage type. Then its errors, which
// must be the oracle's exception types and name the block and the shapes.
//
// The grid is fixed; d, D, T, the storage details and the masked heads come from a std::mt19937
// seeded from the run's --rng-seed and the case index, both printed on failure.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <mhaprune/calibration/head_outputs.hpp>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "support/message_of.hpp"
#include "support/random_block.hpp"

namespace test_calibration_head_outputs {

namespace {

using Catch::Matchers::Contains;
using mhaprune::AttentionOptions;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::Orientation;
using mhaprune::Positions;
using mhaprune::shape_error;
using mhaprune::StorageOrder;
using mhaprune_test::message_of;
using namespace mhaprune_test;

/// Largest difference relative to the oracle's largest output. Same inputs in double on both sides.
constexpr double tolerance = 1e-12;

double max_abs(const Eigen::MatrixXd& m) { return m.size() == 0 ? 0.0 : m.cwiseAbs().maxCoeff(); }

/// `x` rounded to Scalar: the sequence as a caller of that type would hand it over.
template <typename Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> rounded(const Eigen::MatrixXd& x) {
  return x.unaryExpr([](double v) { return from_double<Scalar>(v); });
}

/// The calibration forward equals the oracle on `x` with `options`, and masked heads are exactly zero.
template <typename Scalar>
void require_same_as_oracle(const mhaprune::AttentionBlock<Scalar>& block,
                            const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& x,
                            const AttentionOptions& options) {
  const Eigen::MatrixXd expected = mhaprune::reference::head_outputs(x, block, options);
  const Eigen::MatrixXd got = mhaprune::attention_head_outputs(x, block, options);
  REQUIRE(got.rows() == x.rows());
  REQUIRE(got.cols() == block.layout().query_width());
  REQUIRE(got.allFinite());
  const double scale = max_abs(expected);
  // Not all zero, so the relative comparison means something; a sink can absorb almost all of a
  // lone head's attention, so small outputs are real ones.
  REQUIRE(scale > 0.0);
  const double error = max_abs(got - expected) / scale;
  INFO("relative error " << error << ", output scale " << scale);
  REQUIRE(error <= tolerance);
  if (options.mask) {
    const Index d = block.layout().head_dim();
    for (Index h : options.mask->removed().ids) REQUIRE(got.middleCols(h * d, d).isZero(0.0));
  }
}

/// Every option combination on one block: causal or not, no mask or a random one, default or own scale.
template <typename Scalar>
void require_every_option(const mhaprune::AttentionBlock<Scalar>& block,
                          const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& x, std::mt19937& rng) {
  const Index H = block.layout().heads();
  for (bool causal : {false, true}) {
    for (bool masked : {false, true}) {
      if (masked && H < 2) continue;  // masking the only head leaves nothing to compare
      for (bool own_scale : {false, true}) {
        AttentionOptions options;
        options.causal = causal;
        if (masked) {
          options.mask = HeadMask(H);
          const Index gone = uniform_index(rng, 1, H - 1);
          for (Index k = 0; k < gone; ++k) options.mask->remove(uniform_index(rng, 0, H - 1));
        }
        if (own_scale) options.scale = std::uniform_real_distribution<double>(0.05, 2.0)(rng);
        INFO("causal " << causal << ", masked heads " << (masked ? options.mask->removed_count() : 0)
                       << ", scale " << (own_scale ? *options.scale : -1.0) << " (-1: 1/sqrt(d))");
        require_same_as_oracle(block, x, options);
      }
    }
  }
}

/// The first removal kind the layout allows, so that the pruned block has segments at new positions.
std::vector<Index> some_removal(const HeadLayout& L, std::mt19937& rng) {
  for (Selection s :
       {Selection::mixed, Selection::uniform_per_group, Selection::whole_groups, Selection::one})
    if (applicable(s, L)) return pick_heads(L, s, rng);
  return {};
}

template <typename Scalar>
void run_case(const BlockConfig& config, std::uint32_t seed) {
  RandomBlock<Scalar> random(config, seed);
  auto& block = random.block();
  std::mt19937 rng(seed ^ 0x5A5A5A5Au);
  const auto x = rounded<Scalar>(random_input(rng, uniform_index(rng, 1, 7), config.model_dim));
  require_every_option(block, x, rng);

  const std::vector<Index> positions = some_removal(block.layout(), rng);
  if (positions.empty()) return;
  mhaprune::remove_heads(block, Positions(positions));
  INFO("after removing " << positions.size() << " heads");
  require_every_option(block, x, rng);
}

/// Every layout, orientation and storage, with and without biases and extras, for one head shape.
template <typename Scalar>
void run_grid(Index heads, Index kv_heads) {
  const std::uint32_t base = Catch::rngSeed();
  std::size_t index = 0;
  for (QkvLayout qkv : {QkvLayout::separate, QkvLayout::concat, QkvLayout::interleaved, QkvLayout::grouped}) {
    if (qkv == QkvLayout::interleaved && heads != kv_heads) continue;
    for (Orientation orientation : {Orientation::out_in, Orientation::in_out}) {
      for (Container container : {Container::matrix, Container::map, Container::buffer}) {
        for (StorageOrder order : {StorageOrder::row_major, StorageOrder::col_major}) {
          // Q/K/V biases (bit 0), ALiBi slopes, sinks and other extras (bit 1).
          for (int features = 0; features < 4; ++features, ++index) {
            const std::uint32_t seed =
                case_seed(base ^ static_cast<std::uint32_t>(heads * 131 + kv_heads), index);
            std::mt19937 rng(seed);
            BlockConfig config;
            config.name = "layers.7.self_attn";
            config.heads = heads;
            config.kv_heads = kv_heads;
            config.head_dim = uniform_index(rng, 2, 6);
            config.model_dim = uniform_index(rng, 6, 20);
            config.qkv = qkv;
            config.orientation = orientation;
            config.storage.container = container;
            config.storage.order = order;
            config.storage.vector_types = uniform_index(rng, 0, 1) == 1;
            config.storage.slack = container == Container::matrix ? 0 : uniform_index(rng, 0, 2);
            config.row_vectors = uniform_index(rng, 0, 1) == 1;
            config.qkv_bias = (features & 1) != 0;
            config.output_bias = (features & 1) != 0;
            config.extras = (features & 2) != 0;
            INFO("case " << index << ", seed " << seed << " (run with --rng-seed " << base
                         << " to replay): " << config.describe());
            run_case<Scalar>(config, seed);
          }
        }
      }
    }
  }
  REQUIRE(index > 0);
}

/// A small complete block for the error cases.
BlockConfig small_config() {
  BlockConfig config;
  config.name = "layers.3.attn";
  config.heads = 4;
  config.kv_heads = 2;
  config.head_dim = 3;
  config.model_dim = 8;
  return config;
}

}  // namespace

TEMPLATE_TEST_CASE("attention_head_outputs equals the oracle: multi-head attention",
                   "[calibration][head_outputs]", float, double, Eigen::half) {
  run_grid<TestType>(4, 4);
}

TEMPLATE_TEST_CASE("attention_head_outputs equals the oracle: grouped-query attention H=6, H_kv=2",
                   "[calibration][head_outputs][gqa]", float, double, Eigen::half) {
  run_grid<TestType>(6, 2);
}

TEMPLATE_TEST_CASE("attention_head_outputs equals the oracle: multi-query attention H=4, H_kv=1",
                   "[calibration][head_outputs][gqa]", float, double, Eigen::half) {
  run_grid<TestType>(4, 1);
}

TEST_CASE("attention_head_outputs: any Eigen expression, no tokens, large logits",
          "[calibration][head_outputs]") {
  BlockConfig config = small_config();
  config.qkv = QkvLayout::concat;
  config.qkv_bias = true;
  config.extras = true;
  RandomBlock<float> random(config, 7u + Catch::rngSeed());
  const auto& block = random.block();
  std::mt19937 rng(8u + Catch::rngSeed());
  const Eigen::MatrixXd x = random_input(rng, 9, 8);

  SECTION("a block of a wider matrix, in another scalar type than the block's") {
    const Eigen::MatrixXd wide = random_input(rng, 12, 20);
    AttentionOptions causal;
    causal.causal = true;
    const Eigen::MatrixXd expected = mhaprune::reference::head_outputs(wide.block(2, 5, 6, 8), block, causal);
    const Eigen::MatrixXd got = mhaprune::attention_head_outputs(wide.block(2, 5, 6, 8), block, causal);
    CHECK(max_abs(got - expected) <= tolerance * max_abs(expected));
  }
  SECTION("a sequence of no tokens gives no rows") {
    const Eigen::MatrixXf empty(0, 8);
    const Eigen::MatrixXd got = mhaprune::attention_head_outputs(empty, block);
    CHECK(got.rows() == 0);
    CHECK(got.cols() == 12);
  }
  SECTION("logits far beyond exp's range: the softmax is shifted, not overflowed") {
    AttentionOptions hot;
    hot.scale = 400.0;  // logits in the hundreds or thousands: exp() alone would give inf
    const Eigen::MatrixXd expected = mhaprune::reference::head_outputs(x, block, hot);
    const Eigen::MatrixXd got = mhaprune::attention_head_outputs(x, block, hot);
    REQUIRE(got.allFinite());
    CHECK(max_abs(got - expected) <= tolerance * max_abs(expected));
  }
}

TEST_CASE("attention_head_outputs: bad input throws what the oracle throws, naming block and shapes",
          "[calibration][head_outputs][errors]") {
  RandomBlock<float> random(small_config(), 5u + Catch::rngSeed());
  auto& block = random.block();
  const Eigen::MatrixXf x = Eigen::MatrixXf::Random(5, 8);

  SECTION("a sequence of the wrong width") {
    const Eigen::MatrixXf narrow = Eigen::MatrixXf::Ones(3, 7);
    CHECK_THROWS_AS(mhaprune::reference::head_outputs(narrow, block), shape_error);
    const std::string what =
        message_of<shape_error>([&] { (void)mhaprune::attention_head_outputs(narrow, block); });
    CHECK_THAT(what, Contains("layers.3.attn") && Contains("[T, 8]") && Contains("[3, 7]"));
  }
  SECTION("a mask of the wrong length") {
    AttentionOptions options;
    options.mask = HeadMask(3);
    CHECK_THROWS_AS(mhaprune::reference::head_outputs(x, block, options), shape_error);
    const std::string what =
        message_of<shape_error>([&] { (void)mhaprune::attention_head_outputs(x, block, options); });
    CHECK_THAT(what, Contains("layers.3.attn") && Contains("3 entries") && Contains("4 heads"));
  }
  SECTION("a weight resized behind the block's back: the block's own check, word for word") {
    // small_config() keeps its tensors in owning row-major matrices, which the caller may resize.
    random.tensor("key.weight").visit([](auto& o) {
      if constexpr (std::is_same_v<std::decay_t<decltype(o)>, TestTensor<float>::RowMajorMatrix>)
        o.resize(5, 8);
    });
    REQUIRE(random.tensor("key.weight").rows() == 5);
    const std::string oracle =
        message_of<shape_error>([&] { (void)mhaprune::reference::head_outputs(x, block); });
    const std::string what =
        message_of<shape_error>([&] { (void)mhaprune::attention_head_outputs(x, block); });
    CHECK(what == oracle);
    CHECK_THAT(what, Contains("layers.3.attn") && Contains("key.weight") && Contains("[5, 8]"));
  }
  SECTION("a block without V") {
    Eigen::MatrixXf q = Eigen::MatrixXf::Random(12, 8), k = Eigen::MatrixXf::Random(6, 8);
    Eigen::MatrixXf o = Eigen::MatrixXf::Random(8, 12);
    mhaprune::AttentionBlock<float> incomplete("layers.4.attn", HeadLayout(4, 2, 3, 8));
    namespace layout = mhaprune::layout;
    incomplete.add(layout::query(q)).add(layout::key(k)).add(layout::output(o));
    const std::string oracle =
        message_of<shape_error>([&] { (void)mhaprune::reference::head_outputs(x, incomplete); });
    const std::string what =
        message_of<shape_error>([&] { (void)mhaprune::attention_head_outputs(x, incomplete); });
    CHECK(what == oracle);
    CHECK_THAT(what, Contains("layers.4.attn") && Contains("value weight is missing"));
  }
}

}  // namespace test_calibration_head_outputs
