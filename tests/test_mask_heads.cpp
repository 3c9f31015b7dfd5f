// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// mask_heads (soft removal): on small random blocks, MHA and GQA, separate and fused layouts, with biases,
// masking zeroes exactly the Q rows, Q bias entries and O columns of the masked heads and the K/V rows
// and bias entries of fully masked groups, nothing else; the masked block's reference forward equals the
// original's with AttentionOptions::mask, and the forward after remove_heads of the same heads. A mask
// of the wrong length throws and changes nothing.
#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <mhaprune/core/mask_heads.hpp>
#include <mhaprune/mhaprune.hpp>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace test_mask_heads {

using mhaprune::Axis;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::Orientation;

namespace {

enum class Kind { separate, concat, grouped, concat_in_out };

const char* name_of(Kind k) {
  switch (k) {
    case Kind::separate:
      return "separate Q/K/V with ALiBi slopes and sinks";
    case Kind::concat:
      return "fused [Q|K|V], row-major";
    case Kind::grouped:
      return "fused per group [q..q,k,v], row-vector bias";
    case Kind::concat_in_out:
      return "fused [Q|K|V] stored [in, out], O stored [in, out]";
  }
  return "?";
}

template <typename S>
double as_double(S x) {
  if constexpr (std::is_floating_point_v<S>) {
    return static_cast<double>(x);
  } else {
    return static_cast<double>(static_cast<float>(x));
  }
}

/// Who owns line `i` of a tensor's head axis: a query head, a key/value head, or nobody (never zeroed).
struct Owner {
  enum { query, kv, none } who;
  Index unit;
};

/// One tensor of a fixture, read back as double in its logical shape.
struct Part {
  std::string name;
  Eigen::MatrixXd value;
  Axis head_axis;
  std::function<Owner(Index)> owner;
};

/// A block over its own random tensors. Two fixtures made with the same arguments hold the same values.
template <typename Scalar>
class Fixture {
 public:
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using RowMat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

