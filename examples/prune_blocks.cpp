// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Pruning inside a training loop: four random attention blocks, 30% of all heads removed globally,
// scored by snip_momentum over a simulated loop whose gradients make some heads matter more than
// others; heads are masked at the schedule's pruning steps and sliced out at the end.

#include <iostream>
#include <mhaprune/mhaprune.hpp>
#include <mhaprune/pruner/pruner.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

using Weights = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Layer {
  Weights q, k, v, o;
};

}  // namespace

int main() {
  constexpr int kLayers = 4, kHeads = 8, kKvHeads = 4, kHeadDim = 8, kWidth = 64;
  std::mt19937 rng(2026);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  const auto random = [&](int rows, int cols) {
    return Weights(Weights::NullaryExpr(rows, cols, [&] { return normal(rng); }));
  };

  std::vector<Layer> layers;
  for (int l = 0; l < kLayers; ++l) {
    layers.push_back({random(kHeads * kHeadDim, kWidth), random(kKvHeads * kHeadDim, kWidth),
                      random(kKvHeads * kHeadDim, kWidth), random(kWidth, kHeads * kHeadDim)});
  }
  std::vector<mhaprune::AttentionBlock<float>> blocks;
  for (int l = 0; l < kLayers; ++l) {
    blocks.emplace_back("model.layers." + std::to_string(l) + ".self_attn",
                        mhaprune::HeadLayout(kHeads, kKvHeads, kHeadDim, kWidth));
    namespace layout = mhaprune::layout;
    blocks.back()
        .add(layout::query(layers[l].q).named("q_proj.weight"))
        .add(layout::key(layers[l].k).named("k_proj.weight"))
        .add(layout::value(layers[l].v).named("v_proj.weight"))
        .add(layout::output(layers[l].o).named("o_proj.weight"));
  }

  // Prune at steps 2, 4, ..., 10 with the target rising on a cube curve to 30%.
  mhaprune::MhaPruner<mhaprune::SnipMomentum, mhaprune::GlobalSelection, mhaprune::IterativeSchedule> pruner(
      mhaprune::SnipMomentum{}, mhaprune::GlobalSelection{},
      mhaprune::IterativeSchedule(2, 10, 2, mhaprune::Decay::cube));
  pruner.attach(blocks, 0.3);

  // Synthetic gradients: head h of layer l gets a gradient scale that grows with (h + l) % 5, so the
  // heads with small scales are the ones snip_momentum should find unimportant.
  std::vector<Layer> grads(layers.size());
  for (long step = 0; step < 12; ++step) {
    if (pruner.on_step_begin(step)) std::cout << "step " << step << ": masked more heads\n";
    mhaprune::EvidenceMap evidence;
    for (int l = 0; l < kLayers; ++l) {
      const mhaprune::AttentionBlock<float>& b = blocks[static_cast<std::size_t>(l)];
      const Layer& w = layers[static_cast<std::size_t>(l)];
      Layer& g = grads[static_cast<std::size_t>(l)];
      g = {random(w.q.rows(), w.q.cols()), random(w.k.rows(), w.k.cols()), random(w.v.rows(), w.v.cols()),
           random(w.o.rows(), w.o.cols())};
      for (int h = 0; h < kHeads; ++h) {
        const float scale = 0.2f + static_cast<float>((h + l) % 5);
        g.q.middleRows(h * kHeadDim, kHeadDim) *= scale;
        g.o.middleCols(h * kHeadDim, kHeadDim) *= scale;
      }
      evidence[b.name()]
          .with_gradient("q_proj.weight", g.q)
          .with_gradient("k_proj.weight", g.k)
          .with_gradient("v_proj.weight", g.v)
          .with_gradient("o_proj.weight", g.o);
    }
    pruner.on_before_optimizer_step(evidence);
    for (std::size_t l = 0; l < layers.size(); ++l) {  // the "optimizer": plain SGD
      layers[l].q -= 0.01f * grads[l].q;
      layers[l].k -= 0.01f * grads[l].k;
      layers[l].v -= 0.01f * grads[l].v;
      layers[l].o -= 0.01f * grads[l].o;
    }
    pruner.on_after_optimizer_step();
  }

  const mhaprune::PruneReport report = pruner.finalize();
  std::cout << nlohmann::json(report).dump(2) << '\n';
  return report.heads_removed() > 0 ? 0 : 1;
}
