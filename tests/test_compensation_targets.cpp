// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Refitting O to given targets (remove_heads_to_targets) and the OutputTargets accumulator: with the
// block's own output as targets it is the plain compensation; with a drift that the kept heads can
// express it is cancelled exactly; bad targets change nothing.
#include <catch2/catch.hpp>
#include <mhaprune/calibration/output_targets.hpp>
#include <mhaprune/compensation/targets.hpp>

#include "test_compensation_support.hpp"

namespace test_compensation_targets {

using namespace test_compensation;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::OriginalIds;
using mhaprune::OutputTargets;
using mhaprune::Positions;
using mhaprune::RidgeTarget;

/// MHA, H = 4, d = 4, D = 12: head 3 = head 0 times M, head 1 = head 2 times M'.
inline Weights dependent_mha(unsigned seed, bool o_bias) {
  Weights w = random_weights(HeadLayout::mha(4, 4, 12), seed, false, o_bias);
  std::mt19937 rng(seed + 100);
  make_dependent(w, 3, 0, randn(4, 4, rng));
  make_dependent(w, 1, 2, randn(4, 4, rng));
  return w;
}

/// Targets: the block's own output on each sequence, plus `drift(z)` when given.
template <typename S, typename Drift>
OutputTargets targets_of(const mhaprune::AttentionBlock<S>& b, const std::vector<Eigen::MatrixXd>& xs,
                         Drift&& drift) {
  OutputTargets t(b.layout().query_width(), b.layout().model_dim());
  for (const auto& x : xs) {
    const Eigen::MatrixXd z = mhaprune::reference::head_outputs(x, b);
    t.add(z, Eigen::MatrixXd(mhaprune::reference::attention(x, b) + drift(z)));
  }
  return t;
}

template <typename S>
OutputTargets own_output(const mhaprune::AttentionBlock<S>& b, const std::vector<Eigen::MatrixXd>& xs) {
  const Index D = b.layout().model_dim();
  return targets_of(b, xs, [D](const Eigen::MatrixXd& z) { return Eigen::MatrixXd::Zero(z.rows(), D); });
}

TEST_CASE("refit to the block's own output is the plain bias, lsq and bias+lsq compensation",
          "[compensation][targets]") {
  const Weights w = dependent_mha(3, true);
  const auto calib = random_inputs(12, 6, 16, 4);
  for (CompensationMethod m :
       {CompensationMethod::bias, CompensationMethod::lsq, CompensationMethod::bias_lsq}) {
    for (RidgeTarget ridge : {RidgeTarget::zero, RidgeTarget::original}) {
      INFO("method " << mhaprune::to_string(m) << ", ridge towards "
                     << (ridge == RidgeTarget::zero ? "zero" : "original"));
      Block<double> a(w), b(w);
      const auto stats = calibrate(a.block, calib);
      const OutputTargets targets = own_output(b.block, calib);
      CHECK(targets.count() == 6 * 16);
      mhaprune::remove_heads_compensated(a.block, OriginalIds{1}, stats, options(m, 1e-2, ridge));
      const auto out =
          mhaprune::remove_heads_to_targets(b.block, OriginalIds{1}, targets, options(m, 1e-2, ridge));
      CHECK(out.removed.heads == std::vector<Index>{1});
      CHECK(b.block.head_ids() == std::vector<Index>{0, 2, 3});
      CHECK((a.o - b.o).cwiseAbs().maxCoeff() <= 1e-9);
      CHECK((a.bo - b.bo).cwiseAbs().maxCoeff() <= 1e-9);
    }
  }
}

TEMPLATE_TEST_CASE("refit to targets cancels a drift the kept heads can express", "[compensation][targets]",
                   float, double) {
  for (bool o_bias : {false, true}) {
    for (bool remove : {true, false}) {
      INFO("O bias " << o_bias << ", heads removed " << remove);
      const Weights w = dependent_mha(11, o_bias);
      Block<TestType> blk(w);
      const auto calib = random_inputs(12, 8, 16, 5), fresh = random_inputs(12, 3, 16, 6);
      std::mt19937 rng(9);
      // The drift reads only kept channels (heads 0 and 2), plus a constant.
      const Eigen::MatrixXd M = randn(12, 16, rng, 0.3);
      const Eigen::VectorXd c = randn(12, 1, rng, 0.2).col(0);
      const auto drift = [&](const Eigen::MatrixXd& z) {
        Eigen::MatrixXd kept(z.rows(), 8);
        kept << z.middleCols(0, 4), z.middleCols(8, 4);
        Eigen::MatrixXd out = kept * M.leftCols(8).transpose();
        out.rowwise() += c.transpose();
        return out;
      };
      const OutputTargets targets = targets_of(blk.block, calib, drift);
      std::vector<Eigen::MatrixXd> want, want_fresh;
      for (const auto& x : calib)
        want.push_back(mhaprune::reference::attention(x, blk.block) +
                       drift(mhaprune::reference::head_outputs(x, blk.block)));
      for (const auto& x : fresh)
        want_fresh.push_back(mhaprune::reference::attention(x, blk.block) +
                             drift(mhaprune::reference::head_outputs(x, blk.block)));

      const auto out =
          mhaprune::remove_heads_to_targets(blk.block, remove ? OriginalIds{1, 3} : OriginalIds{}, targets,
                                            options(CompensationMethod::bias_lsq, 1e-10));
      CHECK(blk.block.layout().heads() == (remove ? 2 : 4));
      CHECK(out.created_bias.size() == (o_bias ? 0 : 12));
      const double tol = std::is_same_v<TestType, float> ? 1e-4 : 1e-7;
      CHECK(relative_error(outputs(blk.block, calib, out.created_bias), want) <= tol);
      CHECK(relative_error(outputs(blk.block, fresh, out.created_bias), want_fresh) <= tol);
    }
  }
}

TEST_CASE("bias to targets makes the mean output equal the mean target", "[compensation][targets]") {
  const Weights w = dependent_mha(21, true);
  Block<double> blk(w);
  const auto calib = random_inputs(12, 5, 16, 7);
  const OutputTargets targets = targets_of(
      blk.block, calib, [](const Eigen::MatrixXd& z) { return Eigen::MatrixXd(z.leftCols(12) * 0.5); });
  mhaprune::remove_heads_to_targets(blk.block, OriginalIds{0, 2}, targets, options(CompensationMethod::bias));
  CHECK((mean_output(outputs(blk.block, calib)) - targets.targets().mean()).cwiseAbs().maxCoeff() <= 1e-12);
}

TEST_CASE("refit to targets refuses bad targets and methods and changes nothing",
          "[compensation][targets][errors]") {
  const Weights w = dependent_mha(5, true);
  const auto calib = random_inputs(12, 4, 16, 8);
  Block<float> blk(w);
  const OutputTargets targets = own_output(blk.block, calib);
  const auto before = snapshot(blk.block);
  const auto refused = [&](const OutputTargets& t, mhaprune::CompensationOptions o, const std::string& says) {
    INFO(says);
    try {
      mhaprune::remove_heads_to_targets(blk.block, OriginalIds{1}, t, o);
      FAIL("no exception");
    } catch (const mhaprune::compensation_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(says));
      if (o.lambda >= 0) CHECK_THAT(e.what(), Catch::Contains("layers.0"));
    }
    CHECK(snapshot(blk.block) == before);
  };
  refused(targets, options(CompensationMethod::scale), "not available with output targets");
  refused(targets, options(CompensationMethod::obs), "not available with output targets");
  refused(OutputTargets(16, 12), options(CompensationMethod::lsq), "hold no tokens");
  refused(OutputTargets(16, 8), options(CompensationMethod::lsq), "D=8 outputs");
  refused(targets, options(CompensationMethod::lsq, -1.0), "lambda");

