// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Element-wise criteria (magnitude, gradient, snip) against hand-computed values, for every reduction,
// on a multi-head block and a grouped-query block, and layout independence.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <mhaprune/mhaprune.hpp>
#include <utility>
#include <vector>

#include "test_criteria_blocks.hpp"

namespace test_criteria_element_wise {

using namespace criteria_test;
using mhaprune::Evidence;
using mhaprune::Reduction;

namespace {

void check_scores(const Eigen::VectorXd& got, std::initializer_list<double> expected) {
  REQUIRE(got.size() == static_cast<Index>(expected.size()));
  Index i = 0;
  for (double e : expected) {
    INFO("head " << i);
    CHECK(got(i) == Approx(e).epsilon(1e-6).margin(1e-12));
    ++i;
  }
}

template <typename S>
struct GradientsA {
  RowMat<S> q, k, v, o;
  GradientsA() {
    const Weights g = gradients_a();
    q = g.q.cast<float>().cast<S>();
    k = g.k.cast<float>().cast<S>();
    v = g.v.cast<float>().cast<S>();
    o = g.o.cast<float>().cast<S>();
  }
  Evidence evidence() const { return separate_gradients(q, k, v, o); }
};

const double r2 = std::sqrt(2.0), r5 = std::sqrt(5.0), r8 = std::sqrt(8.0), r10 = std::sqrt(10.0);

}  // namespace

// Block A by hand. Slices (head 0 | head 1):
//   |Q| rows (1,2) | (3,4); |K| rows (0,1) | (1,2); |V| rows (2,2) | (3,1); |O| columns (1,2) | (0,5).
TEMPLATE_TEST_CASE("magnitude: every reduction by hand on a multi-head block", "[criteria][magnitude]", float,
                   double, Eigen::half, Eigen::bfloat16) {
  Separate<TestType> a("layers.0", layout_a(), weights_a());
  // mean: Q 1.5 | 3.5, K 0.5 | 1.5, V 2 | 2, O 1.5 | 2.5.
  check_scores(mhaprune::Magnitude().scores(a.block), {5.5 / 4, 9.5 / 4});
  check_scores(mhaprune::Magnitude(Reduction::mean).scores(a.block, Evidence{}), {5.5 / 4, 9.5 / 4});
  // sum: Q 3 | 7, K 1 | 3, V 4 | 4, O 3 | 5.
  check_scores(mhaprune::Magnitude(Reduction::sum).scores(a.block), {11.0 / 4, 19.0 / 4});
  // max: Q 2 | 4, K 1 | 2, V 2 | 3, O 2 | 5.
  check_scores(mhaprune::Magnitude(Reduction::max).scores(a.block), {7.0 / 4, 14.0 / 4});
  // l2: Q √5 | 5, K 1 | √5, V √8 | √10, O √5 | 5.
  check_scores(mhaprune::Magnitude(Reduction::l2).scores(a.block),
               {(r5 + 1 + r8 + r5) / 4, (5 + r5 + r10 + 5) / 4});

  const mhaprune::RoleNumbers n = mhaprune::Magnitude(Reduction::sum).numbers(a.block);
  CHECK(n.query(0) == Approx(3.0));
  CHECK(n.key(1) == Approx(3.0));
  CHECK(n.value(0) == Approx(4.0));
  CHECK(n.output(1) == Approx(5.0));
}

TEMPLATE_TEST_CASE("magnitude: role weights", "[criteria][magnitude]", float, double) {
  Separate<TestType> a("layers.0", layout_a(), weights_a());
  mhaprune::RoleWeights w;
  w.query = 2;
  w.key = 0;
  w.value = 0;
  w.output = 1;
  // mean numbers Q 1.5 | 3.5, O 1.5 | 2.5: (2q + o) / 3.
  check_scores(mhaprune::Magnitude(Reduction::mean, w).scores(a.block), {4.5 / 3, 9.5 / 3});
}

// |G| slices (head 0 | head 1): Q (1,1) | (0,1); K (2,0) | (1,1); V (0,1) | (1,0); O columns (1,1) | (1,1).
TEMPLATE_TEST_CASE("gradient: every reduction by hand", "[criteria][gradient]", float, double, Eigen::half,
                   Eigen::bfloat16) {
  Separate<TestType> a("layers.0", layout_a(), weights_a());
  const GradientsA<TestType> g;
  const Evidence ev = g.evidence();
  check_scores(mhaprune::Gradient(Reduction::sum).scores(a.block, ev), {7.0 / 4, 6.0 / 4});
  check_scores(mhaprune::Gradient(Reduction::mean).scores(a.block, ev), {7.0 / 8, 6.0 / 8});
  check_scores(mhaprune::Gradient(Reduction::max).scores(a.block, ev), {5.0 / 4, 4.0 / 4});
  check_scores(mhaprune::Gradient(Reduction::l2).scores(a.block, ev),
               {(r2 + 2 + 1 + r2) / 4, (1 + r2 + 1 + r2) / 4});
}

// |W ⊙ G| slices (head 0 | head 1): Q (1,2) | (0,4); K (0,0) | (1,2); V (0,2) | (3,0); O columns (1,2) |
// (0,5).
TEMPLATE_TEST_CASE("snip: every reduction by hand", "[criteria][snip]", float, double, Eigen::half,
                   Eigen::bfloat16) {
  Separate<TestType> a("layers.0", layout_a(), weights_a());
  const GradientsA<TestType> g;
  const Evidence ev = g.evidence();
  check_scores(mhaprune::Snip(Reduction::sum).scores(a.block, ev), {8.0 / 4, 15.0 / 4});
  check_scores(mhaprune::Snip(Reduction::mean).scores(a.block, ev), {1.0, 1.875});
  check_scores(mhaprune::Snip(Reduction::max).scores(a.block, ev), {6.0 / 4, 14.0 / 4});
  check_scores(mhaprune::Snip(Reduction::l2).scores(a.block, ev),
               {(r5 + 0 + 2 + r5) / 4, (4 + r5 + 3 + 5) / 4});
}

TEST_CASE("snip: gradients in another dtype, storage order or with an outer stride", "[criteria][snip]") {
  Separate<Eigen::bfloat16> a("layers.0", layout_a(), weights_a());
  const Weights gd = gradients_a();
  // fp32 gradients for a bf16 block.
  const RowMat<float> q = gd.q.cast<float>(), k = gd.k.cast<float>(), v = gd.v.cast<float>(),
                      o = gd.o.cast<float>();
  check_scores(mhaprune::Snip(Reduction::sum).scores(a.block, separate_gradients(q, k, v, o)), {2.0, 3.75});
  // Column-major double gradients.
  const ColMat<double> qc = gd.q, kc = gd.k, vc = gd.v, oc = gd.o;
  check_scores(mhaprune::Snip(Reduction::sum).scores(a.block, separate_gradients(qc, kc, vc, oc)),
               {2.0, 3.75});
  // Blocks of larger matrices (outer stride 5), and a transposed view.
  RowMat<float> big = RowMat<float>::Constant(5, 5, 100.0f);
  big.block(1, 1, 2, 2) = o;
  ColMat<float> ot = o.transpose();
  Evidence ev = separate_gradients(q, k, v, o);
  ev.with_gradient("output.weight", big.block(1, 1, 2, 2));
  check_scores(mhaprune::Snip(Reduction::max).scores(a.block, ev), {6.0 / 4, 14.0 / 4});
  ev.with_gradient("output.weight", ot.transpose());
  check_scores(mhaprune::Snip(Reduction::l2).scores(a.block, ev),
               {(r5 + 0 + 2 + r5) / 4, (4 + r5 + 3 + 5) / 4});
  // A MatrixBuffer.
  std::vector<float> raw(o.data(), o.data() + 4);
  mhaprune::MatrixBuffer<float> buf{raw.data(), 4, 2, 2, mhaprune::StorageOrder::row_major};
  ev.with_gradient("output.weight", buf);
  check_scores(mhaprune::Snip(Reduction::sum).scores(a.block, ev), {2.0, 3.75});
}

// Block G by hand. Slices: |Q| rows 1, 2, 3, 4 (sums); |K| rows (2,2) | (0,6); |V| rows (1,1) | (2,0);
// |O| columns (1,0), (2,0), (0,3), (0,1). Query heads 0, 1 share K/V head 0; heads 2, 3 share K/V head 1.
TEMPLATE_TEST_CASE("magnitude: grouped-query block shares K/V numbers as they are",
                   "[criteria][magnitude][gqa]", float, double, Eigen::half, Eigen::bfloat16) {
  Separate<TestType> g("layers.3", layout_g(), weights_g());
  // mean: Q .5 1 1.5 2; K 2 | 3; V 1 | 1; O .5 1 1.5 .5.
  const Eigen::VectorXd mean = mhaprune::Magnitude(Reduction::mean).scores(g.block);
  check_scores(mean, {4.0 / 4, 5.0 / 4, 7.0 / 4, 6.5 / 4});
  // sum: K/V sums are not divided by the group size, so sum = d*D*mean (d*D = 2) with GQA too.
  const Eigen::VectorXd sum = mhaprune::Magnitude(Reduction::sum).scores(g.block);
  check_scores(sum, {2.0, 2.5, 3.5, 3.25});
  CHECK(sum.isApprox(2.0 * mean));
  // max: Q 1 2 3 4; K 2 | 6; V 1 | 2; O 1 2 3 1.
  check_scores(mhaprune::Magnitude(Reduction::max).scores(g.block), {5.0 / 4, 7.0 / 4, 14.0 / 4, 13.0 / 4});
  // l2: Q 1 2 3 4; K √8 | 6; V √2 | 2; O 1 2 3 1.
  check_scores(mhaprune::Magnitude(Reduction::l2).scores(g.block),
               {(1 + r8 + r2 + 1) / 4, (2 + r8 + r2 + 2) / 4, (3 + 6 + 2 + 3) / 4.0, (4 + 6 + 2 + 1) / 4.0});

  // Group scores: the mean of each group's head scores.
  const Eigen::VectorXd groups = mhaprune::group_scores(g.block, mean);
  check_scores(groups, {(1.0 + 1.25) / 2, (1.75 + 1.625) / 2});
}

TEST_CASE("group_scores: multi-head blocks get the head scores back", "[criteria][gqa]") {
  Separate<float> a("layers.0", layout_a(), weights_a());
  const Eigen::VectorXd s = mhaprune::Magnitude().scores(a.block);
  CHECK(mhaprune::group_scores(a.block, s) == s);
}

// ---------------------------------------------------------------------------------------------------
// Layout independence: the same logical weights bound as separate row-major, separate column-major,
// transposed (in_out), qkv_concat (row-major and transposed), qkv_interleaved and qkv_grouped give the
// same numbers, and they agree with an oracle computed from reference::weight.

namespace {

/// Dyadic values k/8, |k| <= 16: exact in every scalar type, so sums are exact whatever their order.
Eigen::MatrixXd dyadic(Index rows, Index cols, unsigned seed) {
  Eigen::MatrixXd m(rows, cols);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (Index i = 0; i < rows; ++i) {
    for (Index j = 0; j < cols; ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      m(i, j) = static_cast<double>(static_cast<int>(x % 33) - 16) / 8.0;
    }
  }
  return m;
}

Weights random_weights(const mhaprune::HeadLayout& L, unsigned seed) {
  const Index d = L.head_dim(), D = L.model_dim();
  return {dyadic(L.heads() * d, D, seed), dyadic(L.kv_heads() * d, D, seed + 1),
          dyadic(L.kv_heads() * d, D, seed + 2), dyadic(D, L.heads() * d, seed + 3)};
}

/// Rows of the fused [Q|K|V] weight in the order of a segment list.
Eigen::MatrixXd fuse(const Weights& w, const std::vector<mhaprune::Segment>& segs, Index d) {
  Index rows = 0;
  for (const auto& s : segs) rows += s.width;
  Eigen::MatrixXd f(rows, w.q.cols());
  Index r = 0;
  for (const auto& s : segs) {
    const Eigen::MatrixXd& src = s.role == mhaprune::Role::query ? w.q
                                 : s.role == mhaprune::Role::key ? w.k
                                                                 : w.v;
    f.middleRows(r, d) = src.middleRows(s.unit * d, d);
    r += d;
  }
  return f;
}

/// Oracle: the reduction of f(W, G) over each (role, unit) slice of the logical matrices.
double reduce(const Eigen::MatrixXd& x, Reduction r) {
  switch (r) {
    case Reduction::mean:
      return x.mean();
    case Reduction::sum:
      return x.sum();
    case Reduction::max:
      return x.maxCoeff();
    case Reduction::l2:
      return x.norm();
  }
  return 0;
}

Eigen::VectorXd oracle(const mhaprune::HeadLayout& L, const Weights& w, const Weights& g, bool snip,
                       Reduction r) {
  const Index d = L.head_dim();
  auto f = [&](const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) -> Eigen::MatrixXd {
    return snip ? Eigen::MatrixXd(a.cwiseProduct(b).cwiseAbs()) : Eigen::MatrixXd(a.cwiseAbs());
  };
  const Eigen::MatrixXd q = f(w.q, g.q), k = f(w.k, g.k), v = f(w.v, g.v), o = f(w.o, g.o);
  Eigen::VectorXd s(L.heads());
  for (Index h = 0; h < L.heads(); ++h) {
    const Index kv = L.kv_head_of(h);
    s(h) = (reduce(q.middleRows(h * d, d), r) + reduce(k.middleRows(kv * d, d), r) +
            reduce(v.middleRows(kv * d, d), r) + reduce(o.middleCols(h * d, d), r)) /
           4;
  }
  return s;
}

/// Scores of magnitude and snip for every reduction, in one vector, for a block and its gradients.
template <typename S>
Eigen::VectorXd all_scores(const mhaprune::AttentionBlock<S>& block, const Evidence& ev) {
  Eigen::VectorXd out(8 * block.layout().heads());
  Index at = 0;
  for (Reduction r : mhaprune::all_reductions) {
    out.segment(at, block.layout().heads()) = mhaprune::Magnitude(r).scores(block);
    at += block.layout().heads();
    out.segment(at, block.layout().heads()) = mhaprune::Snip(r).scores(block, ev);
    at += block.layout().heads();
  }
  return out;
}

Eigen::VectorXd all_oracle(const mhaprune::HeadLayout& L, const Weights& w, const Weights& g) {
  Eigen::VectorXd out(8 * L.heads());
  Index at = 0;
  for (Reduction r : mhaprune::all_reductions) {
    out.segment(at, L.heads()) = oracle(L, w, g, false, r);
    at += L.heads();
    out.segment(at, L.heads()) = oracle(L, w, g, true, r);
    at += L.heads();
  }
  return out;
}

template <typename S, typename M>
M as(const Eigen::MatrixXd& m) {
  return m.cast<float>().cast<S>();
}

template <typename S>
void check_layouts(const mhaprune::HeadLayout& L, bool interleaved) {
  using namespace mhaprune;
  const Weights w = random_weights(L, 7), g = random_weights(L, 70);
  const Eigen::VectorXd expected = all_oracle(L, w, g);

  // Separate, row-major.
  Separate<S> sep("sep", L, w);
  const RowMat<S> gq = as<S, RowMat<S>>(g.q), gk = as<S, RowMat<S>>(g.k), gv = as<S, RowMat<S>>(g.v),
                  go = as<S, RowMat<S>>(g.o);
  const Eigen::VectorXd separate = all_scores(sep.block, separate_gradients(gq, gk, gv, go));
  CHECK(separate.isApprox(expected, 1e-6));

  // Separate, column-major.
  {
    ColMat<S> q = as<S, ColMat<S>>(w.q), k = as<S, ColMat<S>>(w.k), v = as<S, ColMat<S>>(w.v),
              o = as<S, ColMat<S>>(w.o);
    AttentionBlock<S> b("col", L);
    b.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));
    const ColMat<S> cq = gq, ck = gk, cv = gv, co = go;
    CHECK(all_scores(b, separate_gradients(cq, ck, cv, co)) == separate);
  }
  // Separate, transposed storage (GPT-2 Conv1D style), row-major [in, out].
  {
    RowMat<S> q = as<S, RowMat<S>>(w.q.transpose()), k = as<S, RowMat<S>>(w.k.transpose()),
              v = as<S, RowMat<S>>(w.v.transpose()), o = as<S, RowMat<S>>(w.o.transpose());
    AttentionBlock<S> b("t", L);
    b.add(layout::query(q).stored_as(Orientation::in_out))
        .add(layout::key(k).stored_as(Orientation::in_out))
        .add(layout::value(v).stored_as(Orientation::in_out))
        .add(layout::output(o).stored_as(Orientation::in_out));
    const RowMat<S> tq = gq.transpose(), tk = gk.transpose(), tv = gv.transpose(), to = go.transpose();
    CHECK(all_scores(b, separate_gradients(tq, tk, tv, to)) == separate);
  }
  // Fused [Q|K|V], row-major, and transposed.
  {
    const auto segs = layout::segments::qkv_concat(L);
    RowMat<S> qkv = as<S, RowMat<S>>(fuse(w, segs, L.head_dim())), o = as<S, RowMat<S>>(w.o);
    const RowMat<S> gqkv = as<S, RowMat<S>>(fuse(g, segs, L.head_dim()));
    AttentionBlock<S> b("cat", L);
    b.add(layout::qkv_concat(qkv)).add(layout::output(o));
    Evidence ev;
    ev.with_gradient("qkv.weight", gqkv).with_gradient("output.weight", go);
    CHECK(all_scores(b, ev) == separate);

    RowMat<S> qkv_t = qkv.transpose();
    const RowMat<S> gqkv_t = gqkv.transpose();
    AttentionBlock<S> bt("cat_t", L);
    bt.add(layout::qkv_concat(qkv_t).stored_as(Orientation::in_out)).add(layout::output(o));
    Evidence evt;
    evt.with_gradient("qkv.weight", gqkv_t).with_gradient("output.weight", go);
    CHECK(all_scores(bt, evt) == separate);
  }
  // Interleaved per head (MHA) or grouped per K/V head (GQA).
  {
    const auto segs = interleaved ? layout::segments::qkv_interleaved(L) : layout::segments::qkv_grouped(L);
    RowMat<S> qkv = as<S, RowMat<S>>(fuse(w, segs, L.head_dim())), o = as<S, RowMat<S>>(w.o);
    const RowMat<S> gqkv = as<S, RowMat<S>>(fuse(g, segs, L.head_dim()));
    AttentionBlock<S> b("fused", L);
    b.add(interleaved ? layout::qkv_interleaved(qkv) : layout::qkv_grouped(qkv)).add(layout::output(o));
    Evidence ev;
    ev.with_gradient("query_key_value.weight", gqkv).with_gradient("output.weight", go);
    CHECK(all_scores(b, ev) == separate);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("element-wise scores do not depend on the layout", "[criteria][layout]", float, double,
                   Eigen::half, Eigen::bfloat16) {
  SECTION("multi-head, H=3, d=2, D=5") { check_layouts<TestType>(mhaprune::HeadLayout::mha(3, 2, 5), true); }
  SECTION("grouped-query, H=4, H_kv=2, d=3, D=4") {
    check_layouts<TestType>(mhaprune::HeadLayout(4, 2, 3, 4), false);
  }
}

TEST_CASE("element-wise scores of a large block: float accumulation stays accurate",
          "[criteria][magnitude]") {
  // 3 heads of d=64 over D=3000: runs longer than one kernel block (1024), odd tails.
  const mhaprune::HeadLayout L = mhaprune::HeadLayout::mha(3, 64, 3000);
  Weights w;
  w.q = Eigen::MatrixXd::Random(192, 3000);
  w.k = Eigen::MatrixXd::Random(192, 3000);
  w.v = Eigen::MatrixXd::Random(192, 3000);
  w.o = Eigen::MatrixXd::Random(3000, 192);
  Separate<float> sep("big", L, w);
  const Weights wf{sep.q.cast<double>(), sep.k.cast<double>(), sep.v.cast<double>(), sep.o.cast<double>()};
  for (Reduction r : mhaprune::all_reductions) {
    INFO(mhaprune::to_string(r));
    CHECK(mhaprune::Magnitude(r).scores(sep.block).isApprox(oracle(L, wf, wf, false, r), 1e-6));
  }
}

TEST_CASE("element-wise numbers read one line at a time equal the bound block's, bit for bit",
          "[criteria][magnitude][by_line]") {
  // GQA, runs longer than one kernel block (D = 1500 > 1024), O's rows crossing every head.
  const mhaprune::HeadLayout L(4, 2, 8, 1500);
  Weights w;
  w.q = Eigen::MatrixXd::Random(32, 1500);
  w.k = Eigen::MatrixXd::Random(16, 1500);
  w.v = Eigen::MatrixXd::Random(16, 1500);
  w.o = Eigen::MatrixXd::Random(1500, 32);
  Separate<float> sep("lines", L, w);
  namespace seg = mhaprune::layout::segments;
  const std::vector<mhaprune::LinedWeight> lined = {
      {seg::single(L, mhaprune::Role::query), 32, 1500, true},
      {seg::single(L, mhaprune::Role::key), 16, 1500, true},
      {seg::single(L, mhaprune::Role::value), 16, 1500, true},
      {seg::single(L, mhaprune::Role::output), 1500, 32, false}};
  const RowMat<float>* mats[4] = {&sep.q, &sep.k, &sep.v, &sep.o};
  std::vector<float> line;  // a copy, so that nothing reads the bound matrices through the pointer
  std::vector<std::pair<std::size_t, Index>> asked;
  const auto line_of = [&](std::size_t t, Index r) -> const float* {
    asked.emplace_back(t, r);
    const RowMat<float>& m = *mats[t];
    line.assign(m.data() + r * m.cols(), m.data() + (r + 1) * m.cols());
    return line.data();
  };
  for (Reduction r : mhaprune::all_reductions) {
    INFO(mhaprune::to_string(r));
    const mhaprune::Magnitude c(r, mhaprune::RoleWeights{1.0, 0.5, 2.0, 1.5});
    asked.clear();
    const Eigen::VectorXd by_line = c.scores_by_line(L, lined, line_of);
    CHECK(by_line == c.scores(sep.block));  // exactly: same runs, same order of additions
    // Every line once, in ascending order within each weight.
    REQUIRE(asked.size() == 32 + 16 + 16 + 1500);
    CHECK(asked.front() == std::pair<std::size_t, Index>{0, 0});
    CHECK(asked.back() == std::pair<std::size_t, Index>{3, 1499});
    CHECK(std::is_sorted(asked.begin(), asked.end()));
  }
}

TEST_CASE("element-wise numbers by line: weights that do not cover the heads are refused",
          "[criteria][by_line]") {
  const mhaprune::HeadLayout L(4, 2, 8, 64);
  namespace seg = mhaprune::layout::segments;
  std::vector<float> zeros(64, 0.0f);
  const auto line_of = [&](std::size_t, Index) -> const float* { return zeros.data(); };
  std::vector<mhaprune::LinedWeight> lined = {{seg::single(L, mhaprune::Role::query), 32, 64, true},
                                              {seg::single(L, mhaprune::Role::key), 16, 64, true},
                                              {seg::single(L, mhaprune::Role::value), 16, 64, true}};
  const mhaprune::Magnitude c;
  CHECK_THROWS_MATCHES(c.scores_by_line(L, lined, line_of), mhaprune::shape_error,
                       Catch::Matchers::Message("magnitude: the output weight is missing for unit 0"));
  lined.push_back({seg::single(L, mhaprune::Role::output), 64, 31, false});
  CHECK_THROWS_MATCHES(c.scores_by_line(L, lined, line_of), mhaprune::shape_error,
                       Catch::Matchers::Message("magnitude: lined weight 3 of 64 lines of 31 elements: its "
                                                "segments add up to 32 along the head axis, which has 31"));
  lined.back().length = 32;
  lined.push_back(lined[1]);
  CHECK_THROWS_MATCHES(
      c.scores_by_line(L, lined, line_of), mhaprune::shape_error,
      Catch::Matchers::Message("magnitude: the key weight is given more than once for unit 0"));
  lined.pop_back();
  CHECK(c.scores_by_line(L, lined, line_of).size() == 4);
}

}  // namespace test_criteria_element_wise