  Fixture(Kind kind, const HeadLayout& layout, unsigned seed)
      : kind_(kind), L(layout), block("attn", layout) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    auto fill = [&](auto& m, Index rows, Index cols) {
      m.resize(rows, cols);
      for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < cols; ++j) m(i, j) = Scalar(static_cast<float>(u(rng)));
    };
    const Index H = L.heads(), Hkv = L.kv_heads(), d = L.head_dim(), D = L.model_dim();
    const Index W = (H + 2 * Hkv) * d;
    fill(bo, D, 1);
    switch (kind) {
      case Kind::separate:
        fill(q, H * d, D);
        fill(k, Hkv * d, D);
        fill(v, Hkv * d, D);
        fill(o, D, H * d);
        fill(bq, H * d, 1);
        fill(bk, Hkv * d, 1);
        fill(bv, Hkv * d, 1);
        fill(slopes, H, 1);
        fill(sinks, H, 1);
        slopes = slopes.cwiseAbs();
        block.add(mhaprune::layout::query(q))
            .add(mhaprune::layout::key(k))
            .add(mhaprune::layout::value(v))
            .add(mhaprune::layout::output(o));
        block.add(mhaprune::layout::query_bias(bq))
            .add(mhaprune::layout::key_bias(bk))
            .add(mhaprune::layout::value_bias(bv));
        block.add(mhaprune::layout::alibi_slopes(slopes)).add(mhaprune::layout::attention_sinks(sinks));
        break;
      case Kind::concat:
        fill(qkv, W, D);
        fill(bqkv, W, 1);
        fill(o_rm, D, H * d);
        block.add(mhaprune::layout::qkv_concat(qkv))
            .add(mhaprune::layout::qkv_concat_bias(bqkv))
            .add(mhaprune::layout::output(o_rm));
        break;
      case Kind::grouped:
        fill(qkv, W, D);
        fill(bqkv_row, 1, W);
        fill(o, D, H * d);
        block.add(mhaprune::layout::qkv_grouped(qkv))
            .add(mhaprune::layout::qkv_grouped_bias(bqkv_row))
            .add(mhaprune::layout::output(o));
        break;
      case Kind::concat_in_out:
        fill(qkv_io, D, W);
        fill(bqkv, W, 1);
        fill(o_io, H * d, D);
        block.add(mhaprune::layout::qkv_concat(qkv_io).stored_as(Orientation::in_out))
            .add(mhaprune::layout::qkv_concat_bias(bqkv))
            .add(mhaprune::layout::output(o_io).stored_as(Orientation::in_out));
        break;
    }
    block.add(mhaprune::layout::output_bias(bo));
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  /// Every tensor with the owner of each line of its head axis, written from the layouts' documentation.
  std::vector<Part> parts() const {
    const Index H = L.heads(), Hkv = L.kv_heads(), d = L.head_dim(), r = L.group_size();
    auto query = [d](Index i) { return Owner{Owner::query, i / d}; };
    auto kv = [d](Index i) { return Owner{Owner::kv, i / d}; };
    auto none = [](Index) { return Owner{Owner::none, -1}; };
    auto concat = [=](Index i) {
      if (i < H * d) return Owner{Owner::query, i / d};
      return Owner{Owner::kv, ((i - H * d) % (Hkv * d)) / d};
    };
    auto grouped = [=](Index i) {
      const Index per = (r + 2) * d, g = i / per, offset = i % per;
      if (offset < r * d) return Owner{Owner::query, g * r + offset / d};
      return Owner{Owner::kv, g};
    };
    std::vector<Part> p;
    auto add = [&](const char* name, const auto& m, Axis axis, std::function<Owner(Index)> owner) {
      Eigen::MatrixXd value(m.rows(), m.cols());
      for (Index i = 0; i < m.rows(); ++i)
        for (Index j = 0; j < m.cols(); ++j) value(i, j) = as_double(m(i, j));
      p.push_back({name, std::move(value), axis, std::move(owner)});
    };
    switch (kind_) {
      case Kind::separate:
        add("q", q, Axis::rows, query);
        add("k", k, Axis::rows, kv);
        add("v", v, Axis::rows, kv);
        add("o", o, Axis::cols, query);
        add("bq", bq, Axis::rows, query);
        add("bk", bk, Axis::rows, kv);
        add("bv", bv, Axis::rows, kv);
        add("slopes", slopes, Axis::rows, none);
        add("sinks", sinks, Axis::rows, none);
        break;
      case Kind::concat:
        add("qkv", qkv, Axis::rows, concat);
        add("bqkv", bqkv, Axis::rows, concat);
        add("o", o_rm, Axis::cols, query);
        break;
      case Kind::grouped:
        add("qkv", qkv, Axis::rows, grouped);
        add("bqkv", bqkv_row, Axis::cols, grouped);
        add("o", o, Axis::cols, query);
        break;
      case Kind::concat_in_out:
        add("qkv", qkv_io, Axis::cols, concat);
        add("bqkv", bqkv, Axis::rows, concat);
        add("o", o_io, Axis::rows, query);
        break;
    }
    add("bo", bo, Axis::rows, none);
    return p;
  }

 private:
  Kind kind_;

 public:
  HeadLayout L;
  Mat q, k, v, o, qkv_io, o_io;
  RowMat qkv, o_rm;
  Vec bq, bk, bv, bqkv, bo, slopes, sinks;
  RowVec bqkv_row;
  mhaprune::AttentionBlock<Scalar> block;
};

HeadMask mask_of(Index heads, const std::vector<Index>& removed) {
  HeadMask m(heads);
  for (Index h : removed) m.remove(h);
  return m;
}

bool group_masked(const HeadLayout& L, const HeadMask& m, Index g) {
  for (Index h = g * L.group_size(); h < (g + 1) * L.group_size(); ++h)
    if (m.keeps(h)) return false;
  return true;
}

