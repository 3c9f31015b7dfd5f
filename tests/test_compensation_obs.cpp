// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The obs criterion (structured OBS cost per head) and the greedy obs compensation, against brute force.
#include <catch2/catch.hpp>
#include <mhaprune/criteria/registry.hpp>

#include "test_compensation_support.hpp"

namespace test_compensation_obs {

using namespace test_compensation;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::Positions;

/// Output energy per calibration token lost by removing `heads` with obs compensation (brute force,
/// through the oracle forward).
inline double removal_cost(const Weights& w, const std::vector<Eigen::MatrixXd>& calib,
                           const mhaprune::ActivationStats& stats, std::vector<Index> heads, double lambda) {
  Block<double> b(w);
  const auto before = outputs(b.block, calib);
  mhaprune::remove_heads_compensated(b.block, Positions(std::move(heads)), stats,
                                     options(CompensationMethod::obs, lambda));
  const auto after = outputs(b.block, calib);
  double e = 0;
  for (std::size_t i = 0; i < calib.size(); ++i) e += (after[i] - before[i]).squaredNorm();
  return e / static_cast<double>(stats.count());
}

TEST_CASE("obs criterion: the cheapest head by score is the cheapest by brute force",
          "[compensation][obs][criteria]") {
  // Heads of different importance: head h's O columns scaled by 1 + 0.3 h, head 4's made small.
  Weights w = random_weights(HeadLayout::mha(6, 4, 16), 17, false, false);
  for (Index h = 0; h < 6; ++h) w.o.middleCols(h * 4, 4) *= 1.0 + 0.3 * static_cast<double>(h);
  w.o.middleCols(16, 4) *= 0.1;
  const auto calib = random_inputs(16, 8, 12, 5);
  Block<float> b(w);
  const auto stats = calibrate(b.block, calib);
  Block<double> bd(w);

  const double lambda = 1e-9;  // the cost is then the output energy itself
  mhaprune::Obs obs(lambda);
  const Eigen::VectorXd scores =
      mhaprune::score_heads(obs, bd.block, mhaprune::Evidence{}.with_activations(stats));
  REQUIRE(scores.size() == 6);
  Eigen::VectorXd brute(6);
  for (Index h = 0; h < 6; ++h) brute(h) = removal_cost(w, calib, stats, {h}, lambda);
  INFO("scores " << scores.transpose() << "\nbrute  " << brute.transpose());
  Index best_score = 0, best_brute = 0;
  scores.minCoeff(&best_score);
  brute.minCoeff(&best_brute);
  CHECK(best_score == 4);
  CHECK(best_score == best_brute);
  for (Index h = 0; h < 6; ++h)
    CHECK(scores(h) == Approx(brute(h)).epsilon(1e-6).margin(1e-9 * brute.maxCoeff()));

  // The registry builds it by name; a float block scores like a double one (weights read in double).
  mhaprune::AnyCriterion any = mhaprune::criterion_from_name("obs");
  CHECK(any.name() == "obs");
  Block<float> bf(w);
  const Eigen::VectorXd from_registry =
      mhaprune::score_heads(any, bf.block, mhaprune::Evidence{}.with_activations(stats));
  Index best_registry = 0;
  from_registry.minCoeff(&best_registry);
  CHECK(best_registry == 4);
}

TEST_CASE("obs compensation removes in greedy order and matches the one-shot optimum",
          "[compensation][obs]") {
  const Weights w = random_weights(HeadLayout::mha(6, 4, 16), 23, false, false);
  const auto calib = random_inputs(16, 8, 12, 6);
  Block<double> probe(w);
  const auto stats = calibrate(probe.block, calib);
  const Eigen::MatrixXd W = mhaprune::reference::weight(probe.block, mhaprune::Role::output);
  const Eigen::MatrixXd G = stats.gram() / static_cast<double>(stats.count());

  // Greedy order by hand: at each step the cheapest of the requested heads.
  Eigen::MatrixXd W1 = W, Hinv = mhaprune::damped_inverse(G, 1e-3);
  const std::vector<Index> order = mhaprune::obs_remove_heads(W1, Hinv, 4, {0, 3, 5});
  REQUIRE(order.size() == 3);
  {
    Eigen::MatrixXd W2 = W, H2 = mhaprune::damped_inverse(G, 1e-3);
    std::vector<Index> left{0, 3, 5};
    for (Index step = 0; step < 3; ++step) {
      Index best = -1;
      double cost = 0;
      for (Index h : left) {
        const double c = mhaprune::obs_cost(W2, H2, h * 4, 4);
        if (best < 0 || c < cost) best = h, cost = c;
      }
      CHECK(order[static_cast<std::size_t>(step)] == best);
      mhaprune::obs_remove_heads(W2, H2, 4, {best});
      left.erase(std::find(left.begin(), left.end(), best));
    }
  }
  CHECK(W1.middleCols(0, 4).isZero(0));
  // One-shot closed form O_K + O_R G_RK (G_KK + λ'I)⁻¹.
  const std::vector<Index> kept{4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19},
      removed{0, 1, 2, 3, 12, 13, 14, 15, 20, 21, 22, 23};
  const Eigen::MatrixXd closed =
      mhaprune::lsq_refit(W, G, kept, removed, 1e-3, mhaprune::RidgeTarget::original);
  CHECK(mhaprune::detail::gather_columns(W1, kept).isApprox(closed, 1e-10));
}

TEST_CASE("obs criterion: statistics without a Gram matrix, or collected before removals",
          "[compensation][obs][criteria]") {
  const Weights w = random_weights(HeadLayout::mha(4, 4, 12), 29, false, false);
  Block<double> b(w);
  const auto calib = random_inputs(12, 4, 12, 7);
  mhaprune::ActivationStats no_gram(16);
  for (const auto& x : calib) no_gram.add(mhaprune::reference::head_outputs(x, b.block));
  CHECK_THROWS_AS(mhaprune::Obs().scores(b.block, mhaprune::Evidence{}.with_activations(no_gram)),
                  mhaprune::evidence_error);
  CHECK_THROWS_AS(mhaprune::Obs().scores(b.block, mhaprune::Evidence{}), mhaprune::evidence_error);
  CHECK_THROWS_AS(mhaprune::Obs(-1.0), mhaprune::config_error);

  // Statistics of the original 4 heads still score the 3 left after removing head 1: the current
  // heads' channels are picked out, which is what statistics of the current block would give.
  const auto full = calibrate(b.block, calib);
  mhaprune::remove_heads(b.block, mhaprune::OriginalIds{1});
  const Eigen::VectorXd from_original =
      mhaprune::Obs().scores(b.block, mhaprune::Evidence{}.with_activations(full));
  const auto current = calibrate(b.block, calib);
  const Eigen::VectorXd from_current =
      mhaprune::Obs().scores(b.block, mhaprune::Evidence{}.with_activations(current));
  // Same data, different damping scale (mean diagonal over 16 vs 12 channels): close, not equal.
  CHECK(from_original.isApprox(from_current, 1e-2));
}

}  // namespace test_compensation_obs