  // Kept heads 0 and 3 carry the same channels (M = I): singular without damping.
  Weights twin = dependent_mha(5, true);
  make_dependent(twin, 3, 0, Eigen::MatrixXd::Identity(4, 4));
  Block<double> t(twin);
  const OutputTargets tt = own_output(t.block, calib);
  const auto t_before = snapshot(t.block);
  CHECK_THROWS_AS(
      mhaprune::remove_heads_to_targets(t.block, OriginalIds{1}, tt, options(CompensationMethod::lsq, 0.0)),
      mhaprune::compensation_error);
  CHECK(snapshot(t.block) == t_before);
  mhaprune::remove_heads_to_targets(t.block, OriginalIds{1}, tt, options(CompensationMethod::lsq, 1e-6));
  CHECK(t.o.allFinite());

  CHECK_THROWS_AS(
      mhaprune::remove_heads_to_targets(blk.block, OriginalIds{7}, targets, options(CompensationMethod::lsq)),
      mhaprune::head_id_error);
  CHECK(snapshot(blk.block) == before);
  // `none` is remove_heads and ignores the targets, even unusable ones.
  mhaprune::remove_heads_to_targets(blk.block, OriginalIds{1}, OutputTargets(3, 3),
                                    options(CompensationMethod::none));
  CHECK(blk.block.head_ids() == std::vector<Index>{0, 2, 3});
}

