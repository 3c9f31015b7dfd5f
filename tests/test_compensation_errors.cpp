// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Compensation errors leave the block bit for bit unchanged; rank-deficient statistics never give NaN.
#include <Eigen/Eigenvalues>
#include <catch2/catch.hpp>
#include <limits>

#include "test_compensation_support.hpp"

namespace test_compensation_errors {

using namespace test_compensation;
using Catch::Matchers::Contains;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::OriginalIds;
using mhaprune::Positions;

const CompensationMethod all_methods[] = {CompensationMethod::bias, CompensationMethod::scale,
                                          CompensationMethod::lsq, CompensationMethod::obs,
                                          CompensationMethod::bias_lsq};

TEST_CASE("method names and options", "[compensation]") {
  for (CompensationMethod m : all_methods) CHECK(mhaprune::parse_compensation(mhaprune::to_string(m)) == m);
  CHECK(mhaprune::parse_compensation("none") == CompensationMethod::none);
  CHECK(mhaprune::parse_compensation("lsq+bias") == CompensationMethod::bias_lsq);
  CHECK(mhaprune::to_string(CompensationMethod::bias_lsq) == "bias+lsq");
  CHECK_THROWS_AS(mhaprune::parse_compensation("LSQ"), mhaprune::config_error);
  CHECK_THROWS_WITH(mhaprune::parse_compensation("lsqq"),
                    Contains("\"lsqq\"") && Contains("none, bias, scale, lsq, obs, bias+lsq"));
  CHECK(mhaprune::needs_gram(CompensationMethod::lsq));
  CHECK_FALSE(mhaprune::needs_gram(CompensationMethod::bias));
  CHECK(mhaprune::shifts_bias(CompensationMethod::bias_lsq));
  CHECK_FALSE(mhaprune::shifts_bias(CompensationMethod::obs));
  const mhaprune::CompensationOptions defaults;
  CHECK(defaults.method == CompensationMethod::none);
  CHECK(defaults.lambda == 1e-3);
  CHECK(defaults.scale_ridge == 1e-2);
}

TEST_CASE("every error leaves the block unchanged, bit for bit", "[compensation][errors]") {
  const Weights w = random_weights(HeadLayout(4, 2, 4, 12), 3, true, true);
  Block<float> b(w);
  const auto calib = random_inputs(12, 4, 8, 1);
  const auto stats = calibrate(b.block, calib);
  const auto before = snapshot(b.block);
  const auto unchanged = [&] {
    CHECK(snapshot(b.block) == before);
    CHECK(b.block.layout().heads() == 4);
  };

  mhaprune::ActivationStats no_gram(16), empty(16, mhaprune::GramTracking::on),
      narrow(8, mhaprune::GramTracking::on);
  for (const auto& x : calib) {
    const Eigen::MatrixXd heads = mhaprune::reference::head_outputs(x, b.block);
    no_gram.add(heads);
    narrow.add(heads.leftCols(8));
  }
  for (CompensationMethod m : all_methods) {
    INFO("method " << mhaprune::to_string(m));
    const auto opt = options(m);
    CHECK_THROWS_WITH(mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, narrow, opt),
                      Contains("layers.0") && Contains("8 channels") && Contains("H*d = 16"));
    unchanged();
    CHECK_THROWS_WITH(mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, empty, opt),
                      Contains("no tokens"));
    unchanged();
    CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, nullptr, opt),
                    mhaprune::compensation_error);
    unchanged();
    if (mhaprune::needs_gram(m)) {
      CHECK_THROWS_WITH(mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, no_gram, opt),
                        Contains("Gram matrix") && Contains(std::string(mhaprune::to_string(m))));
      unchanged();
    }
    // Head errors come from the removal plan, before the statistics are read.
    CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, OriginalIds{7}, stats, opt),
                    mhaprune::head_id_error);
    CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, Positions{1, 1}, stats, opt),
                    mhaprune::head_id_error);
    CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, OriginalIds{1}, stats, opt),
                    mhaprune::removal_error);
    CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, OriginalIds{0, 1, 2, 3}, stats, opt),
                    mhaprune::removal_error);
    unchanged();
    for (double bad :
         {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
      auto o = opt;
      o.lambda = bad;
      CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, stats, o),
                      mhaprune::compensation_error);
      o = opt;
      o.scale_ridge = bad;
      CHECK_THROWS_AS(mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, stats, o),
                      mhaprune::compensation_error);
    }
    unchanged();
    // Removing nothing changes nothing.
    CHECK(mhaprune::remove_heads_compensated(b.block, Positions{}, stats, opt).removed.heads.empty());
    unchanged();
  }
  // bias needs no Gram matrix; none needs no statistics at all.
  Block<float> c(w);
  CHECK_NOTHROW(mhaprune::remove_heads_compensated(c.block, OriginalIds{1, 3}, no_gram,
                                                   options(CompensationMethod::bias)));
  Block<float> d(w);
  CHECK(mhaprune::remove_heads_compensated(d.block, OriginalIds{1, 3}, nullptr,
                                           options(CompensationMethod::none))
            .removed.heads == std::vector<Index>{1, 3});
}

