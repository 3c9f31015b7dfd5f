// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// TensorRef/bind over every storage, set_shape's shrink semantics, and detail::compact_axis against
// matrices written out by hand, for both storage orders and both axes.

#include <catch2/catch.hpp>
#include <cstring>
#include <mhaprune/mhaprune.hpp>
#include <random>
#include <vector>

#include "support/random_block.hpp"

namespace test_tensor_ref {

// Sanitizers replace malloc: their realloc always moves, so only a plain glibc build can show that
// shrinking an owning matrix keeps its buffer.
#if defined(__SANITIZE_ADDRESS__)
#define MHAPRUNE_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define MHAPRUNE_TEST_SANITIZED 1
#endif
#endif
#if defined(__GLIBC__) && !defined(MHAPRUNE_TEST_SANITIZED)
#define MHAPRUNE_TEST_REALLOC_SHRINKS_IN_PLACE 1
#endif

namespace {

using mhaprune::Axis;
using mhaprune::Index;
using mhaprune::IndexRun;
using mhaprune::MatrixBuffer;
using mhaprune::StorageOrder;
using mhaprune_test::from_double;

template <typename S>
using RowMajor = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using ColMajor = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// Element `k` of the buffer holds `k`: which elements survive a move is then visible.
template <typename M>
void fill_iota(M& m) {
  for (Index k = 0; k < m.size(); ++k) m.data()[k] = from_double<typename M::Scalar>(static_cast<double>(k));
}

template <typename S>
double value(S x) {
  return mhaprune::detail::to_double(x);
}

/// `m` equals `expected` (built by hand, as doubles) element for element, exactly.
template <typename M>
bool equals(const M& m, const Eigen::MatrixXd& expected) {
  if (m.rows() != expected.rows() || m.cols() != expected.cols()) return false;
  for (Index i = 0; i < m.rows(); ++i)
    for (Index j = 0; j < m.cols(); ++j)
      if (value(m(i, j)) != expected(i, j)) return false;
  return true;
}

/// The 4x5 matrix every compaction test starts from: element (i, j) is 10*i + j.
template <typename M>
M labeled_4x5() {
  M m(4, 5);
  for (Index i = 0; i < 4; ++i)
    for (Index j = 0; j < 5; ++j) m(i, j) = from_double<typename M::Scalar>(10.0 * i + j);
  return m;
}

Eigen::MatrixXd by_hand(std::initializer_list<std::initializer_list<double>> rows) {
  Eigen::MatrixXd m(static_cast<Index>(rows.size()), static_cast<Index>(rows.begin()->size()));
  Index i = 0;
  for (const auto& row : rows) {
    Index j = 0;
    for (double v : row) m(i, j++) = v;
    ++i;
  }
  return m;
}

}  // namespace

TEST_CASE("bindable types", "[tensor_ref]") {
  using mhaprune::is_bindable_v;
  STATIC_REQUIRE(is_bindable_v<Eigen::MatrixXf>);
  STATIC_REQUIRE(is_bindable_v<RowMajor<double>>);
  STATIC_REQUIRE(is_bindable_v<Eigen::VectorXd>);
  STATIC_REQUIRE(is_bindable_v<Eigen::RowVectorXf>);
  STATIC_REQUIRE(is_bindable_v<ColMajor<Eigen::half>>);
  STATIC_REQUIRE(is_bindable_v<RowMajor<Eigen::bfloat16>>);
  STATIC_REQUIRE(is_bindable_v<Eigen::Map<Eigen::MatrixXf>>);
  STATIC_REQUIRE(is_bindable_v<Eigen::Map<RowMajor<float>>>);
  STATIC_REQUIRE(is_bindable_v<Eigen::Map<Eigen::VectorXd, Eigen::Aligned16>>);
  // Fixed sizes cannot shrink; strided or read-only Maps, blocks and Refs cannot be compacted in place.
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Matrix4f>);
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Matrix<float, Eigen::Dynamic, 3>>);
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, 0, 8, 8>>);
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Map<const Eigen::MatrixXf>>);
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Map<Eigen::MatrixXf, 0, Eigen::OuterStride<>>>);
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Block<Eigen::MatrixXf>>);
  STATIC_REQUIRE_FALSE(is_bindable_v<Eigen::Ref<Eigen::MatrixXf>>);
  STATIC_REQUIRE_FALSE(is_bindable_v<MatrixBuffer<float>>);  // bound by its own overload

  const mhaprune::TensorRef<float> unbound;
  REQUIRE_FALSE(unbound.bound());
}