/// What remove_heads accepts: not every head, and the same number left in every surviving group.
bool removable(const HeadLayout& L, const HeadMask& m) {
  if (m.removed_count() == L.heads()) return false;
  Index per = -1;
  for (Index g = 0; g < L.kv_heads(); ++g) {
    Index left = 0;
    for (Index h = g * L.group_size(); h < (g + 1) * L.group_size(); ++h) left += m.keeps(h) ? 1 : 0;
    if (left == 0) continue;
    if (per >= 0 && left != per) return false;
    per = left;
  }
  return true;
}

/// The parts as they must be after masking: the masked owners' lines zero, all else as before.
std::vector<Part> expected_after(std::vector<Part> parts, const HeadLayout& L, const HeadMask& m) {
  for (Part& p : parts) {
    const Index lines = p.head_axis == Axis::rows ? p.value.rows() : p.value.cols();
    for (Index i = 0; i < lines; ++i) {
      const Owner who = p.owner(i);
      const bool zero = (who.who == Owner::query && !m.keeps(who.unit)) ||
                        (who.who == Owner::kv && group_masked(L, m, who.unit));
      if (!zero) continue;
      if (p.head_axis == Axis::rows) {
        p.value.row(i).setZero();
      } else {
        p.value.col(i).setZero();
      }
    }
  }
  return parts;
}

void check_same(const std::vector<Part>& got, const std::vector<Part>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("tensor " << got[i].name);
    REQUIRE(got[i].value.rows() == want[i].value.rows());
    REQUIRE(got[i].value.cols() == want[i].value.cols());
    CHECK((got[i].value.array() == want[i].value.array()).all());
  }
}

double max_abs_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return (a - b).cwiseAbs().maxCoeff();
}

}  // namespace

TEMPLATE_TEST_CASE("mask_heads: zeroes exactly the masked heads and forwards like the mask and removal",
                   "[mask]", float, double, Eigen::bfloat16) {
  struct Setup {
    HeadLayout layout;
    std::vector<std::vector<Index>> masks;
  };
  const Setup setups[] = {
      {HeadLayout::mha(4, 3, 7), {{1, 3}, {0}, {}, {0, 1, 2}}},
      // Groups of 3: one head (ragged), one per group, a whole group, a group and one more, the last group.
      {HeadLayout(6, 2, 2, 5), {{4}, {1, 4}, {0, 1, 2}, {0, 1, 2, 4}, {3, 4, 5}}},
  };
  std::mt19937 rng(99);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  int removal_compared = 0;

  for (const Setup& s : setups) {
    const HeadLayout& L = s.layout;
    Eigen::MatrixXd x(5, L.model_dim());
    for (Index i = 0; i < x.size(); ++i) x(i) = u(rng);
    for (Kind kind : {Kind::separate, Kind::concat, Kind::grouped, Kind::concat_in_out}) {
      for (const auto& removed : s.masks) {
        const HeadMask mask = mask_of(L.heads(), removed);
        INFO(name_of(kind) << ", H=" << L.heads() << ", H_kv=" << L.kv_heads() << ", masked "
                           << Catch::Detail::stringify(removed));
        const unsigned seed = 1234;
        Fixture<TestType> original(kind, L, seed), masked(kind, L, seed);
        const std::vector<Part> before = masked.parts();

        mhaprune::mask_heads(masked.block, mask);
        check_same(masked.parts(), expected_after(before, L, mask));
        // Soft removal: shapes, layout and ids stay.
        CHECK(masked.block.layout() == L);
        CHECK(masked.block.head_ids() == original.block.head_ids());
        CHECK(masked.block.kv_head_ids() == original.block.kv_head_ids());

        for (bool causal : {false, true}) {
          INFO("causal " << causal);
          mhaprune::reference::AttentionOptions plain, with_mask;
          plain.causal = with_mask.causal = causal;
          with_mask.mask = mask;
          const Eigen::MatrixXd y_full = mhaprune::reference::attention(x, original.block, plain);
          const Eigen::MatrixXd y_option = mhaprune::reference::attention(x, original.block, with_mask);
          const Eigen::MatrixXd y_masked = mhaprune::reference::attention(x, masked.block, plain);
          CHECK(max_abs_diff(y_masked, y_option) <= 1e-12);
          if (!removed.empty()) CHECK(max_abs_diff(y_full, y_option) > 1e-6);  // the mask does something

          if (removable(L, mask)) {
            Fixture<TestType> cut(kind, L, seed);
            mhaprune::remove_heads(cut.block, mask);
            CHECK(cut.block.layout().heads() == L.heads() - static_cast<Index>(removed.size()));
            const Eigen::MatrixXd y_removed = mhaprune::reference::attention(x, cut.block, plain);
            CHECK(max_abs_diff(y_masked, y_removed) <= 1e-12);
            ++removal_compared;
          }
        }
      }
    }
  }
  CHECK(removal_compared == 2 * 4 * (4 + 4));  // causal or not, 4 layouts, removable masks
}

