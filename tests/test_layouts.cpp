// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Each layout adapter, on blocks small enough to write out by hand: its segment list, how it binds
// (name, kind, head axis), and exactly which rows or columns a removal keeps. Every weight here is
// "labelled": element (i, j) of a head-axis-on-rows tensor is 100*i + j, so the kept rows read off
// as the list of their original indices.

#include <catch2/catch.hpp>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <vector>

namespace test_layouts {

namespace {

using mhaprune::Axis;
using mhaprune::HeadLayout;
using mhaprune::Index;
using mhaprune::Orientation;
using mhaprune::OriginalIds;
using mhaprune::Owner;
using mhaprune::Positions;
using mhaprune::Role;
using mhaprune::Segment;
using mhaprune::TensorKind;
namespace layout = mhaprune::layout;
namespace segments = mhaprune::layout::segments;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// Element (i, j) = 100*i + j (exact in float).
template <typename M>
M labeled(Index rows, Index cols) {
  M m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) m(i, j) = static_cast<float>(100 * i + j);
  return m;
}

/// Original row index of each row of a labelled tensor, checking every column agrees.
template <typename M>
std::vector<Index> row_labels(const M& m) {
  std::vector<Index> out;
  for (Index i = 0; i < m.rows(); ++i) {
    const Index label = static_cast<Index>(m(i, 0)) / 100;
    for (Index j = 0; j < m.cols(); ++j)
      if (m(i, j) != static_cast<float>(100 * label + j)) return {-1};
    out.push_back(label);
  }
  return out;
}

/// Original column index of each column of a labelled tensor, checking every row agrees.
template <typename M>
std::vector<Index> col_labels(const M& m) {
  std::vector<Index> out;
  for (Index j = 0; j < m.cols(); ++j) {
    const Index label = static_cast<Index>(m(0, j)) % 100;
    for (Index i = 0; i < m.rows(); ++i)
      if (m(i, j) != static_cast<float>(100 * i + label)) return {-1};
    out.push_back(label);
  }
  return out;
}

/// A segment written compactly for comparisons: role letter, owner letter, unit, width.
std::string describe(const std::vector<Segment>& s) {
  std::string out;
  for (const Segment& x : s) {
    const char role = x.role == Role::query            ? 'q'
                      : x.role == Role::key            ? 'k'
                      : x.role == Role::value          ? 'v'
                      : x.role == Role::output         ? 'o'
                      : x.role == Role::alibi_slope    ? 'a'
                      : x.role == Role::attention_sink ? 's'
                                                       : 'e';
    out += role;
    out += x.owner == Owner::query_head ? "" : "'";
    out += std::to_string(x.unit);
    if (x.width != 1) {
      out += 'x';
      out += std::to_string(x.width);
    }
    out += ' ';
  }
  if (!out.empty()) out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("segment lists of every layout", "[layouts][segments]") {
  const HeadLayout gqa(4, 2, 3, 8);
  const HeadLayout mha = HeadLayout::mha(2, 3, 8);
  // ' marks a key/value owner; widths are d = 3.
  CHECK(describe(segments::single(gqa, Role::query)) == "q0x3 q1x3 q2x3 q3x3");
  CHECK(describe(segments::single(gqa, Role::key)) == "k'0x3 k'1x3");
  CHECK(describe(segments::single(gqa, Role::value)) == "v'0x3 v'1x3");
  CHECK(describe(segments::single(gqa, Role::output)) == "o0x3 o1x3 o2x3 o3x3");
  CHECK(describe(segments::qkv_concat(gqa)) == "q0x3 q1x3 q2x3 q3x3 k'0x3 k'1x3 v'0x3 v'1x3");
  CHECK(describe(segments::qkv_grouped(gqa)) == "q0x3 q1x3 k'0x3 v'0x3 q2x3 q3x3 k'1x3 v'1x3");
  CHECK(describe(segments::qkv_interleaved(mha)) == "q0x3 k'0x3 v'0x3 q1x3 k'1x3 v'1x3");
  // For MHA the grouped layout is the interleaved one.
  CHECK(describe(segments::qkv_grouped(mha)) == describe(segments::qkv_interleaved(mha)));
  REQUIRE_THROWS_AS(segments::qkv_interleaved(gqa), mhaprune::layout_error);

  CHECK(describe(segments::per_head(gqa, Role::alibi_slope, Owner::query_head, 4)) == "a0 a1 a2 a3");
  CHECK(describe(segments::per_head(gqa, Role::extra, Owner::query_head, 12)) == "e0x3 e1x3 e2x3 e3x3");
  CHECK(describe(segments::per_head(gqa, Role::extra, Owner::kv_head, 6)) == "e'0x3 e'1x3");
  CHECK(segments::per_head(gqa, Role::extra, Owner::query_head, 6).empty());  // 6 does not split in 4
  CHECK(mhaprune::total_width(segments::qkv_concat(gqa)) == (4 + 2 * 2) * 3);
}

TEST_CASE("adapters bind with the right name, kind and head axis", "[layouts]") {
  const HeadLayout L(4, 2, 2, 6);  // Q [8, 6], K/V [4, 6], O [6, 8]
  mhaprune::AttentionBlock<float> b("attn", L);
  RowMajorF q(8, 6), o(6, 8), c_attn(6, 16), bqkv(16, 1), alibi_row(1, 4), rel(3, 4), knorm(4, 1);
  ColMajorF k(4, 6), v(4, 6), bo(6, 1);
  b.add(layout::query(q).named("q_proj.weight"))
      .add(layout::key(k))
      .add(layout::value(v))
      .add(layout::output(o))
      .add(layout::output_bias(bo))
      .add(layout::alibi_slopes(alibi_row))
      .add(layout::per_head("rel_bias", rel, Axis::cols))
      .add(layout::per_head("k_norm", knorm, Axis::rows, Role::extra, Owner::kv_head));
  REQUIRE_NOTHROW(b.validate());

  struct Expect {
    const char* name;
    TensorKind kind;
    Axis axis;
    bool sliced;
    const char* segments;
  };
  const std::vector<Expect> expect = {
      {"q_proj.weight", TensorKind::weight, Axis::rows, true, "q0x2 q1x2 q2x2 q3x2"},
      {"key.weight", TensorKind::weight, Axis::rows, true, "k'0x2 k'1x2"},
      {"value.weight", TensorKind::weight, Axis::rows, true, "v'0x2 v'1x2"},
      {"output.weight", TensorKind::weight, Axis::cols, true, "o0x2 o1x2 o2x2 o3x2"},
      {"output.bias", TensorKind::bias, Axis::rows, false, ""},
      {"alibi_slopes", TensorKind::extra, Axis::cols, true, "a0 a1 a2 a3"},
      {"rel_bias", TensorKind::extra, Axis::cols, true, "e0 e1 e2 e3"},
      {"k_norm", TensorKind::extra, Axis::rows, true, "e'0x2 e'1x2"},
  };
  REQUIRE(b.tensors().size() == expect.size());
  for (const Expect& e : expect) {
    INFO(e.name);
    const auto* t = b.find(e.name);
    REQUIRE(t != nullptr);
    CHECK(t->kind == e.kind);
    CHECK(t->sliced() == e.sliced);
    if (e.sliced) CHECK(t->head_axis == e.axis);
    CHECK(describe(t->segments) == e.segments);
  }
  REQUIRE(b.find("query.weight") == nullptr);

  SECTION("GPT-2 Conv1D weights are stored transposed") {
    mhaprune::AttentionBlock<float> gpt2("h.0.attn", L);
    RowMajorF c_proj(8, 6);
    gpt2.add(layout::qkv_concat(c_attn).named("c_attn.weight").stored_as(Orientation::in_out))
        .add(layout::output(c_proj).named("c_proj.weight").stored_as(Orientation::in_out))
        .add(layout::qkv_concat_bias(bqkv).named("c_attn.bias"));
    REQUIRE_NOTHROW(gpt2.validate());
    CHECK(gpt2.find("c_attn.weight")->head_axis == Axis::cols);
    CHECK(gpt2.find("c_proj.weight")->head_axis == Axis::rows);
    CHECK(gpt2.find("c_attn.bias")->head_axis == Axis::rows);
  }
}

TEST_CASE("separate Q/K/V: rows of Q, K, V and columns of O go with their heads", "[layouts][remove]") {
  // H=4, H_kv=2 (groups {0,1}, {2,3}), d=2, D=3.
  mhaprune::AttentionBlock<float> b("attn", HeadLayout(4, 2, 2, 3));
  auto q = labeled<RowMajorF>(8, 3);
  auto k = labeled<ColMajorF>(4, 3);
  auto v = labeled<RowMajorF>(4, 3);
  auto o = labeled<ColMajorF>(3, 8);
  auto bq = labeled<RowMajorF>(8, 1);
  auto bo = labeled<RowMajorF>(3, 1);
  b.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));
  b.add(layout::query_bias(bq)).add(layout::output_bias(bo));