TEMPLATE_TEST_CASE("bind reads an owning matrix at each use", "[tensor_ref]", float, double, Eigen::half,
                   Eigen::bfloat16) {
  SECTION("row-major") {
    RowMajor<TestType> m(3, 4);
    const auto ref = mhaprune::bind(m);
    REQUIRE(ref.bound());
    REQUIRE(ref.object() == &m);
    REQUIRE(ref.data() == m.data());
    REQUIRE(ref.rows() == 3);
    REQUIRE(ref.cols() == 4);
    REQUIRE(ref.size() == 12);
    REQUIRE(ref.extent(Axis::rows) == 3);
    REQUIRE(ref.extent(Axis::cols) == 4);
    REQUIRE(ref.capacity() == 12);
    REQUIRE(ref.order() == StorageOrder::row_major);
    REQUIRE(std::string(ref.storage()) == "Eigen::Matrix");
    // The handle holds no copy of the shape: a caller's resize shows at once.
    m.resize(5, 2);
    REQUIRE(ref.rows() == 5);
    REQUIRE(ref.cols() == 2);
    REQUIRE(ref.data() == m.data());
  }
  SECTION("column-major") {
    ColMajor<TestType> m(2, 5);
    const auto ref = mhaprune::bind(m);
    REQUIRE(ref.order() == StorageOrder::col_major);
    REQUIRE(ref.rows() == 2);
    REQUIRE(ref.cols() == 5);
    REQUIRE(ref.capacity() == 10);
    REQUIRE(ref.data() == m.data());
  }
  SECTION("vectors") {
    Eigen::Matrix<TestType, Eigen::Dynamic, 1> v(6);
    Eigen::Matrix<TestType, 1, Eigen::Dynamic> r(7);
    const auto vr = mhaprune::bind(v);
    const auto rr = mhaprune::bind(r);
    REQUIRE(vr.rows() == 6);
    REQUIRE(vr.cols() == 1);
    REQUIRE(vr.order() == StorageOrder::col_major);
    REQUIRE(rr.rows() == 1);
    REQUIRE(rr.cols() == 7);
    REQUIRE(rr.order() == StorageOrder::row_major);
  }
}

TEMPLATE_TEST_CASE("bind reads a Map and a MatrixBuffer", "[tensor_ref]", float, double, Eigen::half,
                   Eigen::bfloat16) {
  std::vector<TestType> memory(20);
  SECTION("Map") {
    Eigen::Map<ColMajor<TestType>> map(memory.data(), 3, 4);
    const auto ref = mhaprune::bind(map);
    REQUIRE(ref.object() == &map);
    REQUIRE(ref.data() == memory.data());
    REQUIRE(ref.rows() == 3);
    REQUIRE(ref.cols() == 4);
    // A Map knows only its own extent, not how large the caller's buffer is.
    REQUIRE(ref.capacity() == 12);
    REQUIRE(ref.order() == StorageOrder::col_major);
    REQUIRE(std::string(ref.storage()) == "Eigen::Map");
    Eigen::Map<RowMajor<TestType>> row_map(memory.data(), 4, 5);
    REQUIRE(mhaprune::bind(row_map).order() == StorageOrder::row_major);
    Eigen::Map<Eigen::Matrix<TestType, 1, Eigen::Dynamic>> vec_map(memory.data(), 9);
    REQUIRE(mhaprune::bind(vec_map).cols() == 9);
    REQUIRE(mhaprune::bind(vec_map).rows() == 1);
  }
  SECTION("MatrixBuffer") {
    MatrixBuffer<TestType> buffer{memory.data(), 20, 3, 5, StorageOrder::col_major};
    const auto ref = mhaprune::bind(buffer);
    REQUIRE(ref.object() == &buffer);
    REQUIRE(ref.data() == memory.data());
    REQUIRE(ref.rows() == 3);
    REQUIRE(ref.cols() == 5);
    REQUIRE(ref.capacity() == 20);
    REQUIRE(ref.order() == StorageOrder::col_major);
    REQUIRE(std::string(ref.storage()) == "MatrixBuffer");
    buffer.order = StorageOrder::row_major;
    buffer.rows = 2;
    REQUIRE(ref.order() == StorageOrder::row_major);
    REQUIRE(ref.rows() == 2);
    // The element type is named as Eigen names it, so layout adapters accept buffers.
    STATIC_REQUIRE(std::is_same_v<typename MatrixBuffer<TestType>::Scalar, TestType>);
  }
}

