// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// Test support for the pruner tests: a "model" of several attention blocks over tensors the test
/// owns, kept in a `std::vector<AttentionBlock<Scalar>>` as a user would keep them, plus oracles that
/// do not use mhaprune's scoring or segment code: magnitude scores computed straight from the
/// matrices, a byte-level snapshot for the strong guarantee, and the reference forward with a mask.
/// Header-only and independent of Catch.

#include <Eigen/Core>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mhaprune/mhaprune.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "weakest.hpp"

namespace pruner_test {

using mhaprune::HeadLayout;
using mhaprune::Index;

template <typename S>
using RowMatrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using ColMatrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <typename S>
using Vector = Eigen::Matrix<S, Eigen::Dynamic, 1>;

template <typename S>
S from_double(double v) {
  return S(static_cast<float>(v));
}
template <>
inline double from_double<double>(double v) {
  return v;
}

/// One block's tensors in PyTorch `Linear` orientation. Q and V are row-major, K and O column-major,
/// so that both storage orders go through every pruner path.
template <typename S>
struct Tensors {
  RowMatrix<S> q;
  ColMatrix<S> k;
  RowMatrix<S> v;
  ColMatrix<S> o;
  Vector<S> bq, bk, bv, bo;  ///< empty unless the model has biases
};

/// What a model block is: its name and head layout.
struct BlockSpec {
  std::string name;
  HeadLayout layout;
};

/// Blocks named `prefix0`, `prefix1`, ... all with layout `L`.
inline std::vector<BlockSpec> uniform_specs(std::size_t n, const HeadLayout& L,
                                            const std::string& prefix = "layers.") {
  std::vector<BlockSpec> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back({prefix + std::to_string(i), L});
  return out;
}

/// Several attention blocks over test-owned tensors. The tensors live on the heap, so the blocks
/// (held by value in `blocks`) can be moved around; a Model itself is neither copied nor moved.
template <typename S>
class Model {
 public:
  /// Values uniform in [-1, 1) from `std::mt19937(seed)`, drawn in a fixed order, so two models with
  /// the same specs and seed hold the same bits.
  Model(const std::vector<BlockSpec>& specs, std::uint32_t seed, bool biases = false) : specs_(specs) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (const BlockSpec& s : specs) {
      const HeadLayout& L = s.layout;
      auto t = std::make_unique<Tensors<S>>();
      const Index D = L.model_dim();
      fill(t->q, L.query_width(), D, rng, u);
      fill(t->k, L.kv_width(), D, rng, u);
      fill(t->v, L.kv_width(), D, rng, u);
      fill(t->o, D, L.query_width(), rng, u);
      if (biases) {
        fill(t->bq, L.query_width(), 1, rng, u);
        fill(t->bk, L.kv_width(), 1, rng, u);
        fill(t->bv, L.kv_width(), 1, rng, u);
        fill(t->bo, D, 1, rng, u);
      }
      tensors_.push_back(std::move(t));
    }
    bind_all();
  }

  /// A model over copies of `values`' current tensors, with blocks of their current layouts (and
  /// fresh head ids): the twin of a model whose weights changed but whose heads are all present.
  static std::unique_ptr<Model> copy_of(const Model& values) {
    return std::unique_ptr<Model>(new Model(values, 0));
  }

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  std::vector<mhaprune::AttentionBlock<S>> blocks;

  Tensors<S>& tensors(std::size_t i) { return *tensors_[i]; }
  const Tensors<S>& tensors(std::size_t i) const { return *tensors_[i]; }
  std::size_t size() const noexcept { return tensors_.size(); }
  bool has_biases() const { return tensors_.front()->bq.size() > 0; }

  /// Multiplies query head `h` of block `i` (its Q rows and O columns) by `f`; in a multi-head block
  /// also its K and V rows, so that its magnitude score is multiplied by `f`.
  void scale_head(std::size_t i, Index h, double f) {
    const HeadLayout& L = blocks[i].layout();
    const Index d = L.head_dim();
    Tensors<S>& t = *tensors_[i];
    scale(t.q.middleRows(h * d, d), f);
    scale(t.o.middleCols(h * d, d), f);
    if (L.kv_heads() == L.heads()) {
      scale(t.k.middleRows(h * d, d), f);
      scale(t.v.middleRows(h * d, d), f);
    }
  }

  /// Tensor elements, all blocks: what `BlockCost::parameters` must add up to.
  std::int64_t parameters(std::size_t i) const {
    const Tensors<S>& t = *tensors_[i];
    return t.q.size() + t.k.size() + t.v.size() + t.o.size() + t.bq.size() + t.bk.size() + t.bv.size() +
           t.bo.size();
  }
  /// Elements of the four projection weights, from the matrices themselves.
  std::int64_t weight_elements(std::size_t i) const {
    const Tensors<S>& t = *tensors_[i];
    return t.q.size() + t.k.size() + t.v.size() + t.o.size();
  }

