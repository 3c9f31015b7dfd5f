// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Blocks with random weights, calibration over random inputs with the oracle forward, and output
// comparisons, for the compensation tests.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <mhaprune/calibration/activation_stats.hpp>
#include <mhaprune/compensation/compensate.hpp>
#include <mhaprune/layouts/fused_qkv.hpp>
#include <mhaprune/layouts/separate_qkv.hpp>
#include <mhaprune/reference/attention.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace test_compensation {

using mhaprune::Index;
template <typename S>
using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;

inline Eigen::MatrixXd randn(Index rows, Index cols, std::mt19937& rng, double sd = 1.0) {
  std::normal_distribution<double> n(0.0, sd);
  Eigen::MatrixXd m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = n(rng);
  return m;
}

/// Logical weights in double, PyTorch Linear orientation; empty biases are absent.
struct Weights {
  mhaprune::HeadLayout layout;
  Eigen::MatrixXd q, k, v, o;
  Eigen::VectorXd bv, bo;
};

inline Weights random_weights(mhaprune::HeadLayout L, unsigned seed, bool v_bias, bool o_bias) {
  std::mt19937 rng(seed);
  const Index D = L.model_dim();
  const double s = 1.0 / std::sqrt(static_cast<double>(D));
  Weights w{L,
            randn(L.query_width(), D, rng, s),
            randn(L.kv_width(), D, rng, s),
            randn(L.kv_width(), D, rng, s),
            randn(D, L.query_width(), rng, s),
            {},
            {}};
  if (v_bias) w.bv = Eigen::VectorXd::Zero(L.kv_width());
  if (o_bias) w.bo = randn(D, 1, rng, 0.1).col(0);
  return w;
}

/// Multi-head attention: makes head r's output exactly out_k · Mᵀ (+ c, when c is given and the
/// weights have a V bias), by giving it head k's query and key rows and M times its value rows.
inline void make_dependent(Weights& w, Index r, Index k, const Eigen::MatrixXd& M,
                           const Eigen::VectorXd& c = Eigen::VectorXd()) {
  const Index d = w.layout.head_dim();
  w.q.middleRows(r * d, d) = w.q.middleRows(k * d, d);
  w.k.middleRows(r * d, d) = w.k.middleRows(k * d, d);
  w.v.middleRows(r * d, d) = M * w.v.middleRows(k * d, d);
  if (c.size() > 0) {
    w.bv.segment(r * d, d) = M * w.bv.segment(k * d, d) + c;
  }
}

enum class Storage { separate, gpt2 };

/// The weights rounded to S and bound to a block: separate row-major Q/K/V/O, or GPT-2 style (one
/// `c_attn` [D, (H + 2 H_kv) d] and `c_proj` [H d, D], both stored in_out). Not movable.
template <typename S>
struct Block {
  RowMat<S> q, k, v, o, qkv;
  Vec<S> bv, bo, bqkv;
  mhaprune::AttentionBlock<S> block;

  static RowMat<S> cast(const Eigen::MatrixXd& m) {
    return m.unaryExpr([](double x) { return mhaprune::detail::from_double<S>(x); });
  }