TEMPLATE_TEST_CASE("set_shape keeps an owning matrix's leading elements", "[tensor_ref][set_shape]", float,
                   double, Eigen::half, Eigen::bfloat16) {
  auto check = [](auto m, Index r, Index c) {
    INFO("from [" << m.rows() << ", " << m.cols() << "] to [" << r << ", " << c << "]");
    fill_iota(m);
    const auto* before = m.data();
    mhaprune::bind(m).set_shape(r, c);
    REQUIRE(m.rows() == r);
    REQUIRE(m.cols() == c);
    for (Index k = 0; k < r * c; ++k) REQUIRE(value(m.data()[k]) == static_cast<double>(k));
#ifdef MHAPRUNE_TEST_REALLOC_SHRINKS_IN_PLACE
    // A smaller realloc is satisfied in place: no full-size temporary, no copy.
    CHECK(m.data() == before);
#else
    (void)before;
#endif
  };
  check(RowMajor<TestType>(4, 5), 3, 5);  // fewer rows: the rows' prefix
  check(RowMajor<TestType>(4, 5), 4, 3);  // fewer columns: compact_axis already packed the prefix
  check(ColMajor<TestType>(4, 5), 4, 2);
  check(ColMajor<TestType>(4, 5), 1, 5);
  check(RowMajor<TestType>(6, 1), 2, 1);
  check(ColMajor<TestType>(1, 6), 1, 4);
  check(Eigen::Matrix<TestType, Eigen::Dynamic, 1>(6), 3, 1);
  check(Eigen::Matrix<TestType, 1, Eigen::Dynamic>(6), 1, 5);

  SECTION("the same shape leaves the matrix alone") {
    RowMajor<TestType> m(3, 3);
    fill_iota(m);
    const TestType* before = m.data();
    mhaprune::bind(m).set_shape(3, 3);
    REQUIRE(m.data() == before);
    REQUIRE(m.rows() == 3);
    REQUIRE(value(m(2, 2)) == 8.0);
  }
}

TEMPLATE_TEST_CASE("set_shape re-seats a Map and reshapes a MatrixBuffer in place", "[tensor_ref][set_shape]",
                   float, double, Eigen::half, Eigen::bfloat16) {
  std::vector<TestType> memory(14);
  for (std::size_t k = 0; k < memory.size(); ++k) memory[k] = from_double<TestType>(static_cast<double>(k));
  const std::vector<TestType> original = memory;
  SECTION("Map") {
    Eigen::Map<RowMajor<TestType>> map(memory.data(), 3, 4);
    const auto ref = mhaprune::bind(map);
    ref.set_shape(2, 3);
    REQUIRE(map.rows() == 2);
    REQUIRE(map.cols() == 3);
    REQUIRE(map.data() == memory.data());
    REQUIRE(ref.capacity() == 6);
    REQUIRE(value(map(1, 2)) == 5.0);
    Eigen::Map<Eigen::Matrix<TestType, Eigen::Dynamic, 1>> vec(memory.data(), 10);
    mhaprune::bind(vec).set_shape(7, 1);
    REQUIRE(vec.size() == 7);
    REQUIRE(vec.data() == memory.data());
  }
  SECTION("MatrixBuffer") {
    MatrixBuffer<TestType> buffer{memory.data(), 14, 3, 4, StorageOrder::col_major};
    mhaprune::bind(buffer).set_shape(3, 2);
    REQUIRE(buffer.rows == 3);
    REQUIRE(buffer.cols == 2);
    REQUIRE(buffer.capacity == 14);
    REQUIRE(buffer.data == memory.data());
  }
  // Nothing moves: the data was already compacted, set_shape only records the shape.
  REQUIRE(std::memcmp(memory.data(), original.data(), memory.size() * sizeof(TestType)) == 0);
}

