// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/tensor_ref.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/criteria/gradient_view.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

class ActivationStats;

/// What the caller hands a criterion for one block, beyond the block's own weights.
///
/// - Weight gradients ∂L/∂W (gradient, snip, snip_momentum): one per weight tensor of the block,
///   keyed by the tensor's name in the block (`BoundTensor::name`: "query.weight", "qkv.weight", ...)
///   and shaped exactly like that tensor as bound (same rows and columns, so a GPT-2 `c_attn`
///   gradient is `[D, 3D]` like `c_attn`). Any storage order and supported element type: a bf16 model
///   may hand over fp32 gradients. They are views, never copied; the caller's data must outlive the
///   criterion call.
/// - Gate gradients ∂L/∂ξ_h (taylor, fisher): `[batches, H]` with one column per current query head
///   and one row per batch (or per example), or a vector of H for one batch. Small, so copied.
/// - O-input activation statistics (wanda_sp, fluctuation): a pointer to an `ActivationStats` over
///   the input of the O projection (the concatenated head outputs), which must outlive the call.
///
/// Each criterion reads only what it needs and throws `evidence_error` (a missing piece) or
/// `shape_error` (a mis-shaped one), naming the criterion, the block, the tensor and the shapes.
class Evidence {
 public:
  /// Adds (or replaces) the gradient of the weight tensor named `tensor`.
  Evidence& with_gradient(std::string tensor, GradientView view) {
    for (auto& entry : gradients_) {
      if (entry.first == tensor) {
        entry.second = view;
        return *this;
      }
    }
    gradients_.emplace_back(std::move(tensor), view);
    return *this;
  }

  /// Adds (or replaces) a gradient held in an Eigen object with direct access (see `GradientView::of`).
  template <typename Derived>
  Evidence& with_gradient(std::string tensor, const Eigen::DenseBase<Derived>& gradient) {
    return with_gradient(std::move(tensor), GradientView::of(gradient));
  }
  /// A temporary matrix would be gone before the criterion reads it.
  template <typename Derived>
  Evidence& with_gradient(std::string tensor, Eigen::PlainObjectBase<Derived>&& gradient) = delete;

  /// Adds (or replaces) a gradient held in a caller-owned buffer.
  template <typename S>
  Evidence& with_gradient(std::string tensor, const MatrixBuffer<S>& gradient) {
    return with_gradient(std::move(tensor), GradientView::of(gradient));
  }

  /// Sets the gate gradients: a compile-time vector (`VectorXd`, `RowVectorXf`, ...) is one batch's
  /// ∂L/∂ξ_h per current query head; any other matrix is read as `[batches, H]`, one row per batch
  /// (or per example). Copied (widened to double); checked by the criterion that reads them.
  template <typename Derived>
  Evidence& with_gate_gradients(const Eigen::MatrixBase<Derived>& g) {
    Eigen::MatrixXd copy;
    if constexpr (Derived::IsVectorAtCompileTime) {
      copy.resize(1, g.size());
      for (Index i = 0; i < g.size(); ++i) copy(0, i) = detail::to_double(g.derived().coeff(i));
    } else {
      copy.resize(g.rows(), g.cols());
      for (Index j = 0; j < g.cols(); ++j)
        for (Index i = 0; i < g.rows(); ++i) copy(i, j) = detail::to_double(g.derived().coeff(i, j));
    }
    gate_gradients_ = std::move(copy);
    has_gate_gradients_ = true;
    return *this;
  }

  /// Sets the statistics of the O projection's input, channels `H*d` (current heads) or
  /// `original_heads*d` (collected before some heads were removed). Not copied.
  Evidence& with_activations(const ActivationStats& stats) noexcept {
    activations_ = &stats;
    return *this;
  }
  Evidence& with_activations(const ActivationStats&& stats) = delete;