  auto removed = mhaprune::remove_heads(b, Positions{3, 0});  // one from each group
  CHECK(removed.heads == std::vector<Index>{0, 3});
  CHECK(removed.kv_heads.empty());
  CHECK(row_labels(q) == std::vector<Index>{2, 3, 4, 5});
  CHECK(row_labels(k) == std::vector<Index>{0, 1, 2, 3});
  CHECK(row_labels(v) == std::vector<Index>{0, 1, 2, 3});
  CHECK(col_labels(o) == std::vector<Index>{2, 3, 4, 5});
  CHECK(row_labels(bq) == std::vector<Index>{2, 3, 4, 5});
  CHECK(row_labels(bo) == std::vector<Index>{0, 1, 2});  // O's bias is never sliced
  CHECK(b.layout() == HeadLayout(2, 2, 2, 3));

  removed = mhaprune::remove_kv_heads(b, OriginalIds{0});  // the group of original heads {0, 1}
  CHECK(removed.heads == std::vector<Index>{1});
  CHECK(removed.kv_heads == std::vector<Index>{0});
  CHECK(row_labels(q) == std::vector<Index>{4, 5});
  CHECK(row_labels(k) == std::vector<Index>{2, 3});
  CHECK(row_labels(v) == std::vector<Index>{2, 3});
  CHECK(col_labels(o) == std::vector<Index>{4, 5});
  CHECK(b.head_ids() == std::vector<Index>{2});
  CHECK(b.kv_head_ids() == std::vector<Index>{1});
}