TEST_CASE("OutputTargets checks batches, keeps the strong guarantee, and merges", "[calibration][targets]") {
  std::mt19937 rng(2);
  const Eigen::MatrixXd z = randn(10, 6, rng), y = randn(10, 3, rng);
  OutputTargets t(6, 3);
  t.add(z.topRows(4), y.topRows(4));
  CHECK_THROWS_AS(t.add(z, y.topRows(9)), mhaprune::shape_error);
  CHECK_THROWS_AS(t.add(z.leftCols(5), y), mhaprune::shape_error);
  Eigen::MatrixXd bad = y;
  bad(7, 2) = NAN;
  CHECK_THROWS_AS(t.add(z, bad), mhaprune::calibration_error);
  CHECK(t.count() == 4);
  CHECK(t.cross_sum().isApprox(y.topRows(4).transpose() * z.topRows(4)));

  OutputTargets rest(6, 3), all(6, 3);
  rest.add(z.bottomRows(6).cast<float>(), y.bottomRows(6).cast<float>());
  t.merge(rest);
  all.add(z, y);
  CHECK(t.count() == 10);
  CHECK((t.cross_sum() - y.transpose() * z.cast<float>().cast<double>()).cwiseAbs().maxCoeff() <= 1e-5);
  CHECK((t.inputs().mean() - all.inputs().mean()).cwiseAbs().maxCoeff() <= 1e-6);
  CHECK((t.targets().mean() - all.targets().mean()).cwiseAbs().maxCoeff() <= 1e-6);
  CHECK_THROWS_AS(t.merge(OutputTargets(6, 4)), mhaprune::shape_error);
  CHECK_THROWS_AS(OutputTargets(0, 3), mhaprune::shape_error);
}

TEST_CASE("cheapest_heads_to_remove ranks heads by the residual the refit leaves",
          "[compensation][targets]") {
  Weights w = random_weights(HeadLayout::mha(4, 4, 12), 31, false, true);
  std::mt19937 rng(32);
  make_dependent(w, 3, 0, randn(4, 4, rng));  // head 3 is head 0 times M: either can go for free
  const auto calib = random_inputs(12, 6, 16, 9);
  Block<double> blk(w);
  const OutputTargets own = own_output(blk.block, calib);
  const auto before = snapshot(blk.block);
  const auto first =
      mhaprune::cheapest_heads_to_remove(blk.block, 1, own, options(CompensationMethod::bias_lsq, 1e-9));
  REQUIRE(first.size() == 1);
  CHECK((first[0] == 0 || first[0] == 3));
  CHECK(snapshot(blk.block) == before);

  // The closed-form residual it ranks by is the one the refit really leaves: compare every single
  // removal's measured error with the order it chose, on targets with a drift no head expresses.
  const OutputTargets drifted = targets_of(blk.block, calib, [&](const Eigen::MatrixXd& z) {
    return Eigen::MatrixXd(z.leftCols(12).cwiseAbs() * 0.3);
  });
  for (CompensationMethod m : {CompensationMethod::lsq, CompensationMethod::bias_lsq}) {
    INFO("method " << mhaprune::to_string(m));
    std::vector<std::pair<double, Index>> measured;
    for (Index h = 0; h < 4; ++h) {
      Block<double> copy(w);
      std::vector<Eigen::MatrixXd> want;
      for (const auto& x : calib) {
        const Eigen::MatrixXd z = mhaprune::reference::head_outputs(x, copy.block);
        want.push_back(mhaprune::reference::attention(x, copy.block) +
                       Eigen::MatrixXd(z.leftCols(12).cwiseAbs() * 0.3));
      }
      const auto out =
          mhaprune::remove_heads_to_targets(copy.block, Positions({h}), drifted, options(m, 1e-3));
      double e = 0;
      const auto got = outputs(copy.block, calib, out.created_bias);
      for (std::size_t s = 0; s < got.size(); ++s) e += (got[s] - want[s]).squaredNorm();
      measured.push_back({e, h});
    }
    std::sort(measured.begin(), measured.end());
    const auto order = mhaprune::cheapest_heads_to_remove(blk.block, 1, drifted, options(m, 1e-3));
    CHECK(order.front() == measured.front().second);
  }
  CHECK_THROWS_AS(mhaprune::cheapest_heads_to_remove(blk.block, 4, own, options(CompensationMethod::lsq)),
                  mhaprune::removal_error);
  CHECK_THROWS_AS(mhaprune::cheapest_heads_to_remove(blk.block, 1, own, options(CompensationMethod::bias)),
                  mhaprune::compensation_error);
}

TEST_CASE("cheapest_heads_to_remove keeps grouped-query groups equal", "[compensation][targets][gqa]") {
  const Weights w = random_weights(HeadLayout(8, 2, 4, 16), 41, false, false);
  Block<float> blk(w);
  const OutputTargets own = own_output(blk.block, random_inputs(16, 4, 12, 3));
  const auto order = mhaprune::cheapest_heads_to_remove(blk.block, 4, own, options(CompensationMethod::lsq));
  REQUIRE(order.size() == 4);
  int first_group = 0;
  for (Index h : order) first_group += h < 4 ? 1 : 0;
  CHECK(first_group == 2);
  CHECK(order[0] < 4);
  CHECK(order[1] >= 4);
  CHECK_THROWS_AS(mhaprune::cheapest_heads_to_remove(blk.block, 3, own, options(CompensationMethod::lsq)),
                  mhaprune::removal_error);
}

}  // namespace test_compensation_targets
