// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attention_layer.hpp"
#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/calibration/output_targets.hpp"
#include "mhaprune/io/safetensors.hpp"
#include "token_batch.hpp"

namespace tiny_lm {

/// Statistics of every layer's O input (the concatenated head outputs, C = H*d channels of the layer's
/// current heads) over a batch, with the Gram matrix, which the OBS criterion and the `scale`/`lsq`
/// compensations need.
template <typename Model>
std::vector<mhaprune::ActivationStats> collect_o_input_stats(const Model& model, const TokenBatch& batch) {
  std::vector<mhaprune::ActivationStats> stats;
  for (Index l = 0; l < model.layers(); ++l)
    stats.emplace_back(model.attention(l).block.layout().query_width(), mhaprune::GramTracking::on);
  for_each_slice(batch, [&](const TokenBatch& part) {
    model.hidden(part,
                 [&](Index l, const Matrix& o_input) { stats[static_cast<std::size_t>(l)].add(o_input); });
  });
  return stats;
}

/// The same for one layer, as the model is now: in sequential calibration the layers before it have
/// already been pruned and compensated.
template <typename Model>
mhaprune::ActivationStats collect_o_input_stats(const Model& model, const TokenBatch& batch, Index layer) {
  mhaprune::ActivationStats stats(model.attention(layer).block.layout().query_width(),
                                  mhaprune::GramTracking::on);
  for_each_slice(batch, [&](const TokenBatch& part) {
    model.hidden(part, [&](Index l, const Matrix& o_input) {
      if (l == layer) stats.add(o_input);
    });
  });
  return stats;
}

/// Per layer, the unpruned model's residual stream just after its attention output was added
/// (x + O z + b), `[tokens, D]` over the whole batch: what a pruned layer is refitted to reproduce in
/// sequential calibration with targets.
template <typename Model>
std::vector<Matrix> collect_attention_residuals(const Model& model, const TokenBatch& batch) {
  std::vector<std::vector<Matrix>> parts(static_cast<std::size_t>(model.layers()));
  Matrix o_input;
  for_each_slice(batch, [&](const TokenBatch& part) {
    model.hidden(
        part, [&](Index, const Matrix& z) { o_input = z; },
        [&](Index l, const Matrix& x) {
          parts[static_cast<std::size_t>(l)].push_back(x + model.attention(l).project_output(o_input));
        });
  });
  std::vector<Matrix> out;
  for (const auto& p : parts) {
    Matrix all(batch.sequences * batch.length, p.front().cols());
    Index row = 0;
    for (const Matrix& m : p) all.middleRows(row, m.rows()) = m, row += m.rows();
    out.push_back(std::move(all));
  }
  return out;
}

/// What refitting one layer to the unpruned model needs: O's input and, for `mhaprune::refit_values`,
/// the attended inputs, each paired with the same targets.
struct LayerTargets {
  mhaprune::OutputTargets o_input;
  std::optional<mhaprune::OutputTargets> attended;
};

/// Layer `layer`'s O input as the (partly pruned) model is now, paired with what O should add to
/// the residual stream to land where the unpruned model was: `original_residual` (from
/// `collect_attention_residuals`) minus the current residual, minus `unbound_bias` (a bias earlier
/// compensation created that the model adds but the block does not bind; may be empty). With
/// `predicted_only`, only the positions that have a target in `batch` count: after the last layer
/// nothing but the predicted positions reaches the loss (a masked LM predicts one position in 7).
/// With `with_attended`, also the attended inputs.
template <typename Model>
LayerTargets collect_layer_targets(const Model& model, const TokenBatch& batch, Index layer,
                                   const Matrix& original_residual, const Vector& unbound_bias,
                                   bool predicted_only, bool with_attended) {
  const auto& L = model.attention(layer).block.layout();
  LayerTargets out{mhaprune::OutputTargets(L.query_width(), L.model_dim()), std::nullopt};
  if (with_attended) out.attended.emplace(L.heads() * L.model_dim(), L.model_dim());
  Index row = 0;
  Matrix o_input, attended;
  for_each_slice(batch, [&](const TokenBatch& part) {
    const auto on_residual = [&](Index l, const Matrix& x) {
      if (l != layer) return;
      Matrix y = original_residual.middleRows(row, x.rows()) - x;
      if (unbound_bias.size() > 0) y.rowwise() -= unbound_bias.transpose();
      std::vector<Index> rows;
      for (Index n = 0; n < x.rows(); ++n)
        if (!predicted_only || part.targets[static_cast<std::size_t>(n)] >= 0) rows.push_back(n);
      out.o_input.add(o_input(rows, Eigen::all), y(rows, Eigen::all));
      if (with_attended) out.attended->add(attended(rows, Eigen::all), y(rows, Eigen::all));
      row += x.rows();
    };
    const auto on_o_input = [&](Index l, const Matrix& z) {
      if (l == layer) o_input = z;
    };
    if (with_attended) {
      model.hidden(part, on_o_input, on_residual, [&](Index l, const Matrix& u) {
        if (l == layer) attended = u;
      });
    } else {
      model.hidden(part, on_o_input, on_residual);
    }
  });
  return out;
}

/// The statistics of the block's current heads only: `stats` may cover the heads the block had before
/// some were removed (original ids), since a kept head's output does not depend on the removed ones.
inline mhaprune::ActivationStats current_channels(const mhaprune::ActivationStats& stats,
                                                  const mhaprune::AttentionBlock<float>& block) {
  const auto& L = block.layout();
  if (stats.channels() == L.query_width()) return stats;
  std::vector<Index> ch;
  for (Index id : block.head_ids())
    for (Index a = 0; a < L.head_dim(); ++a) ch.push_back(id * L.head_dim() + a);
  return mhaprune::ActivationStats::from_moments(stats.count(), stats.mean()(ch), stats.m2()(ch),
                                                 stats.sum_squares()(ch),
                                                 Eigen::MatrixXd(stats.gram()(ch, ch)));
}

/// One layer's head-gate gradients from the training script (tests/data/README.md): over the 64
/// calibration sequences, the sums of |dL_s/dξ_h| and of (dL_s/dξ_h)², one entry per original head.
struct GateGradients {
  Eigen::VectorXd abs_sum, sq_sum;
};

template <typename Model>
std::vector<GateGradients> read_gate_gradients(const Model& model, const std::string& path) {
  const mhaprune::io::SafetensorsReader in(path);
  std::vector<GateGradients> out;
  for (Index l = 0; l < model.layers(); ++l) {
    const std::string p = Model::gate_prefix(l);
    out.push_back(
        {in.tensor(p + ".abs_sum").read_vector<double>(), in.tensor(p + ".sq_sum").read_vector<double>()});
  }
  return out;
}

}  // namespace tiny_lm