  /// The gradient of the tensor named `tensor`, or nullptr.
  const GradientView* gradient(std::string_view tensor) const noexcept {
    for (const auto& entry : gradients_)
      if (entry.first == tensor) return &entry.second;
    return nullptr;
  }
  /// Every gradient, in the order first given.
  const std::vector<std::pair<std::string, GradientView>>& gradients() const noexcept { return gradients_; }
  /// The gate gradients `[batches, H]`, or nullptr.
  const Eigen::MatrixXd* gate_gradients() const noexcept {
    return has_gate_gradients_ ? &gate_gradients_ : nullptr;
  }
  /// The O-input statistics, or nullptr.
  const ActivationStats* activations() const noexcept { return activations_; }

 private:
  std::vector<std::pair<std::string, GradientView>> gradients_;
  Eigen::MatrixXd gate_gradients_;
  bool has_gate_gradients_ = false;
  const ActivationStats* activations_ = nullptr;
};

namespace detail {

inline std::string gradient_names(const Evidence& ev) {
  if (ev.gradients().empty()) return "none";
  std::string s;
  for (const auto& entry : ev.gradients()) {
    s += s.empty() ? "\"" : ", \"";
    s += entry.first;
    s += '"';
  }
  return s;
}

/// The gradient for one of the block's tensors, checked: present, shaped like the tensor, usable.
/// @throws evidence_error when missing, shape_error when mis-shaped, storage_error when unusable.
template <typename Scalar>
const GradientView& require_gradient(const Evidence& ev, const AttentionBlock<Scalar>& block,
                                     const BoundTensor<Scalar>& t, const char* criterion) {
  const GradientView* g = ev.gradient(t.name);
  const Index rows = t.ref.rows(), cols = t.ref.cols();
  if (g == nullptr) {
    throw evidence_error(message(criterion, ": block \"", block.name(), "\", tensor \"", t.name,
                                 "\": no gradient given (expected one shaped ", shape_string(rows, cols),
                                 "); the evidence has gradients for ", gradient_names(ev)));
  }
  if (g->rows != rows || g->cols != cols) {
    throw shape_error(message(criterion, ": block \"", block.name(), "\", tensor \"", t.name,
                              "\": gradient shape ", shape_string(g->rows, g->cols),
                              " differs from the tensor's ", shape_string(rows, cols)));
  }
  if (g->data == nullptr && rows * cols > 0) {
    throw storage_error(message(criterion, ": block \"", block.name(), "\", tensor \"", t.name,
                                "\": the gradient has no data"));
  }
  if (g->outer_stride < g->line_length() && rows * cols > 0) {
    throw storage_error(message(criterion, ": block \"", block.name(), "\", tensor \"", t.name,
                                "\": the gradient's outer stride ", g->outer_stride,
                                " is shorter than its lines (", g->line_length(), " elements)"));
  }
  return *g;
}

/// The gate gradients, checked: present, one column per current query head, finite.
/// @throws evidence_error when missing or not finite, shape_error when mis-shaped.
template <typename Scalar>
const Eigen::MatrixXd& require_gate_gradients(const Evidence& ev, const AttentionBlock<Scalar>& block,
                                              const char* criterion) {
  const Index H = block.layout().heads();
  const Eigen::MatrixXd* g = ev.gate_gradients();
  if (g == nullptr) {
    throw evidence_error(message(criterion, ": block \"", block.name(),
                                 "\": no gate gradients given (expected [batches, ", H,
                                 "], one column per current query head)"));
  }
  if (g->cols() != H || g->rows() < 1) {
    throw shape_error(message(criterion, ": block \"", block.name(), "\": gate gradients shaped ",
                              shape_string(g->rows(), g->cols()), ", expected [batches >= 1, ", H,
                              "] (one column per current query head)"));
  }
  for (Index j = 0; j < g->cols(); ++j) {
    for (Index i = 0; i < g->rows(); ++i) {
      if (!std::isfinite((*g)(i, j))) {
        throw evidence_error(message(criterion, ": block \"", block.name(), "\": gate gradient of head ", j,
                                     " in batch ", i, " is ", (*g)(i, j)));
      }
    }
  }
  return *g;
}

}  // namespace detail
}  // namespace mhaprune
