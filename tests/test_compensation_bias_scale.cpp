// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// bias (FLAP) and scale (Kwon et al.'s mask tuning) compensation on synthetic blocks.
#include <catch2/catch.hpp>

#include "test_compensation_support.hpp"

namespace test_compensation_bias_scale {

using namespace test_compensation;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::OriginalIds;

TEMPLATE_TEST_CASE("bias makes the mean output over the calibration tokens exact", "[compensation][bias]",
                   float, double) {
  for (Storage storage : {Storage::separate, Storage::gpt2}) {
    INFO("storage " << (storage == Storage::gpt2 ? "gpt2" : "separate"));
    // A V bias gives the heads' outputs a clear non-zero mean.
    Weights w = random_weights(HeadLayout::mha(4, 4, 12), 3, true, true);
    w.bv.setLinSpaced(-2.0, 3.0);
    Block<TestType> b(w, storage), plain(w, storage);
    const auto calib = random_inputs(12, 8, 16, 1);
    const auto stats = calibrate(b.block, calib);
    const Eigen::VectorXd mean_before = mean_output(outputs(b.block, calib));

    const auto out = mhaprune::remove_heads_compensated(b.block, OriginalIds{0, 2}, stats,
                                                        options(CompensationMethod::bias));
    CHECK(out.created_bias.size() == 0);
    mhaprune::remove_heads(plain.block, OriginalIds{0, 2});
    const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-12;
    CHECK((mean_output(outputs(b.block, calib)) - mean_before).norm() <= tol * mean_before.norm());
    CHECK((mean_output(outputs(plain.block, calib)) - mean_before).norm() > 0.05 * mean_before.norm());
  }
}

TEST_CASE("bias without an O bias tensor: the shift comes back as created_bias", "[compensation][bias]") {
  Weights w = random_weights(HeadLayout(4, 2, 4, 12), 5, true, false);
  w.bv.setLinSpaced(1.0, 2.0);
  Block<double> b(w);
  const auto calib = random_inputs(12, 4, 16, 2);
  const auto stats = calibrate(b.block, calib);
  const Eigen::VectorXd mean_before = mean_output(outputs(b.block, calib));
  const Eigen::MatrixXd o_before = b.o;
  // Whole kv group 1 (query heads 2, 3).
  const auto out = mhaprune::remove_heads_compensated(b.block, OriginalIds{2, 3}, stats,
                                                      options(CompensationMethod::bias));
  CHECK(out.removed.kv_heads == std::vector<Index>{1});
  REQUIRE(out.created_bias.size() == 12);
  CHECK(out.created_bias.isApprox(o_before.rightCols(8) * stats.mean().tail(8), 1e-12));
  CHECK((mean_output(outputs(b.block, calib, out.created_bias)) - mean_before).norm() <=
        1e-12 * mean_before.norm());
  CHECK(b.o == o_before.leftCols(8));  // bias compensation leaves O's columns alone
}

TEST_CASE("scale: a removed head that is a multiple of a kept one is folded into its scale",
          "[compensation][scale]") {
  // Head 3's output is 0.5 x head 0's and it has the same O columns: Y_3 = 0.5 Y_0, so s_0 = 1.5.
  Weights w = random_weights(HeadLayout::mha(4, 4, 12), 9, false, true);
  make_dependent(w, 3, 0, 0.5 * Eigen::MatrixXd::Identity(4, 4));
  w.o.middleCols(12, 4) = w.o.middleCols(0, 4);
  Block<double> b(w);
  const auto calib = random_inputs(12, 8, 16, 3);
  const auto stats = calibrate(b.block, calib);
  const auto before = outputs(b.block, calib);
  const Eigen::MatrixXd o_before = b.o;

  mhaprune::CompensationOptions opt = options(CompensationMethod::scale);
  opt.scale_ridge = 1e-12;
  mhaprune::remove_heads_compensated(b.block, OriginalIds{3}, stats, opt);
  CHECK(relative_error(outputs(b.block, calib), before) <= 1e-6);
  CHECK(b.o.leftCols(4).isApprox(1.5 * o_before.leftCols(4), 1e-8));
  CHECK(b.o.middleCols(4, 8).isApprox(o_before.middleCols(4, 8), 1e-8));  // heads 1, 2 keep s = 1
}

TEST_CASE("scale: a huge ridge keeps every scale at 1; the closed form solves the normal equations",
          "[compensation][scale]") {
  const Weights w = random_weights(HeadLayout::mha(4, 4, 12), 13, false, false);
  const auto calib = random_inputs(12, 6, 16, 4);
  Block<double> probe(w);
  const auto stats = calibrate(probe.block, calib);

  mhaprune::CompensationOptions opt = options(CompensationMethod::scale);
  opt.scale_ridge = 1e12;
  Block<double> stiff(w);
  mhaprune::remove_heads_compensated(stiff.block, OriginalIds{1}, stats, opt);
  Block<double> plain(w);
  mhaprune::remove_heads(plain.block, OriginalIds{1});
  CHECK(stiff.o.isApprox(plain.o, 1e-9));

  // Free fit: the residual Y - Σ s_h Y_h is orthogonal to every kept head's output.
  opt.scale_ridge = 0;
  Block<double> fit(w);
  const auto before = outputs(probe.block, calib);
  mhaprune::remove_heads_compensated(fit.block, OriginalIds{1}, stats, opt);
  const auto after = outputs(fit.block, calib);
  for (Index h : {0, 2, 3}) {
    const Index pos = h == 0 ? 0 : h - 1;
    double dot = 0, scale = 0;
    for (std::size_t s = 0; s < calib.size(); ++s) {
      const Eigen::MatrixXd heads = mhaprune::reference::head_outputs(calib[s], fit.block);
      const Eigen::MatrixXd y_h = heads.middleCols(pos * 4, 4) * fit.o.middleCols(pos * 4, 4).transpose();
      dot += ((before[s] - after[s]).array() * y_h.array()).sum();
      scale += y_h.squaredNorm();
    }
    CHECK(std::abs(dot) <= 1e-9 * scale);
  }
}

}  // namespace test_compensation_bias_scale
