// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// A grouped-query attention block over plain Eigen matrices: mask three heads in the oracle forward,
// remove them in place, and show that the smaller block computes the same thing.

#include <cstdio>
#include <mhaprune/mhaprune.hpp>
#include <random>

namespace {

using Weights = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Weights random_weights(std::mt19937& rng, Eigen::Index rows, Eigen::Index cols) {
  std::normal_distribution<float> normal(0.0f, 0.2f);
  return Weights::NullaryExpr(rows, cols, [&] { return normal(rng); });
}

}  // namespace

int main() {
  namespace layout = mhaprune::layout;
  std::mt19937 rng(7);
  // LLaMA-style: 12 query heads sharing 4 key/value heads (groups of 3), head_dim 16, width 192.
  const mhaprune::HeadLayout shape(12, 4, 16, 192);
  Weights q = random_weights(rng, 12 * 16, 192), k = random_weights(rng, 4 * 16, 192);
  Weights v = random_weights(rng, 4 * 16, 192), o = random_weights(rng, 192, 12 * 16);
  Eigen::VectorXf q_bias = Eigen::VectorXf::Constant(12 * 16, 0.01f);

  mhaprune::AttentionBlock<float> block("model.layers.0.self_attn", shape);
  block.add(layout::query(q).named("q_proj.weight"))
      .add(layout::key(k).named("k_proj.weight"))
      .add(layout::value(v).named("v_proj.weight"))
      .add(layout::output(o).named("o_proj.weight"))
      .add(layout::query_bias(q_bias).named("q_proj.bias"));

  // The whole second group (heads 3, 4, 5): its K/V rows go too.
  const mhaprune::OriginalIds doomed{3, 4, 5};
  const Eigen::MatrixXd x = Eigen::MatrixXd::Random(9, 192);
  mhaprune::reference::AttentionOptions masked;
  masked.causal = true;
  masked.mask = mhaprune::HeadMask(12);
  for (auto h : doomed.ids) masked.mask->remove(h);
  const Eigen::MatrixXd expected = mhaprune::reference::attention(x, block, masked);

  const auto bytes = [&] { return (q.size() + k.size() + v.size() + o.size()) * sizeof(float); };
  const auto before = bytes();
  const mhaprune::RemovedHeads removed = mhaprune::remove_heads(block, doomed);

  mhaprune::reference::AttentionOptions plain;
  plain.causal = true;
  const Eigen::MatrixXd got = mhaprune::reference::attention(x, block, plain);
  const double diff = (got - expected).cwiseAbs().maxCoeff();

  std::printf("block %s\n", block.name().c_str());
  std::printf("  heads %d -> %d, key/value heads %d -> %d\n", 12, static_cast<int>(block.layout().heads()), 4,
              static_cast<int>(block.layout().kv_heads()));
  std::printf("  removed query heads:");
  for (auto h : removed.heads) std::printf(" %d", static_cast<int>(h));
  std::printf("; removed key/value heads:");
  for (auto g : removed.kv_heads) std::printf(" %d", static_cast<int>(g));
  std::printf("\n  q_proj %dx%d, k_proj %dx%d, o_proj %dx%d; weights %zu -> %zu bytes\n",
              static_cast<int>(q.rows()), static_cast<int>(q.cols()), static_cast<int>(k.rows()),
              static_cast<int>(k.cols()), static_cast<int>(o.rows()), static_cast<int>(o.cols()),
              static_cast<std::size_t>(before), static_cast<std::size_t>(bytes()));
  std::printf("  pruned forward vs masked original: max |difference| = %.3g (scale %.3g)\n", diff,
              expected.cwiseAbs().maxCoeff());
  return diff <= 1e-5 * expected.cwiseAbs().maxCoeff() ? 0 : 1;
}
