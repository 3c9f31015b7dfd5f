// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Small blocks with hand-checkable weights for the criteria tests.
#pragma once

#include <Eigen/Core>
#include <initializer_list>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <utility>

namespace criteria_test {

using mhaprune::Index;

template <typename S>
using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using ColMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// A row-major matrix of S from rows of numbers.
template <typename S>
RowMat<S> mat(std::initializer_list<std::initializer_list<double>> rows) {
  RowMat<S> m(static_cast<Index>(rows.size()), static_cast<Index>(rows.begin()->size()));
  Index i = 0;
  for (const auto& r : rows) {
    Index j = 0;
    for (double v : r) m(i, j++) = S(static_cast<float>(v));
    ++i;
  }
  return m;
}

/// Logical Q, K, V, O in PyTorch Linear orientation (doubles), to build blocks and gradients from.
struct Weights {
  Eigen::MatrixXd q, k, v, o;
};

/// Separate row-major Q/K/V/O bound to a block. Not movable: the block points at the matrices.
template <typename S>
struct Separate {
  RowMat<S> q, k, v, o;
  mhaprune::AttentionBlock<S> block;

  Separate(std::string name, mhaprune::HeadLayout layout, const Weights& w)
      : q(w.q.cast<float>().cast<S>()),
        k(w.k.cast<float>().cast<S>()),
        v(w.v.cast<float>().cast<S>()),
        o(w.o.cast<float>().cast<S>()),
        block(std::move(name), layout) {
    block.add(mhaprune::layout::query(q))
        .add(mhaprune::layout::key(k))
        .add(mhaprune::layout::value(v))
        .add(mhaprune::layout::output(o));
  }
  Separate(const Separate&) = delete;
  Separate& operator=(const Separate&) = delete;
};

inline Eigen::MatrixXd dmat(std::initializer_list<std::initializer_list<double>> rows) {
  return mat<double>(rows);
}

/// Block "A": H = 2, d = 1, D = 2 (multi-head). Head h owns row h of Q, K, V and column h of O.
inline Weights weights_a() {
  return {dmat({{1, -2}, {3, 4}}), dmat({{0, 1}, {-1, 2}}), dmat({{2, 2}, {-3, 1}}), dmat({{1, 0}, {-2, 5}})};
}
/// Gradients of block A, same shapes.
inline Weights gradients_a() {
  return {dmat({{1, 1}, {0, -1}}), dmat({{2, 0}, {1, 1}}), dmat({{0, -1}, {1, 0}}), dmat({{1, 1}, {1, -1}})};
}
inline mhaprune::HeadLayout layout_a() { return mhaprune::HeadLayout::mha(2, 1, 2); }

/// Block "G": grouped-query, H = 4, H_kv = 2, d = 1, D = 2; query heads 0, 1 read K/V head 0, heads 2, 3
/// read K/V head 1.
inline Weights weights_g() {
  return {dmat({{1, 0}, {0, 2}, {3, 0}, {0, -4}}), dmat({{2, 2}, {0, -6}}), dmat({{1, 1}, {-2, 0}}),
          dmat({{1, 2, 0, 0}, {0, 0, 3, -1}})};
}
inline mhaprune::HeadLayout layout_g() { return mhaprune::HeadLayout(4, 2, 1, 2); }

/// Evidence with gradients for the four tensors of a `Separate` block (the matrices must outlive it).
template <typename M>
mhaprune::Evidence separate_gradients(const M& q, const M& k, const M& v, const M& o) {
  mhaprune::Evidence ev;
  ev.with_gradient("query.weight", q)
      .with_gradient("key.weight", k)
      .with_gradient("value.weight", v)
      .with_gradient("output.weight", o);
  return ev;
}

}  // namespace criteria_test
