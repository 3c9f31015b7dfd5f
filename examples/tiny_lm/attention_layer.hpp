// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <utility>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/io/tensor_view.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"

namespace tiny_lm {

using Index = Eigen::Index;
using RowMatrix = mhaprune::io::RowMatrix<float>;  // PyTorch Linear weights [out, in]
using Vector = Eigen::VectorXf;
using Matrix = Eigen::MatrixXf;  // activations [tokens, features]

/// The default of the models' optional observers (residual stream, attended inputs): ignores them.
struct IgnoreResidual {
  void operator()(Index, const Matrix&) const noexcept {}
};

/// One attention layer's weights, owned here and bound into an `AttentionBlock` so that the library
/// removes heads from them in place. Not copyable or movable: the block points at the members, so
/// models hold layers through `std::unique_ptr`.
struct AttentionLayer {
  RowMatrix q, k, v, o;           // [H*d, D], [H_kv*d, D], [H_kv*d, D], [D, H*d]
  Vector q_bias, k_bias, v_bias;  // [H*d], [H_kv*d], [H_kv*d]
  Vector o_bias;                  // [D]; empty when the model has none (Qwen2) until compensation adds one
  bool o_bias_bound = false;      // whether o_bias is the checkpoint's, bound into the block
  mhaprune::AttentionBlock<float> block;

  AttentionLayer(std::string name, mhaprune::HeadLayout layout) : block(std::move(name), layout) {}
  AttentionLayer(const AttentionLayer&) = delete;
  AttentionLayer& operator=(const AttentionLayer&) = delete;

  /// Binds the loaded weights; the O bias only when the checkpoint has one.
  void bind() {
    namespace layout = mhaprune::layout;
    block.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));
    block.add(layout::query_bias(q_bias)).add(layout::key_bias(k_bias)).add(layout::value_bias(v_bias));
    o_bias_bound = o_bias.size() > 0;
    if (o_bias_bound) block.add(layout::output_bias(o_bias));
    block.validate();
  }

  /// O projection of the concatenated head outputs `[tokens, H*d]`.
  Matrix project_output(const Matrix& heads) const {
    Matrix out = heads * o.transpose();
    if (o_bias.size() > 0) out.rowwise() += o_bias.transpose();
    return out;
  }
};

/// Scaled dot-product attention of one sequence over the block's CURRENT heads, which may be fewer
/// than the checkpoint's after pruning. `q` `[T, H*d]`, `k` and `v` `[T, H_kv*d]` (projected, with
/// RoPE applied if any). Returns the concatenated head outputs `[T, H*d]`: O's input.
///
/// Which key/value head a query head reads follows the ORIGINAL ids: query head h (original id) read
/// key/value head h / (H0 / H_kv0) in the unpruned model, and still does.
using MatrixRef = Eigen::Ref<const Matrix>;  // a block of an activation matrix, without a copy

/// Calls `f(h, g, weights)` for every current query head h: g the current position of the key/value
/// head it reads, `weights` its softmax attention weights transposed, `[key, query]`.
template <typename F>
void for_each_head_weights(const MatrixRef& q, const MatrixRef& k,
                           const mhaprune::AttentionBlock<float>& block, bool causal, F&& f) {
  const auto& L = block.layout();
  const Index T = q.rows(), d = L.head_dim();
  const Index original_group = block.original_heads() / block.original_kv_heads();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  Matrix scores(T, T);  // transposed, [key, query]: each query's softmax runs down a contiguous column
  for (Index h = 0; h < L.heads(); ++h) {
    const Index kv_id = block.head_ids()[static_cast<std::size_t>(h)] / original_group;
    Index g = 0;
    while (block.kv_head_ids()[static_cast<std::size_t>(g)] != kv_id) ++g;

    scores.noalias() = k.middleCols(g * d, d) * q.middleCols(h * d, d).transpose() * scale;
    for (Index i = 0; i < T; ++i) {
      const Index seen = causal ? i + 1 : T;
      auto column = scores.col(i).head(seen);
      column = (column.array() - column.maxCoeff()).exp();
      column /= column.sum();
      scores.col(i).tail(T - seen).setZero();
    }
    f(h, g, static_cast<const Matrix&>(scores));
  }
}

inline Matrix attend(const MatrixRef& q, const MatrixRef& k, const MatrixRef& v,
                     const mhaprune::AttentionBlock<float>& block, bool causal) {
  const Index d = block.layout().head_dim();
  Matrix out(q.rows(), block.layout().query_width());
  for_each_head_weights(q, k, block, causal, [&](Index h, Index g, const Matrix& weights) {
    out.middleCols(h * d, d).noalias() = weights.transpose() * v.middleCols(g * d, d);
  });
  return out;
}

/// V's input `x_in` `[T, D_in]` as each head's attention weights mix it: `[T, H*D_in]`, columns
/// h*D_in.. for current query head h (what `mhaprune::refit_values` calls attended inputs).
inline Matrix attended_inputs(const MatrixRef& q, const MatrixRef& k, const MatrixRef& x_in,
                              const mhaprune::AttentionBlock<float>& block, bool causal) {
  const Index D_in = x_in.cols();
  Matrix out(q.rows(), block.layout().heads() * D_in);
  for_each_head_weights(q, k, block, causal, [&](Index h, Index, const Matrix& weights) {
    out.middleCols(h * D_in, D_in).noalias() = weights.transpose() * x_in;
  });
  return out;
}

/// The same for a batch of sequences of length T, one after another in the rows.
inline Matrix attended_inputs(const Matrix& q, const Matrix& k, const Matrix& x_in,
                              const mhaprune::AttentionBlock<float>& block, Index T, bool causal) {
  Matrix out(q.rows(), block.layout().heads() * x_in.cols());
  for (Index s = 0; s < q.rows() / T; ++s) {
    out.middleRows(s * T, T) = attended_inputs(q.middleRows(s * T, T), k.middleRows(s * T, T),
                                               x_in.middleRows(s * T, T), block, causal);
  }
  return out;
}

}  // namespace tiny_lm