TEST_CASE("qkv_concat: [Q | K | V] rows", "[layouts][remove]") {
  // H=4, H_kv=2, d=1: rows q0 q1 q2 q3 k0 k1 v0 v1.
  mhaprune::AttentionBlock<float> b("attn", HeadLayout(4, 2, 1, 3));
  auto qkv = labeled<ColMajorF>(8, 3);
  auto bias = labeled<RowMajorF>(1, 8);
  auto o = labeled<RowMajorF>(3, 4);
  b.add(layout::qkv_concat(qkv)).add(layout::qkv_concat_bias(bias)).add(layout::output(o));

  mhaprune::remove_heads(b, Positions{1, 3});
  CHECK(row_labels(qkv) == std::vector<Index>{0, 2, 4, 5, 6, 7});
  CHECK(col_labels(bias) == std::vector<Index>{0, 2, 4, 5, 6, 7});
  CHECK(col_labels(o) == std::vector<Index>{0, 2});
  mhaprune::remove_heads(b, OriginalIds{2});  // the last head of group 1: K/V head 1 goes with it
  CHECK(row_labels(qkv) == std::vector<Index>{0, 4, 6});
  CHECK(col_labels(bias) == std::vector<Index>{0, 4, 6});
  CHECK(b.kv_head_ids() == std::vector<Index>{0});
}