TEMPLATE_TEST_CASE("compact_axis packs kept runs at the front, both orders and axes", "[tensor_ref][compact]",
                   float, double, Eigen::half, Eigen::bfloat16) {
  using mhaprune::detail::compact_axis;
  const std::vector<IndexRun> row_runs = {{0, 1}, {2, 4}};  // keep rows 0, 2, 3
  const std::vector<IndexRun> col_runs = {{1, 3}, {4, 5}};  // keep columns 1, 2, 4
  const Eigen::MatrixXd rows_kept = by_hand({{0, 1, 2, 3, 4}, {20, 21, 22, 23, 24}, {30, 31, 32, 33, 34}});
  const Eigen::MatrixXd cols_kept = by_hand({{1, 2, 4}, {11, 12, 14}, {21, 22, 24}, {31, 32, 34}});

  SECTION("row-major, rows (whole lines)") {
    auto m = labeled_4x5<RowMajor<TestType>>();
    REQUIRE(compact_axis(m.data(), 4, 5, StorageOrder::row_major, Axis::rows, row_runs) == 3);
    mhaprune::bind(m).set_shape(3, 5);
    REQUIRE(equals(m, rows_kept));
  }
  SECTION("row-major, columns (inside every line)") {
    auto m = labeled_4x5<RowMajor<TestType>>();
    REQUIRE(compact_axis(m.data(), 4, 5, StorageOrder::row_major, Axis::cols, col_runs) == 3);
    mhaprune::bind(m).set_shape(4, 3);
    REQUIRE(equals(m, cols_kept));
  }
  SECTION("column-major, rows (inside every line)") {
    auto m = labeled_4x5<ColMajor<TestType>>();
    REQUIRE(compact_axis(m.data(), 4, 5, StorageOrder::col_major, Axis::rows, row_runs) == 3);
    mhaprune::bind(m).set_shape(3, 5);
    REQUIRE(equals(m, rows_kept));
  }
  SECTION("column-major, columns (whole lines)") {
    auto m = labeled_4x5<ColMajor<TestType>>();
    REQUIRE(compact_axis(m.data(), 4, 5, StorageOrder::col_major, Axis::cols, col_runs) == 3);
    mhaprune::bind(m).set_shape(4, 3);
    REQUIRE(equals(m, cols_kept));
  }
  SECTION("a MatrixBuffer: the result is at the buffer's front, nothing past the old data is written") {
    for (StorageOrder order : {StorageOrder::row_major, StorageOrder::col_major}) {
      INFO(mhaprune_test::to_string(order));
      const auto labeled = labeled_4x5<RowMajor<TestType>>();
      std::vector<TestType> memory(23, from_double<TestType>(-7.0));
      for (Index i = 0; i < 4; ++i)
        for (Index j = 0; j < 5; ++j)
          memory[static_cast<std::size_t>(order == StorageOrder::row_major ? i * 5 + j : j * 4 + i)] =
              labeled(i, j);
      MatrixBuffer<TestType> buffer{memory.data(), 23, 4, 5, order};
      REQUIRE(compact_axis(buffer.data, 4, 5, order, Axis::cols, col_runs) == 3);
      mhaprune::bind(buffer).set_shape(4, 3);
      Eigen::MatrixXd got(4, 3);
      for (Index i = 0; i < 4; ++i)
        for (Index j = 0; j < 3; ++j)
          got(i, j) = value(
              memory[static_cast<std::size_t>(order == StorageOrder::row_major ? i * 3 + j : j * 4 + i)]);
      REQUIRE(got == cols_kept);
      for (std::size_t k = 20; k < 23; ++k) REQUIRE(value(memory[k]) == -7.0);
    }
  }
  SECTION("edge runs: everything, a prefix, adjacent runs, the last line only") {
    auto m = labeled_4x5<RowMajor<TestType>>();
    REQUIRE(compact_axis(m.data(), 4, 5, StorageOrder::row_major, Axis::cols, {{0, 5}}) == 5);
    REQUIRE(equals(
        m, by_hand({{0, 1, 2, 3, 4}, {10, 11, 12, 13, 14}, {20, 21, 22, 23, 24}, {30, 31, 32, 33, 34}})));
    REQUIRE(compact_axis(m.data(), 4, 5, StorageOrder::row_major, Axis::rows, {{0, 2}}) == 2);
    mhaprune::bind(m).set_shape(2, 5);
    REQUIRE(equals(m, by_hand({{0, 1, 2, 3, 4}, {10, 11, 12, 13, 14}})));

    auto c = labeled_4x5<ColMajor<TestType>>();
    REQUIRE(compact_axis(c.data(), 4, 5, StorageOrder::col_major, Axis::rows, {{1, 2}, {2, 3}}) == 2);
    mhaprune::bind(c).set_shape(2, 5);
    REQUIRE(equals(c, by_hand({{10, 11, 12, 13, 14}, {20, 21, 22, 23, 24}})));

    auto l = labeled_4x5<ColMajor<TestType>>();
    REQUIRE(compact_axis(l.data(), 4, 5, StorageOrder::col_major, Axis::cols, {{4, 5}}) == 1);
    mhaprune::bind(l).set_shape(4, 1);
    REQUIRE(equals(l, by_hand({{4}, {14}, {24}, {34}})));
  }
}

