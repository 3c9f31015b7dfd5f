// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// HeadLayout: accessors, group geometry, equality, and the layouts it refuses.

#include <catch2/catch.hpp>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <vector>

namespace test_head_layout {

using Catch::Matchers::Contains;
using mhaprune::HeadLayout;
using mhaprune::Index;

TEST_CASE("HeadLayout accessors", "[head_layout]") {
  const HeadLayout L(8, 2, 64, 512);
  REQUIRE(L.heads() == 8);
  REQUIRE(L.kv_heads() == 2);
  REQUIRE(L.head_dim() == 64);
  REQUIRE(L.model_dim() == 512);
  REQUIRE(L.group_size() == 4);
  REQUIRE(L.query_width() == 512);
  REQUIRE(L.kv_width() == 128);

  // The model width need not be H*d (T5, some ViTs).
  const HeadLayout wide(4, 4, 3, 10);
  REQUIRE(wide.query_width() == 12);
  REQUIRE(wide.model_dim() == 10);

  const HeadLayout mha = HeadLayout::mha(12, 64, 768);
  REQUIRE(mha.heads() == 12);
  REQUIRE(mha.kv_heads() == 12);
  REQUIRE(mha.group_size() == 1);
  REQUIRE(mha.kv_width() == mha.query_width());
}

TEST_CASE("HeadLayout maps each query head to its key/value head", "[head_layout][gqa]") {
  struct Case {
    Index heads, kv_heads;
    std::vector<Index> kv_of;
  };
  const std::vector<Case> cases = {
      {4, 4, {0, 1, 2, 3}},              // MHA: its own
      {8, 2, {0, 0, 0, 0, 1, 1, 1, 1}},  // GQA: consecutive query heads share
      {6, 3, {0, 0, 1, 1, 2, 2}},        //
      {5, 1, {0, 0, 0, 0, 0}},           // MQA: one for all
      {1, 1, {0}},                       //
  };
  for (const Case& c : cases) {
    INFO("H=" << c.heads << " H_kv=" << c.kv_heads);
    const HeadLayout L(c.heads, c.kv_heads, 2, 8);
    REQUIRE(L.group_size() == c.heads / c.kv_heads);
    for (Index h = 0; h < c.heads; ++h) REQUIRE(L.kv_head_of(h) == c.kv_of[static_cast<std::size_t>(h)]);
  }
}

TEST_CASE("HeadLayout equality compares all four numbers", "[head_layout]") {
  const HeadLayout a(8, 2, 4, 32);
  REQUIRE(a == HeadLayout(8, 2, 4, 32));
  REQUIRE_FALSE(a != HeadLayout(8, 2, 4, 32));
  REQUIRE(a != HeadLayout(8, 4, 4, 32));
  REQUIRE(a != HeadLayout(4, 2, 4, 32));
  REQUIRE(a != HeadLayout(8, 2, 2, 32));
  REQUIRE(a != HeadLayout(8, 2, 4, 16));
  REQUIRE(HeadLayout::mha(3, 2, 8) == HeadLayout(3, 3, 2, 8));
  HeadLayout copy = a;
  REQUIRE(copy == a);
  copy = HeadLayout(1, 1, 1, 1);
  REQUIRE(copy != a);
}

TEST_CASE("HeadLayout refuses impossible geometries, with the numbers", "[head_layout][errors]") {
  struct Bad {
    Index heads, kv_heads, head_dim, model_dim;
    std::vector<std::string> message;
  };
  const std::vector<Bad> bad = {
      {0, 1, 2, 8, {"heads=0", "kv_heads=1", "head_dim=2", "model_dim=8", "positive"}},
      {-4, 1, 2, 8, {"heads=-4"}},
      {4, 0, 2, 8, {"kv_heads=0"}},
      {4, -2, 2, 8, {"kv_heads=-2"}},
      {4, 2, 0, 8, {"head_dim=0"}},
      {4, 2, -1, 8, {"head_dim=-1"}},
      {4, 2, 2, 0, {"model_dim=0"}},
      {4, 2, 2, -8, {"model_dim=-8"}},
      {8, 3, 2, 8, {"heads (8)", "kv_heads (3)", "multiple"}},
      {2, 4, 2, 8, {"heads (2)", "kv_heads (4)"}},  // more key/value heads than query heads
      {7, 2, 2, 8, {"heads (7)", "kv_heads (2)"}},
  };
  for (const Bad& b : bad) {
    INFO("HeadLayout(" << b.heads << ", " << b.kv_heads << ", " << b.head_dim << ", " << b.model_dim << ")");
    REQUIRE_THROWS_AS(HeadLayout(b.heads, b.kv_heads, b.head_dim, b.model_dim), mhaprune::layout_error);
    REQUIRE_THROWS_AS(HeadLayout(b.heads, b.kv_heads, b.head_dim, b.model_dim), mhaprune::error);
    for (const std::string& part : b.message) {
      REQUIRE_THROWS_WITH(HeadLayout(b.heads, b.kv_heads, b.head_dim, b.model_dim), Contains(part));
    }
  }
  REQUIRE_THROWS_AS(HeadLayout::mha(0, 64, 768), mhaprune::layout_error);
  REQUIRE_NOTHROW(HeadLayout(1, 1, 1, 1));
}

}  // namespace test_head_layout