TEST_CASE("qkv_interleaved: q_h, k_h, v_h per head", "[layouts][remove]") {
  // H=3, d=2: rows q0 q0 k0 k0 v0 v0 | q1 ... | q2 ...
  mhaprune::AttentionBlock<float> b("gpt_neox.layers.0.attention", HeadLayout::mha(3, 2, 2));
  auto w = labeled<RowMajorF>(18, 2);
  auto bias = labeled<ColMajorF>(18, 1);
  auto o = labeled<RowMajorF>(2, 6);
  b.add(layout::qkv_interleaved(w)).add(layout::qkv_interleaved_bias(bias)).add(layout::output(o));
  CHECK(b.find("query_key_value.weight") != nullptr);

  const auto removed = mhaprune::remove_heads(b, Positions{1});
  CHECK(removed.heads == std::vector<Index>{1});
  CHECK(removed.kv_heads == std::vector<Index>{1});
  CHECK(row_labels(w) == std::vector<Index>{0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17});
  CHECK(row_labels(bias) == std::vector<Index>{0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17});
  CHECK(col_labels(o) == std::vector<Index>{0, 1, 4, 5});
}

TEST_CASE("qkv_grouped: q_1 .. q_r, k, v per group", "[layouts][remove][gqa]") {
  // H=4, H_kv=2, d=1: rows q0 q1 k0 v0 | q2 q3 k1 v1.
  mhaprune::AttentionBlock<float> b("falcon.h.0.self_attention", HeadLayout(4, 2, 1, 2));
  auto w = labeled<RowMajorF>(8, 2);
  auto o = labeled<ColMajorF>(2, 4);
  b.add(layout::qkv_grouped(w)).add(layout::output(o));

  mhaprune::remove_heads(b, Positions{0, 2});
  CHECK(row_labels(w) == std::vector<Index>{1, 2, 3, 5, 6, 7});
  CHECK(col_labels(o) == std::vector<Index>{1, 3});
  // The block now reads the tensor as q1 k0 v0 | q3 k1 v1.
  CHECK(describe(b.find("query_key_value.weight")->segments) == "q0 k'0 v'0 q1 k'1 v'1");
  mhaprune::remove_kv_heads(b, OriginalIds{0});
  CHECK(row_labels(w) == std::vector<Index>{5, 6, 7});
  CHECK(col_labels(o) == std::vector<Index>{3});
  CHECK(b.layout() == HeadLayout(1, 1, 1, 2));
}

TEST_CASE("GPT-2 Conv1D: c_attn [D, 3D] loses columns, c_proj [H*d, D] loses rows", "[layouts][remove]") {
  // H=2, d=2, D=3: c_attn columns q0 q0 q1 q1 k0 k0 k1 k1 v0 v0 v1 v1.
  mhaprune::AttentionBlock<float> b("h.0.attn", HeadLayout::mha(2, 2, 3));
  auto c_attn = labeled<RowMajorF>(3, 12);
  auto c_attn_bias = labeled<RowMajorF>(1, 12);
  auto c_proj = labeled<ColMajorF>(4, 3);
  auto c_proj_bias = labeled<RowMajorF>(1, 3);
  b.add(layout::qkv_concat(c_attn).named("c_attn.weight").stored_as(Orientation::in_out))
      .add(layout::qkv_concat_bias(c_attn_bias).named("c_attn.bias"))
      .add(layout::output(c_proj).named("c_proj.weight").stored_as(Orientation::in_out))
      .add(layout::output_bias(c_proj_bias).named("c_proj.bias"));
  // The reference reads Conv1D weights back in Linear orientation.
  const Eigen::MatrixXd wq = mhaprune::reference::weight(b, Role::query);
  REQUIRE(wq.rows() == 4);
  REQUIRE(wq.cols() == 3);
  CHECK(wq(1, 2) == 201.0);  // Q row 1 = c_attn column 1; input feature 2 = c_attn row 2
  CHECK(mhaprune::reference::weight(b, Role::output)(2, 3) == 302.0);

  mhaprune::remove_heads(b, Positions{0});
  CHECK(col_labels(c_attn) == std::vector<Index>{2, 3, 6, 7, 10, 11});
  CHECK(col_labels(c_attn_bias) == std::vector<Index>{2, 3, 6, 7, 10, 11});
  CHECK(row_labels(c_proj) == std::vector<Index>{2, 3});
  CHECK(col_labels(c_proj_bias) == std::vector<Index>{0, 1, 2});
  CHECK(mhaprune::reference::weight(b, Role::query)(1, 2) == 203.0);
}