TEMPLATE_TEST_CASE("compact_axis agrees with a plain gather on random runs", "[tensor_ref][compact]", float,
                   double, Eigen::half, Eigen::bfloat16) {
  std::mt19937 rng(Catch::rngSeed());
  for (int trial = 0; trial < 200; ++trial) {
    const Index rows = mhaprune_test::uniform_index(rng, 1, 9),
                cols = mhaprune_test::uniform_index(rng, 1, 9);
    const Axis axis = mhaprune_test::uniform_index(rng, 0, 1) ? Axis::rows : Axis::cols;
    const StorageOrder order =
        mhaprune_test::uniform_index(rng, 0, 1) ? StorageOrder::row_major : StorageOrder::col_major;
    const Index along = axis == Axis::rows ? rows : cols;
    std::vector<IndexRun> runs;
    std::vector<Index> kept;
    for (Index k = 0; k < along; ++k) {
      if (mhaprune_test::uniform_index(rng, 0, 2) == 0) continue;
      kept.push_back(k);
      if (!runs.empty() && runs.back().end == k) {
        ++runs.back().end;
      } else {
        runs.push_back({k, k + 1});
      }
    }
    if (kept.empty()) continue;
    INFO("trial " << trial << ": [" << rows << ", " << cols << "] " << mhaprune_test::to_string(order)
                  << " along " << (axis == Axis::rows ? "rows" : "columns") << ", " << kept.size()
                  << " kept");
    const Eigen::MatrixXd values = mhaprune_test::random_matrix(rng, rows, cols);
    mhaprune_test::Storage storage;
    storage.container = mhaprune_test::Container::buffer;
    storage.order = order;
    storage.slack = 2;
    mhaprune_test::TestTensor<TestType> t(values, storage);
    const Eigen::MatrixXd before = t.values();
    const Index nk = static_cast<Index>(kept.size());
    REQUIRE(mhaprune::detail::compact_axis(t.data(), rows, cols, order, axis, runs) == nk);
    auto& buffer = std::get<MatrixBuffer<TestType>>(t.object());
    mhaprune::bind(buffer).set_shape(axis == Axis::rows ? nk : rows, axis == Axis::rows ? cols : nk);
    Eigen::MatrixXd expected(buffer.rows, buffer.cols);
    for (Index i = 0; i < buffer.rows; ++i)
      for (Index j = 0; j < buffer.cols; ++j)
        expected(i, j) = axis == Axis::rows ? before(kept[static_cast<std::size_t>(i)], j)
                                            : before(i, kept[static_cast<std::size_t>(j)]);
    REQUIRE(t.values() == expected);
    REQUIRE(t.slack_untouched());
  }
}

}  // namespace test_tensor_ref