  explicit Block(const Weights& w, Storage storage = Storage::separate, std::string name = "layers.0")
      : block(std::move(name), w.layout) {
    namespace L = mhaprune::layout;
    if (storage == Storage::separate) {
      q = cast(w.q), k = cast(w.k), v = cast(w.v), o = cast(w.o);
      block.add(L::query(q)).add(L::key(k)).add(L::value(v)).add(L::output(o));
      if (w.bv.size() > 0) {
        bv = cast(w.bv);
        block.add(L::value_bias(bv));
      }
    } else {
      Eigen::MatrixXd all(w.q.rows() + w.k.rows() + w.v.rows(), w.q.cols());
      all << w.q, w.k, w.v;
      qkv = cast(all.transpose());
      o = cast(w.o.transpose());
      block.add(L::qkv_concat(qkv).stored_as(mhaprune::Orientation::in_out).named("c_attn.weight"))
          .add(L::output(o).stored_as(mhaprune::Orientation::in_out).named("c_proj.weight"));
      if (w.bv.size() > 0) {
        Eigen::VectorXd b = Eigen::VectorXd::Zero(all.rows());
        b.tail(w.bv.size()) = w.bv;
        bqkv = cast(b);
        block.add(L::qkv_concat_bias(bqkv).named("c_attn.bias"));
      }
    }
    if (w.bo.size() > 0) {
      bo = cast(w.bo);
      block.add(L::output_bias(bo));
    }
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
};

/// Every tensor's shape and bytes, to check that a failed call changed nothing.
template <typename S>
std::vector<std::vector<unsigned char>> snapshot(const mhaprune::AttentionBlock<S>& b) {
  std::vector<std::vector<unsigned char>> out;
  for (const auto& t : b.tensors()) {
    std::vector<unsigned char> bytes(static_cast<std::size_t>(t.ref.size()) * sizeof(S) + 2 * sizeof(Index));
    const Index shape[2] = {t.ref.rows(), t.ref.cols()};
    std::memcpy(bytes.data(), shape, sizeof shape);
    if (t.ref.size() > 0) std::memcpy(bytes.data() + sizeof shape, t.ref.data(), bytes.size() - sizeof shape);
    out.push_back(std::move(bytes));
  }
  return out;
}

/// Random input sequences [T, D].
inline std::vector<Eigen::MatrixXd> random_inputs(Index D, int sequences, Index T, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<Eigen::MatrixXd> xs;
  for (int s = 0; s < sequences; ++s) xs.push_back(randn(T, D, rng));
  return xs;
}

/// Statistics of O's input (with the Gram matrix) over the block's own head outputs on `xs`.
template <typename S>
mhaprune::ActivationStats calibrate(const mhaprune::AttentionBlock<S>& b,
                                    const std::vector<Eigen::MatrixXd>& xs) {
  mhaprune::ActivationStats stats(b.layout().query_width(), mhaprune::GramTracking::on);
  for (const auto& x : xs) stats.add(mhaprune::reference::head_outputs(x, b));
  return stats;
}

/// The block's outputs on `xs`, plus `extra_bias` when given (a created bias the block cannot hold).
template <typename S>
std::vector<Eigen::MatrixXd> outputs(const mhaprune::AttentionBlock<S>& b,
                                     const std::vector<Eigen::MatrixXd>& xs,
                                     const Eigen::VectorXd& extra_bias = Eigen::VectorXd()) {
  std::vector<Eigen::MatrixXd> ys;
  for (const auto& x : xs) {
    Eigen::MatrixXd y = mhaprune::reference::attention(x, b);
    if (extra_bias.size() > 0) y.rowwise() += extra_bias.transpose();
    ys.push_back(std::move(y));
  }
  return ys;
}

/// ‖a - b‖_F / ‖b‖_F over all sequences.
inline double relative_error(const std::vector<Eigen::MatrixXd>& a, const std::vector<Eigen::MatrixXd>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]).squaredNorm();
    den += b[i].squaredNorm();
  }
  return std::sqrt(num / den);
}

/// Mean output row over all tokens of all sequences.
inline Eigen::VectorXd mean_output(const std::vector<Eigen::MatrixXd>& ys) {
  Eigen::VectorXd m = Eigen::VectorXd::Zero(ys.front().cols());
  double n = 0;
  for (const auto& y : ys) {
    m += y.colwise().sum().transpose();
    n += static_cast<double>(y.rows());
  }
  return m / n;
}

inline mhaprune::CompensationOptions options(mhaprune::CompensationMethod m, double lambda = 1e-3,
                                             mhaprune::RidgeTarget target = mhaprune::RidgeTarget::zero) {
  mhaprune::CompensationOptions o;
  o.method = m;
  o.lambda = lambda;
  o.ridge_target = target;
  return o;
}

}  // namespace test_compensation