TEST_CASE("extras keep each survivor's own values", "[layouts][remove][extras]") {
  // H=6, H_kv=3 (groups {0,1}, {2,3}, {4,5}), d=2, D=4.
  mhaprune::AttentionBlock<double> b("bloom.h.0", HeadLayout(6, 3, 2, 4));
  Eigen::MatrixXd q = Eigen::MatrixXd::Random(12, 4), k = Eigen::MatrixXd::Random(6, 4),
                  v = Eigen::MatrixXd::Random(6, 4), o = Eigen::MatrixXd::Random(4, 12);
  Eigen::VectorXd alibi(6), sinks(6);
  alibi << 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625;
  sinks << -1, -2, -3, -4, -5, -6;
  Eigen::MatrixXd rel(2, 6);  // T5: [buckets, H]
  rel << 0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15;
  Eigen::RowVectorXd head_norm(12), k_norm(6);
  for (Index i = 0; i < 12; ++i) head_norm(i) = static_cast<double>(i);
  for (Index i = 0; i < 6; ++i) k_norm(i) = static_cast<double>(100 + i);
  b.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));
  b.add(layout::alibi_slopes(alibi)).add(layout::attention_sinks(sinks));
  b.add(layout::per_head("rel_bias", rel, Axis::cols));
  b.add(layout::per_head("head_norm", head_norm, Axis::cols));
  b.add(layout::per_head("k_norm", k_norm, Axis::cols, Role::extra, Owner::kv_head));

  auto vec = [](const auto& m) { return std::vector<double>(m.data(), m.data() + m.size()); };

  auto removed = mhaprune::remove_heads(b, OriginalIds{3, 2});  // the whole group 1
  CHECK(removed.kv_heads == std::vector<Index>{1});
  CHECK(vec(alibi) == std::vector<double>{0.5, 0.25, 0.03125, 0.015625});
  CHECK(vec(sinks) == std::vector<double>{-1, -2, -5, -6});
  REQUIRE(rel.rows() == 2);
  REQUIRE(rel.cols() == 4);
  CHECK(rel.row(0) == Eigen::RowVector4d(0, 1, 4, 5));
  CHECK(rel.row(1) == Eigen::RowVector4d(10, 11, 14, 15));
  CHECK(vec(head_norm) == std::vector<double>{0, 1, 2, 3, 8, 9, 10, 11});
  CHECK(vec(k_norm) == std::vector<double>{100, 101, 104, 105});

  removed = mhaprune::remove_heads(b, OriginalIds{0, 4});  // one from each remaining group
  CHECK(removed.kv_heads.empty());
  CHECK(b.head_ids() == std::vector<Index>{1, 5});
  CHECK(vec(alibi) == std::vector<double>{0.25, 0.015625});
  CHECK(vec(sinks) == std::vector<double>{-2, -6});
  CHECK(vec(head_norm) == std::vector<double>{2, 3, 10, 11});
  CHECK(vec(k_norm) == std::vector<double>{100, 101, 104, 105});  // both groups still have a head
  // The reference forward reads the slope of original head 5 at its new position.
  const auto slopes = mhaprune::reference::per_head_values(b, Role::alibi_slope);
  REQUIRE(slopes.has_value());
  CHECK((*slopes)(b.position_of(5)) == 0.015625);
  CHECK((*mhaprune::reference::per_head_values(b, Role::attention_sink))(b.position_of(1)) == -2.0);
}

}  // namespace test_layouts
