// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "attention_layer.hpp"
#include "mhaprune/calibration/activation_stats.hpp"
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
