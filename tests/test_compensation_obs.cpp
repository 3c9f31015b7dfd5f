// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The obs criterion (structured OBS cost per head) and the greedy obs compensation, against an
// oracle written from the objective's definition that shares no code with the library's OBS maths.
#include <Eigen/Cholesky>
#include <algorithm>
#include <catch2/catch.hpp>
#include <mhaprune/criteria/registry.hpp>

#include "test_compensation_support.hpp"

namespace test_compensation_obs {

using namespace test_compensation;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::Positions;

/// The least value of the layer-wise OBS objective trace((O' - O) H (O' - O)ᵀ) over O' that are zero on
/// the columns of `removed` heads (d channels each), with H = G + λ'I and λ' = lambda · mean(diag G),
/// and the O' that reaches it. Written from that definition, not from the library's H⁻¹ formula:
/// setting the gradient on the kept columns K to zero gives O'_K H_KK = O H_{:,K}, solved here directly.
struct Refit {
  Eigen::MatrixXd o;
  double cost;
};

inline Refit optimal_refit(const Eigen::MatrixXd& O, const Eigen::MatrixXd& G, double lambda, Index d,
                           const std::vector<Index>& removed) {
  Eigen::MatrixXd H = G;
  H.diagonal().array() += lambda * G.diagonal().mean();
  std::vector<Index> kept;
  for (Index c = 0; c < O.cols(); ++c)
    if (std::find(removed.begin(), removed.end(), c / d) == removed.end()) kept.push_back(c);
  const auto K = static_cast<Index>(kept.size());
  Eigen::MatrixXd H_KK(K, K), O_H_K(O.rows(), K);
  for (Index j = 0; j < K; ++j) {
    for (Index i = 0; i < K; ++i)
      H_KK(i, j) = H(kept[static_cast<std::size_t>(i)], kept[static_cast<std::size_t>(j)]);
    O_H_K.col(j) = O * H.col(kept[static_cast<std::size_t>(j)]);
  }
  // H_KK is symmetric positive definite, so O'_Kᵀ = H_KK⁻¹ (O H_{:,K})ᵀ.
  const Eigen::MatrixXd O_K = H_KK.ldlt().solve(O_H_K.transpose()).transpose();
  Refit r{Eigen::MatrixXd::Zero(O.rows(), O.cols()), 0.0};
  for (Index j = 0; j < K; ++j) r.o.col(kept[static_cast<std::size_t>(j)]) = O_K.col(j);
  const Eigen::MatrixXd delta = r.o - O;
  r.cost = (delta * H).cwiseProduct(delta).sum();
  return r;
}

/// The greedy order, by trying every remaining head at each step: the one whose removal together with
/// those already gone leaves the least objective (ties: lowest position).
inline std::vector<Index> greedy_order(const Eigen::MatrixXd& O, const Eigen::MatrixXd& G, double lambda,
                                       Index d, std::vector<Index> heads) {
  std::vector<Index> gone;
  while (!heads.empty()) {
    Index best = -1;
    double best_cost = 0;
    for (Index h : heads) {
      std::vector<Index> trial = gone;
      trial.push_back(h);
      const double c = optimal_refit(O, G, lambda, d, trial).cost;
      if (best < 0 || c < best_cost || (c == best_cost && h < best)) best = h, best_cost = c;
    }
    gone.push_back(best);
    heads.erase(std::find(heads.begin(), heads.end(), best));
  }
  return gone;
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
  const Eigen::MatrixXd G = stats.gram() / static_cast<double>(stats.count());
  Eigen::VectorXd brute(6);
  for (Index h = 0; h < 6; ++h) brute(h) = optimal_refit(w.o, G, lambda, 4, {h}).cost;
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
  const Eigen::MatrixXd& W = w.o;
  const Eigen::MatrixXd G = stats.gram() / static_cast<double>(stats.count());

  Eigen::MatrixXd W1 = W, Hinv = mhaprune::damped_inverse(G, 1e-3);
  const std::vector<Index> order = mhaprune::obs_remove_heads(W1, Hinv, 4, {0, 3, 5});
  const std::vector<Index> expected = greedy_order(W, G, 1e-3, 4, {0, 3, 5});
  INFO("removed in the order " << order[0] << ' ' << order[1] << ' ' << order[2] << ", the oracle's "
                               << expected[0] << ' ' << expected[1] << ' ' << expected[2]);
  CHECK(order == expected);
  CHECK(W1.middleCols(0, 4).isZero(0));
  // Whatever the order, the result is the one-shot optimum without heads 0, 3 and 5.
  CHECK(W1.isApprox(optimal_refit(W, G, 1e-3, 4, {0, 3, 5}).o, 1e-10));
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
