// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// lsq, bias+lsq and obs compensation on synthetic blocks where the answer is known: a removed head's
// output is an exact linear function of kept heads' outputs, so the refit must reconstruct the block.
#include <catch2/catch.hpp>

#include "test_compensation_support.hpp"

namespace test_compensation_lsq {

using namespace test_compensation;
using mhaprune::CompensationMethod;
using mhaprune::HeadLayout;
using mhaprune::OriginalIds;
using mhaprune::RidgeTarget;

/// MHA, H = 4, d = 4, D = 12: head 3 = head 0 times M, head 1 = head 2 times M'. Remove {1, 3}.
inline Weights dependent_mha(unsigned seed, bool o_bias, bool v_bias = false) {
  Weights w = random_weights(HeadLayout::mha(4, 4, 12), seed, v_bias, o_bias);
  std::mt19937 rng(seed + 100);
  make_dependent(w, 3, 0, randn(4, 4, rng));
  make_dependent(w, 1, 2, randn(4, 4, rng));
  return w;
}

TEMPLATE_TEST_CASE("lsq reconstructs the block when removed heads are linear in kept ones",
                   "[compensation][lsq]", float, double) {
  for (Storage storage : {Storage::separate, Storage::gpt2}) {
    for (bool o_bias : {false, true}) {
      INFO("storage " << (storage == Storage::gpt2 ? "gpt2" : "separate") << ", O bias " << o_bias);
      const Weights w = dependent_mha(7, o_bias);
      Block<TestType> pruned(w, storage), plain(w, storage);
      const auto calib = random_inputs(12, 8, 16, 1), fresh = random_inputs(12, 4, 16, 2);
      const mhaprune::ActivationStats stats = calibrate(pruned.block, calib);
      const auto before = outputs(pruned.block, calib), before_fresh = outputs(pruned.block, fresh);

      const auto out = mhaprune::remove_heads_compensated(pruned.block, OriginalIds{1, 3}, stats,
                                                          options(CompensationMethod::lsq, 1e-10));
      CHECK(out.removed.heads == std::vector<Index>{1, 3});
      CHECK(out.created_bias.size() == 0);
      CHECK(pruned.block.layout().heads() == 2);
      CHECK(pruned.block.head_ids() == std::vector<Index>{0, 2});
      mhaprune::remove_heads(plain.block, OriginalIds{1, 3});

      const double err = relative_error(outputs(pruned.block, calib), before);
      const double err_fresh = relative_error(outputs(pruned.block, fresh), before_fresh);
      const double err_plain = relative_error(outputs(plain.block, calib), before);
      CHECK(err <= 1e-4);
      CHECK(err_fresh <= 1e-4);  // an exact linear relation holds on any input
      CHECK(err_plain > 0.1);    // without compensation the removal is visible
    }
  }
}

TEST_CASE("lsq on grouped-query attention: duplicated query heads are folded into their twins",
          "[compensation][lsq][gqa]") {
  // H = 4, H_kv = 2: heads 0, 1 read K/V head 0, heads 2, 3 K/V head 1. Heads 1 and 3 copy the query
  // rows of 0 and 2, so their outputs are identical (a rank-deficient Gram matrix).
  Weights w = random_weights(HeadLayout(4, 2, 4, 12), 11, false, true);
  w.q.middleRows(4, 4) = w.q.middleRows(0, 4);
  w.q.middleRows(12, 4) = w.q.middleRows(8, 4);
  Block<double> b(w);
  const auto calib = random_inputs(12, 6, 16, 3);
  const auto stats = calibrate(b.block, calib);
  const auto before = outputs(b.block, calib);
  mhaprune::remove_heads_compensated(b.block, OriginalIds{1, 3}, stats,
                                     options(CompensationMethod::lsq, 1e-10));
  CHECK(b.block.layout().heads() == 2);
  CHECK(b.block.layout().kv_heads() == 2);
  CHECK(relative_error(outputs(b.block, calib), before) <= 1e-4);
}

TEST_CASE("lsq in bfloat16 and half: rounded once, far better than no compensation", "[compensation][lsq]") {
  const Weights w = dependent_mha(5, true);
  const auto calib = random_inputs(12, 8, 16, 4);
  Block<double> ref(w);
  const auto before = outputs(ref.block, calib);
  const auto check = [&](auto& pruned, auto& plain) {
    const auto stats = calibrate(pruned.block, calib);
    mhaprune::remove_heads_compensated(pruned.block, OriginalIds{1, 3}, stats,
                                       options(CompensationMethod::lsq, 1e-10));
    mhaprune::remove_heads(plain.block, OriginalIds{1, 3});
    const double err = relative_error(outputs(pruned.block, calib), before);
    const double err_plain = relative_error(outputs(plain.block, calib), before);
    CHECK(err <= 2e-2);  // bfloat16 keeps 8 bits: the weights' own rounding
    CHECK(err < err_plain / 10);
  };
  Block<Eigen::bfloat16> bf(w), bf_plain(w);
  check(bf, bf_plain);
  Block<Eigen::half> hf(w), hf_plain(w);
  check(hf, hf_plain);
}

TEST_CASE("bias+lsq: a removed head that is linear plus a constant is reconstructed; lsq alone is not",
          "[compensation][lsq][bias]") {
  // A V bias on head 3 makes its output out_0 · Mᵀ + c (attention rows sum to one).
  Weights w = random_weights(HeadLayout::mha(4, 4, 12), 21, true, true);
  std::mt19937 rng(5);
  make_dependent(w, 3, 0, randn(4, 4, rng), Eigen::VectorXd::Constant(4, 2.0));
  const auto calib = random_inputs(12, 8, 16, 6);
  Block<double> affine(w), linear(w), nobias_affine([&] {
    Weights v = w;
    v.bo.resize(0);
    return v;
  }());
  const auto stats = calibrate(affine.block, calib);
  const auto before = outputs(affine.block, calib);

  const auto out = mhaprune::remove_heads_compensated(affine.block, OriginalIds{3}, stats,
                                                      options(CompensationMethod::bias_lsq, 1e-10));
  CHECK(out.created_bias.size() == 0);
  CHECK(relative_error(outputs(affine.block, calib), before) <= 1e-4);

  mhaprune::remove_heads_compensated(linear.block, OriginalIds{3}, stats,
                                     options(CompensationMethod::lsq, 1e-10));
  CHECK(relative_error(outputs(linear.block, calib), before) > 1e-3);

  // Without an O bias the shift comes back as created_bias, the whole bias the block now needs.
  const auto before_nb = outputs(nobias_affine.block, calib);
  const auto out_nb = mhaprune::remove_heads_compensated(nobias_affine.block, OriginalIds{3}, stats,
                                                         options(CompensationMethod::bias_lsq, 1e-10));
  REQUIRE(out_nb.created_bias.size() == 12);
  CHECK(relative_error(outputs(nobias_affine.block, calib, out_nb.created_bias), before_nb) <= 1e-4);
}

TEST_CASE("obs compensation equals lsq with the ridge towards the original weights",
          "[compensation][obs][lsq]") {
  // Generic weights (no exact dependence): the refit is a real compromise, and the damping matters.
  const Weights w = random_weights(HeadLayout::mha(6, 4, 16), 31, false, false);
  const auto calib = random_inputs(16, 6, 12, 7);
  Block<double> probe(w);
  const auto stats = calibrate(probe.block, calib);
  const OriginalIds heads{4, 1, 2};
  for (double lambda : {1e-3, 1e-1}) {
    INFO("lambda " << lambda);
    Block<double> by_obs(w), by_lsq(w), by_lsq_zero(w);
    mhaprune::remove_heads_compensated(by_obs.block, heads, stats, options(CompensationMethod::obs, lambda));
    mhaprune::remove_heads_compensated(by_lsq.block, heads, stats,
                                       options(CompensationMethod::lsq, lambda, RidgeTarget::original));
    mhaprune::remove_heads_compensated(by_lsq_zero.block, heads, stats,
                                       options(CompensationMethod::lsq, lambda));
    CHECK((by_obs.o - by_lsq.o).norm() <= 1e-9 * by_lsq.o.norm());
    // The ridge target makes a difference of order lambda.
    CHECK((by_lsq_zero.o - by_lsq.o).norm() > 1e-9 * by_lsq.o.norm());
  }
  // With vanishing damping every variant is the same least-squares solution.
  Block<double> by_obs(w), by_lsq_zero(w);
  mhaprune::remove_heads_compensated(by_obs.block, heads, stats, options(CompensationMethod::obs, 1e-12));
  mhaprune::remove_heads_compensated(by_lsq_zero.block, heads, stats,
                                     options(CompensationMethod::lsq, 1e-12));
  CHECK((by_obs.o - by_lsq_zero.o).norm() <= 1e-8 * by_lsq_zero.o.norm());
}

TEST_CASE("lsq never makes the calibration error worse than plain removal", "[compensation][lsq]") {
  const Weights w = random_weights(HeadLayout::mha(6, 4, 16), 41, false, true);
  const auto calib = random_inputs(16, 6, 12, 8);
  Block<double> b(w), plain(w), bl(w);
  const auto stats = calibrate(b.block, calib);
  const auto before = outputs(b.block, calib);
  mhaprune::remove_heads_compensated(b.block, OriginalIds{0, 5}, stats, options(CompensationMethod::lsq));
  mhaprune::remove_heads_compensated(bl.block, OriginalIds{0, 5}, stats,
                                     options(CompensationMethod::bias_lsq));
  mhaprune::remove_heads(plain.block, OriginalIds{0, 5});
  const double e_lsq = relative_error(outputs(b.block, calib), before);
  const double e_bl = relative_error(outputs(bl.block, calib), before);
  const double e_plain = relative_error(outputs(plain.block, calib), before);
  CHECK(e_lsq < e_plain);
  CHECK(e_bl <= e_lsq * (1 + 1e-3));  // the affine refit has one more degree of freedom
}

}  // namespace test_compensation_lsq