 private:
  Model(const Model& values, int /*copy tag*/) : specs_(values.specs_) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      tensors_.push_back(std::make_unique<Tensors<S>>(values.tensors(i)));
      specs_[i].layout = values.blocks[i].layout();
    }
    bind_all();
  }

  template <typename M>
  static void fill(M& m, Index rows, Index cols, std::mt19937& rng,
                   std::uniform_real_distribution<double>& u) {
    m.resize(rows, cols);
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < cols; ++c) m(r, c) = from_double<S>(u(rng));
  }

  template <typename Block>
  static void scale(Block&& b, double f) {
    for (Index r = 0; r < b.rows(); ++r)
      for (Index c = 0; c < b.cols(); ++c) b(r, c) = from_double<S>(mhaprune::detail::to_double(b(r, c)) * f);
  }

  void bind_all() {
    namespace ml = mhaprune::layout;
    for (std::size_t i = 0; i < specs_.size(); ++i) {
      Tensors<S>& t = *tensors_[i];
      blocks.emplace_back(specs_[i].name, specs_[i].layout);
      auto& b = blocks.back();
      b.add(ml::query(t.q)).add(ml::key(t.k)).add(ml::value(t.v)).add(ml::output(t.o));
      if (t.bq.size() > 0) {
        b.add(ml::query_bias(t.bq))
            .add(ml::key_bias(t.bk))
            .add(ml::value_bias(t.bv))
            .add(ml::output_bias(t.bo));
      }
    }
  }

  std::vector<BlockSpec> specs_;
  std::vector<std::unique_ptr<Tensors<S>>> tensors_;
};

/// Mean of |x| over a matrix block, in double.
template <typename Derived>
double mean_abs(const Eigen::DenseBase<Derived>& m) {
  double s = 0.0;
  for (Index r = 0; r < m.rows(); ++r)
    for (Index c = 0; c < m.cols(); ++c) s += std::abs(mhaprune::detail::to_double(m.derived().coeff(r, c)));
  return s / static_cast<double>(m.rows() * m.cols());
}

/// The default criterion's scores, from the matrices: for each current query head h, the average of
/// mean |W| over its Q rows, its key/value head's K and V rows, and its O columns.
template <typename S>
Eigen::VectorXd magnitude_scores(const Tensors<S>& t, const HeadLayout& L) {
  const Index d = L.head_dim();
  Eigen::VectorXd s(L.heads());
  for (Index h = 0; h < L.heads(); ++h) {
    const Index g = h / L.group_size();
    s(h) = (mean_abs(t.q.middleRows(h * d, d)) + mean_abs(t.k.middleRows(g * d, d)) +
            mean_abs(t.v.middleRows(g * d, d)) + mean_abs(t.o.middleCols(h * d, d))) /
           4.0;
  }
  return s;
}

/// Every byte and shape of every tensor of a model, and each block's bookkeeping. Equal snapshots:
/// nothing changed, bit for bit.
struct Snapshot {
  std::vector<std::vector<unsigned char>> bytes;
  std::vector<Index> shapes;
  std::vector<std::vector<Index>> head_ids, kv_head_ids, bound;
  std::vector<Index> layouts;

  bool operator==(const Snapshot& o) const {
    return bytes == o.bytes && shapes == o.shapes && head_ids == o.head_ids && kv_head_ids == o.kv_head_ids &&
           bound == o.bound && layouts == o.layouts;
  }
  bool operator!=(const Snapshot& o) const { return !(*this == o); }
};

template <typename S>
Snapshot snapshot(const Model<S>& m) {
  Snapshot s;
  auto add = [&](const auto& x) {
    const auto* p = reinterpret_cast<const unsigned char*>(x.data());
    s.bytes.emplace_back(p, p + static_cast<std::size_t>(x.size()) * sizeof(S));
    s.shapes.push_back(x.rows());
    s.shapes.push_back(x.cols());
  };
  for (std::size_t i = 0; i < m.size(); ++i) {
    const Tensors<S>& t = m.tensors(i);
    add(t.q), add(t.k), add(t.v), add(t.o), add(t.bq), add(t.bk), add(t.bv), add(t.bo);
    const auto& b = m.blocks[i];
    s.head_ids.push_back(b.head_ids());
    s.kv_head_ids.push_back(b.kv_head_ids());
    const HeadLayout& L = b.layout();
    for (Index v : {L.heads(), L.kv_heads(), L.head_dim(), L.model_dim()}) s.layouts.push_back(v);
    for (const auto& bt : b.tensors()) {
      std::vector<Index> v{bt.rows, bt.cols};
      for (const auto& seg : bt.segments) {
        v.push_back(seg.unit);
        v.push_back(seg.width);
      }
      s.bound.push_back(std::move(v));
    }
  }
  return s;
}

/// A mask over `block`'s current heads that removes the heads of these original ids.
template <typename S>
mhaprune::HeadMask mask_of(const mhaprune::AttentionBlock<S>& block, const std::vector<Index>& removed_ids) {
  mhaprune::HeadMask m(block.layout().heads());
  for (Index id : removed_ids) m.remove(block.position_of(id));
  return m;
}

/// max |pruned(x) - twin(x) with `mask`|, by the reference forward.
template <typename S>
double forward_difference(const mhaprune::AttentionBlock<S>& pruned, const mhaprune::AttentionBlock<S>& twin,
                          const mhaprune::HeadMask& mask, const Eigen::MatrixXd& x) {
  mhaprune::reference::AttentionOptions masked;
  masked.mask = mask;
  const Eigen::MatrixXd a = mhaprune::reference::attention(x, pruned);
  const Eigen::MatrixXd b = mhaprune::reference::attention(x, twin, masked);
  return (a - b).cwiseAbs().maxCoeff();
}

/// A random `[tokens, D]` input.
inline Eigen::MatrixXd random_input(std::uint32_t seed, Index tokens, Index model_dim) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::MatrixXd x(tokens, model_dim);
  for (Index r = 0; r < tokens; ++r)
    for (Index c = 0; c < model_dim; ++c) x(r, c) = u(rng);
  return x;
}

/// The spec's removal order (support/weakest.hpp), here too so the pruner tests find it with the rest.
using mhaprune_test::weakest;

}  // namespace pruner_test
