// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// refit_values: V and O of the kept heads refitted together. Where the targets come from the same
// attention with other value weights, the refit finds them; it never does worse than refitting O
// alone; bad statistics change nothing.
#include <catch2/catch.hpp>
#include <mhaprune/calibration/output_targets.hpp>
#include <mhaprune/compensation/targets.hpp>
#include <mhaprune/compensation/value_refit.hpp>

#include "test_compensation_support.hpp"

namespace test_compensation_value_refit {

namespace test_value_refit {

using namespace test_compensation;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::OriginalIds;
using mhaprune::OutputTargets;

/// O's input and the attended inputs of `b` on `xs`, both paired with `ys`.
template <typename S>
std::pair<OutputTargets, OutputTargets> statistics(const mhaprune::AttentionBlock<S>& b,
                                                   const std::vector<Eigen::MatrixXd>& xs,
                                                   const std::vector<Eigen::MatrixXd>& ys) {
  const HeadLayout& L = b.layout();
  OutputTargets z(L.query_width(), L.model_dim()), u(L.heads() * L.model_dim(), L.model_dim());
  for (std::size_t s = 0; s < xs.size(); ++s) {
    z.add(mhaprune::reference::head_outputs(xs[s], b), ys[s]);
    u.add(mhaprune::reference::attended_inputs(xs[s], b), ys[s]);
  }
  return {std::move(z), std::move(u)};
}

mhaprune::ValueRefitOptions refit_options(double lambda, int sweeps) {
  mhaprune::ValueRefitOptions o;
  o.lambda = lambda;
  o.sweeps = sweeps;
  return o;
}

}  // namespace test_value_refit

using namespace test_value_refit;

TEMPLATE_TEST_CASE("refit_values finds value weights that O alone cannot stand in for",
                   "[compensation][values]", float, double) {
  for (mhaprune::Index kv : {4, 2}) {
    for (bool o_bias : {true, false}) {
      INFO("kv heads " << kv << ", O bias " << o_bias);
      Weights w = random_weights(HeadLayout(4, kv, 4, 12), 17, true, o_bias);
      Weights other = w;  // the targets: key/value head 1 with other value weights
      std::mt19937 rng(18);
      other.v.middleRows(4, 4) = randn(4, 12, rng, 0.3);
      Block<TestType> blk(w), o_only(w);
      Block<double> truth(other);
      const auto calib = random_inputs(12, 8, 16, 19), fresh = random_inputs(12, 3, 16, 20);
      const auto want = outputs(truth.block, calib), want_fresh = outputs(truth.block, fresh);
      const auto [z, u] = statistics(blk.block, calib, want);

      mhaprune::remove_heads_to_targets(o_only.block, OriginalIds{}, z,
                                        options(CompensationMethod::bias_lsq, 1e-10));
      const auto out = mhaprune::refit_values(blk.block, z, u, refit_options(1e-9, 30));
      CHECK(out.created_bias.size() == (o_bias ? 0 : 12));
      const double err = relative_error(outputs(blk.block, calib, out.created_bias), want);
      const double err_fresh = relative_error(outputs(blk.block, fresh, out.created_bias), want_fresh);
      const double err_o = relative_error(outputs(o_only.block, calib, Eigen::VectorXd()), want);
      CAPTURE(err, err_fresh, err_o);
      const double tol = std::is_same_v<TestType, float> ? 1e-3 : 1e-4;
      if (o_bias) {
        CHECK(err <= tol);
        CHECK(err_fresh <= tol);
        CHECK(err_o > 10 * tol);
      } else {
        CHECK(err <= tol);  // the created bias is added by `outputs`
      }
    }
  }
}

TEST_CASE("refit_values after a removal: never worse than refitting O alone on the calibration data",
          "[compensation][values]") {
  const Weights w = random_weights(HeadLayout::mha(4, 4, 12), 23, true, true);
  Block<double> full(w), a(w), b(w);
  const auto calib = random_inputs(12, 8, 16, 24);
  const auto want = outputs(full.block, calib);
  const auto stats = [&](Block<double>& blk) { return statistics(blk.block, calib, want); };
  {
    const auto [z, u] = stats(a);
    mhaprune::remove_heads_to_targets(a.block, OriginalIds{0, 3}, z, options(CompensationMethod::bias_lsq));
    mhaprune::remove_heads_to_targets(b.block, OriginalIds{0, 3}, z, options(CompensationMethod::bias_lsq));
  }
  const auto [z, u] = stats(b);
  const auto before = snapshot(b.block);
  mhaprune::refit_values(b.block, z, u);
  CHECK(snapshot(b.block) != before);
  const double err_o = relative_error(outputs(a.block, calib), want);
  const double err_v = relative_error(outputs(b.block, calib), want);
  CAPTURE(err_o, err_v);
  CHECK(err_v < 0.9 * err_o);
}

TEST_CASE("refit_values refuses unusable statistics and changes nothing", "[compensation][values][errors]") {
  const Weights w = random_weights(HeadLayout(4, 2, 4, 12), 29, true, true);
  Block<float> blk(w);
  const auto calib = random_inputs(12, 4, 16, 30);
  const auto want = outputs(blk.block, calib);
  const auto [z, u] = statistics(blk.block, calib, want);
  const auto before = snapshot(blk.block);
  const auto refused = [&](const OutputTargets& zz, const OutputTargets& uu, mhaprune::ValueRefitOptions o,
                           const std::string& says) {
    INFO(says);
    try {
      mhaprune::refit_values(blk.block, zz, uu, o);
      FAIL("no exception");
    } catch (const mhaprune::compensation_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(says));
      CHECK_THAT(e.what(), Catch::Contains("layers.0"));
    }
    CHECK(snapshot(blk.block) == before);
  };
  refused(z, OutputTargets(16, 12), {}, "the attended inputs are for 16 channels");
  OutputTargets half(48, 12);
  half.add(mhaprune::reference::attended_inputs(calib[0], blk.block), want[0]);
  refused(z, half, {}, "must be the same tokens");
  refused(z, u, refit_options(0.0, 3), "lambda");
  refused(z, u, refit_options(1e-3, 0), "sweeps");
  mhaprune::ValueRefitOptions small;
  small.max_dense_unknowns = 10;
  refused(z, u, small, "max_dense_unknowns");
}

}  // namespace test_compensation_value_refit
