// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Schedules: every decay formula at every pruning step of a few schedules, against the formulas written
// again here from their documentation; is_pruning_step at and between steps; parse_decay; constructors.
#include <catch2/catch.hpp>
#include <cmath>
#include <mhaprune/schedules/decay.hpp>
#include <mhaprune/schedules/iterative.hpp>
#include <string>
#include <vector>

#include "support/message_of.hpp"

namespace test_schedules {

using mhaprune::Decay;
using mhaprune::IterativeSchedule;
using mhaprune::OneshotSchedule;
using mhaprune_test::exact_message;

namespace {

/// The target after pruning step j (0-based) of m, from the documentation: i = j, n = m - 1; with a
/// single step, the final target.
double documented_target(Decay decay, double s0, double s, long j, long m) {
  if (m == 1) return s;
  const double f = static_cast<double>(j) / static_cast<double>(m - 1);
  const double pi = std::acos(-1.0);
  if (decay == Decay::linear) return s0 + (s - s0) * f;
  if (decay == Decay::cube) return s0 + (s - s0) * std::pow(f, 3.0);
  if (decay == Decay::cos) return s0 + (s - s0) * (1.0 - std::cos(f * pi / 2.0));
  return 1.0 - (1.0 - s0) * std::pow((1.0 - s) / (1.0 - s0), f);
}

const Decay all_decays[] = {Decay::linear, Decay::cube, Decay::cos, Decay::exp};

}  // namespace

TEST_CASE("schedules: every decay at every pruning step", "[schedule]") {
  struct Grid {
    long start, end, frequency;
    std::vector<long> pruning_steps;  // written out by hand
  };
  const Grid grids[] = {
      {0, 10, 2, {0, 2, 4, 6, 8, 10}},
      {5, 5, 1, {5}},                  // one step: it reaches the final target
      {5, 5, 3, {5}},                  // the frequency does not matter then
      {3, 20, 4, {3, 7, 11, 15, 19}},  // 20 is not on the grid
      {0, 3, 1, {0, 1, 2, 3}},
  };
  int checked = 0;
  for (const Grid& g : grids) {
    for (Decay decay : all_decays) {
      for (double initial : {0.0, 0.2}) {
        for (double final_target : {0.5, 0.9}) {
          const IterativeSchedule schedule(g.start, g.end, g.frequency, decay, initial);
          const long m = static_cast<long>(g.pruning_steps.size());
          INFO("start " << g.start << ", end " << g.end << ", frequency " << g.frequency << ", decay "
                        << mhaprune::to_string(decay) << ", initial " << initial << ", final "
                        << final_target);
          CHECK(schedule.pruning_steps() == m);

          double last = initial;
          long next = 0;  // index of the next pruning step
          for (long step = 0; step <= g.end + 6; ++step) {
            INFO("step " << step);
            const bool pruning = next < m && g.pruning_steps[static_cast<std::size_t>(next)] == step;
            CHECK(schedule.is_pruning_step(step) == pruning);
            const double got = schedule.target_at(step, final_target);
            if (pruning) {
              last = documented_target(decay, initial, final_target, next, m);
              ++next;
            }
            // At a pruning step its own target; before the first the initial sparsity; between two the
            // last one reached; after the last the final target.
            CHECK(got == Approx(last).epsilon(1e-12).margin(1e-15));
            ++checked;
          }
          CHECK(next == m);
          CHECK(last == Approx(final_target).epsilon(1e-12));
          if (m > 1) {
            // The first pruning step sits at the initial sparsity.
            CHECK(schedule.target_at(g.start, final_target) == Approx(initial).margin(1e-15));
          }
        }
      }
    }
  }
  CHECK(checked > 500);
}

TEST_CASE("schedules: hand-computed values for start 0, end 10, frequency 2", "[schedule]") {
  // final 0.5, initial 0: f = j / 5.
  const double linear[] = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5};
  const double cube[] = {0.0, 0.004, 0.032, 0.108, 0.256, 0.5};
  const double cosine[] = {0.0, 0.0244717418524, 0.0954915028125, 0.2061073738538, 0.3454915028125, 0.5};
  const double expo[] = {0.0, 0.1294494367039, 0.2421417167448, 0.3402460446136, 0.4256508225015, 0.5};
  // initial 0.2: cos 0.2 + 0.3 (1 - cos(f pi/2)), exp 1 - 0.8 * 0.625^f.
  const double cos_from_02[] = {0.2, 0.2146830451115, 0.2572949016875, 0.3236644243123, 0.4072949016875, 0.5};
  const double exp_from_02[] = {0.2, 0.2717743187896, 0.3371091965320, 0.3965823663455, 0.4507197283469, 0.5};
  for (long j = 0; j <= 5; ++j) {
    INFO("pruning step " << j);
    const long step = 2 * j;
    CHECK(IterativeSchedule(0, 10, 2, Decay::linear).target_at(step, 0.5) == Approx(linear[j]).margin(1e-12));
    CHECK(IterativeSchedule(0, 10, 2, Decay::cube).target_at(step, 0.5) == Approx(cube[j]).margin(1e-12));
    CHECK(IterativeSchedule(0, 10, 2, Decay::cos).target_at(step, 0.5) == Approx(cosine[j]).margin(1e-12));
    CHECK(IterativeSchedule(0, 10, 2, Decay::exp).target_at(step, 0.5) == Approx(expo[j]).margin(1e-12));
    CHECK(IterativeSchedule(0, 10, 2, Decay::cos, 0.2).target_at(step, 0.5) ==
          Approx(cos_from_02[j]).margin(1e-12));
    CHECK(IterativeSchedule(0, 10, 2, Decay::exp, 0.2).target_at(step, 0.5) ==
          Approx(exp_from_02[j]).margin(1e-12));
  }
}