TEMPLATE_TEST_CASE("mask_heads: masking every head leaves only O's bias", "[mask]", float, double) {
  for (Kind kind : {Kind::separate, Kind::grouped}) {
    INFO(name_of(kind));
    const HeadLayout L(4, 2, 2, 6);
    Fixture<TestType> f(kind, L, 5);
    const HeadMask all = mask_of(4, {0, 1, 2, 3});
    const std::vector<Part> before = f.parts();
    mhaprune::mask_heads(f.block, all);
    check_same(f.parts(), expected_after(before, L, all));
    // Q, K, V and O are all zero now (only O's bias and the extras are left).
    for (const Part& p : f.parts())
      if (p.name != "bo" && p.name != "slopes" && p.name != "sinks") CHECK(p.value.isZero(0.0));

    Eigen::MatrixXd x = Eigen::MatrixXd::Constant(3, 6, 0.5);
    x(1, 2) = -1.0;
    const Eigen::MatrixXd y = mhaprune::reference::attention(x, f.block);
    Eigen::MatrixXd bias_only(3, 6);
    for (Index i = 0; i < 3; ++i)
      for (Index j = 0; j < 6; ++j) bias_only(i, j) = as_double(f.bo(j));
    CHECK(max_abs_diff(y, bias_only) <= 1e-12);
  }
}

TEMPLATE_TEST_CASE("mask_heads: a mask of the wrong length throws and changes nothing", "[mask][errors]",
                   float, double) {
  for (Kind kind : {Kind::separate, Kind::concat, Kind::grouped, Kind::concat_in_out}) {
    INFO(name_of(kind));
    const HeadLayout L(6, 2, 2, 5);
    Fixture<TestType> f(kind, L, 17);
    const std::vector<Part> before = f.parts();
    for (Index length : {5, 7, 0}) {
      HeadMask wrong(length);
      if (length > 0) wrong.remove(0);
      try {
        mhaprune::mask_heads(f.block, wrong);
        FAIL("no exception for a mask of " << length << " entries");
      } catch (const mhaprune::head_id_error& e) {
        CHECK(std::string(e.what()) == "block \"attn\": the head mask has " + std::to_string(length) +
                                           " entries, the block has 6 heads");
      }
      check_same(f.parts(), before);
      CHECK(f.block.layout() == L);
    }
  }
}

TEST_CASE("mask_heads: a tensor changed behind the block's back throws and changes nothing",
          "[mask][errors]") {
  Fixture<float> f(Kind::separate, HeadLayout::mha(4, 2, 6), 3);
  const Eigen::MatrixXf q = f.q;
  f.o.resize(6, 7);  // O no longer matches the layout
  CHECK_THROWS_AS(mhaprune::mask_heads(f.block, mask_of(4, {1})), mhaprune::shape_error);
  CHECK((f.q.array() == q.array()).all());
}

}  // namespace test_mask_heads