TEST_CASE("a result the element type cannot hold is refused before anything is written",
          "[compensation][errors]") {
  // half tops out at 65504: a removed head whose mean output is huge needs a bias beyond that.
  const Weights w = random_weights(HeadLayout::mha(4, 4, 12), 5, false, true);
  Block<Eigen::half> b(w);
  const auto before = snapshot(b.block);
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(16), m2 = Eigen::VectorXd::Ones(16);
  mean.segment(4, 4).setConstant(1e6);
  const Eigen::VectorXd sumsq = m2 * 1.0 + mean.cwiseAbs2() * 10.0;
  const auto stats = mhaprune::ActivationStats::from_moments(10, mean, m2, sumsq);
  CHECK_THROWS_WITH(
      mhaprune::remove_heads_compensated(b.block, OriginalIds{1}, stats, options(CompensationMethod::bias)),
      Contains("O bias") && Contains("65504") && Contains("nothing was changed"));
  CHECK(snapshot(b.block) == before);

  // A non-finite weight in a removed column poisons the shift: refused too.
  Block<double> d(w);
  d.o(0, 5) = std::numeric_limits<double>::infinity();
  const auto before_d = snapshot(d.block);
  CHECK_THROWS_AS(
      mhaprune::remove_heads_compensated(d.block, OriginalIds{1}, stats, options(CompensationMethod::bias)),
      mhaprune::compensation_error);
  CHECK(snapshot(d.block) == before_d);
}

TEST_CASE("duplicated channels: every method stays finite thanks to the damping", "[compensation][rank]") {
  // Head 1 is an exact copy of head 0 and two channels of head 2 are equal: the Gram matrix is singular.
  Weights w = random_weights(HeadLayout::mha(4, 4, 12), 7, false, true);
  for (Eigen::MatrixXd* m : {&w.q, &w.k, &w.v}) m->middleRows(4, 4) = m->middleRows(0, 4);
  w.v.row(9) = w.v.row(8);
  const auto calib = random_inputs(12, 4, 8, 2);
  Block<double> probe(w);
  const auto stats = calibrate(probe.block, calib);
  const auto before = outputs(probe.block, calib);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(stats.gram());
  REQUIRE(eig.eigenvalues()(0) < 1e-9 * eig.eigenvalues().maxCoeff());  // singular indeed

  for (CompensationMethod m : all_methods) {
    for (Index head : {1, 3}) {
      INFO("method " << mhaprune::to_string(m) << ", removing head " << head);
      Block<float> b(w);
      const auto out = mhaprune::remove_heads_compensated(b.block, Positions{head}, stats, options(m));
      CHECK(b.o.allFinite());
      CHECK(b.bo.allFinite());
      CHECK(out.created_bias.allFinite());
      if (head == 1 && (m == CompensationMethod::lsq || m == CompensationMethod::obs ||
                        m == CompensationMethod::bias_lsq)) {
        // The copy's O columns fold into the original's: the output is kept up to the damping.
        CHECK(relative_error(outputs(b.block, calib), before) <= 1e-2);
      }
    }
  }
  // No damping on a singular system: a clear error or a finite answer, never NaN.
  Block<double> z(w);
  try {
    mhaprune::remove_heads_compensated(z.block, Positions{3}, stats, options(CompensationMethod::lsq, 0.0));
    CHECK(z.o.allFinite());
  } catch (const mhaprune::compensation_error& e) {
    CHECK_THAT(e.what(), Contains("lambda"));
  }
}

}  // namespace test_compensation_errors