TEST_CASE("schedules: decayed_target runs from the initial to the final sparsity", "[schedule]") {
  for (Decay decay : all_decays) {
    INFO(mhaprune::to_string(decay));
    for (long n : {1L, 2L, 7L}) {
      CHECK(mhaprune::decayed_target(decay, 0.1, 0.7, 0, n) == Approx(0.1).margin(1e-15));
      CHECK(mhaprune::decayed_target(decay, 0.1, 0.7, n, n) == Approx(0.7).margin(1e-15));
      double previous = 0.1;
      for (long i = 1; i <= n; ++i) {
        const double t = mhaprune::decayed_target(decay, 0.1, 0.7, i, n);
        CHECK(t == Approx(documented_target(decay, 0.1, 0.7, i, n + 1)).epsilon(1e-12));
        CHECK(t > previous);  // rising
        previous = t;
      }
    }
    // Up to a final target of 1: the exp formula's base is 0 there.
    CHECK(mhaprune::decayed_target(decay, 0.0, 1.0, 4, 4) == Approx(1.0).margin(1e-15));
    CHECK(mhaprune::decayed_target(decay, 0.0, 1.0, 0, 4) == Approx(0.0).margin(1e-15));
  }
}

TEST_CASE("schedules: parse_decay and to_string", "[schedule]") {
  for (Decay decay : all_decays) CHECK(mhaprune::parse_decay(mhaprune::to_string(decay)) == decay);
  CHECK(std::string(mhaprune::to_string(Decay::linear)) == "linear");
  CHECK(std::string(mhaprune::to_string(Decay::cube)) == "cube");
  CHECK(std::string(mhaprune::to_string(Decay::cos)) == "cos");
  CHECK(std::string(mhaprune::to_string(Decay::exp)) == "exp");

  CHECK(exact_message<mhaprune::error>([] { mhaprune::parse_decay("cosine"); }) ==
        "unknown sparsity decay \"cosine\"; valid: linear, cube, cos, exp");
  CHECK(exact_message<mhaprune::error>([] { mhaprune::parse_decay(""); }) ==
        "unknown sparsity decay \"\"; valid: linear, cube, cos, exp");
  CHECK_THROWS_AS(mhaprune::parse_decay("Linear"), mhaprune::error);
  CHECK_THROWS_AS(mhaprune::parse_decay("exp "), mhaprune::error);
  CHECK_THROWS_AS(mhaprune::parse_decay("exponential"), mhaprune::error);
}

TEST_CASE("schedules: IterativeSchedule refuses bad parameters", "[schedule][errors]") {
  CHECK(exact_message<mhaprune::error>([] { IterativeSchedule(-1, 10, 2); }) ==
        "IterativeSchedule: need 0 <= start_step <= end_step, pruning_frequency >= 1 and 0 <= initial < 1, "
        "got start_step=-1, end_step=10, pruning_frequency=2, initial=0");
  CHECK_THAT(exact_message<mhaprune::error>([] { IterativeSchedule(5, 4, 1); }),
             Catch::Contains("start_step=5, end_step=4"));
  CHECK_THAT(exact_message<mhaprune::error>([] { IterativeSchedule(0, 4, 0); }),
             Catch::Contains("pruning_frequency=0"));
  CHECK_THAT(exact_message<mhaprune::error>([] { IterativeSchedule(0, 4, -2); }),
             Catch::Contains("pruning_frequency=-2"));
  CHECK_THAT(exact_message<mhaprune::error>([] { IterativeSchedule(0, 4, 1, Decay::linear, -0.1); }),
             Catch::Contains("initial=-0.1"));
  CHECK_THAT(exact_message<mhaprune::error>([] { IterativeSchedule(0, 4, 1, Decay::linear, 1.0); }),
             Catch::Contains("initial=1"));
  CHECK_THROWS_AS(IterativeSchedule(0, 4, 1, Decay::linear, std::nan("")), mhaprune::error);

  // The edges are fine, and the defaults are exp from 0.
  const IterativeSchedule edge(0, 0, 1);
  CHECK(edge.decay() == Decay::exp);
  CHECK(edge.initial() == 0.0);
  CHECK(edge.pruning_steps() == 1);
  CHECK(edge.is_pruning_step(0));
  CHECK(edge.target_at(0, 0.4) == 0.4);
  const IterativeSchedule s(3, 20, 4, Decay::cos, 0.25);
  CHECK(s.start_step() == 3);
  CHECK(s.end_step() == 20);
  CHECK(s.frequency() == 4);
  CHECK(s.decay() == Decay::cos);
  CHECK(s.initial() == 0.25);
  CHECK(std::string(IterativeSchedule::name) == "iterative");
}

TEST_CASE("schedules: OneshotSchedule prunes once, straight to the final target", "[schedule]") {
  const OneshotSchedule at0;
  CHECK(at0.step() == 0);
  CHECK(at0.is_pruning_step(0));
  CHECK_FALSE(at0.is_pruning_step(1));
  CHECK(at0.target_at(0, 0.35) == 0.35);

  const OneshotSchedule at7(7);
  for (long step = 0; step < 12; ++step) CHECK(at7.is_pruning_step(step) == (step == 7));
  CHECK(at7.target_at(7, 0.6) == 0.6);
  CHECK(std::string(OneshotSchedule::name) == "oneshot");

  // An iterative schedule of one step matches it, whatever the decay and initial sparsity.
  for (Decay decay : all_decays) {
    const IterativeSchedule one(7, 7, 5, decay, 0.3);
    for (long step = 0; step < 12; ++step) CHECK(one.is_pruning_step(step) == at7.is_pruning_step(step));
    CHECK(one.target_at(7, 0.6) == at7.target_at(7, 0.6));
  }
}

}  // namespace test_schedules
