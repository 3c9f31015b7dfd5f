// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// MhaPruner's hooks in a training loop shaped like the reference pruner's (Intel Neural Compressor's)
// own: several epochs, an inner loop with a per-epoch step index, on_step_begin called with that
// index. on_step_begin() counts optimizer steps itself and reaches the end of the schedule; the
// explicit form reaches it when given the global step, and stops short when given the per-epoch
// one (the failure the counted form exists for). A gradient criterion's pruning step before the
// first backward pass is skipped and recorded in the report and its JSON; the explicit form still
// throws there. The two forms cannot be mixed within one attach.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <mhaprune/mhaprune.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support/message_of.hpp"
#include "support/pruner_model.hpp"

namespace test_pruner_inc_loop {

namespace {

using Catch::Matchers::Contains;
using mhaprune::Evidence;
using mhaprune::EvidenceMap;
using mhaprune::GlobalSelection;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::IterativeSchedule;
using mhaprune::MhaPruner;
using mhaprune::OneshotSchedule;
using mhaprune::PruneReport;
using mhaprune_test::exact_message;
using pruner_test::ColMatrix;
using pruner_test::Model;
using pruner_test::snapshot;

constexpr std::size_t kBlocks = 3;
constexpr Index kHeads = 4, kDim = 2, kModel = 8;

HeadLayout layout() { return HeadLayout::mha(kHeads, kDim, kModel); }

/// Gradients of every block whose head h of block b has |G| = scale(b, h) everywhere (signs alternate),
/// so any criterion that grows with |G| ranks the heads by scale: 2^rank with rank = (4b + 7h) mod 12,
/// all distinct; the 6 weakest are two of each block.
struct Gradients {
  std::vector<ColMatrix<float>> q, k, v, o;
  EvidenceMap evidence;

  static double scale(std::size_t b, Index h) {
    return std::ldexp(1.0, static_cast<int>((4 * static_cast<Index>(b) + 7 * h) % 12));
  }

  Gradients() {
    const Index W = kHeads * kDim;
    for (std::size_t b = 0; b < kBlocks; ++b) {
      q.emplace_back(W, kModel), k.emplace_back(W, kModel), v.emplace_back(W, kModel),
          o.emplace_back(kModel, W);
      for (Index a = 0; a < W; ++a) {
        const double s = scale(b, a / kDim);
        for (Index j = 0; j < kModel; ++j) {
          const float sign = (a + j) % 2 == 0 ? 1.0f : -1.0f;
          q[b](a, j) = sign * static_cast<float>(s);
          k[b](a, j) = -sign * static_cast<float>(s);
          v[b](a, j) = sign * static_cast<float>(s);
          o[b](j, a) = sign * static_cast<float>(s);
        }
      }
    }
    for (std::size_t b = 0; b < kBlocks; ++b) {
      Evidence ev;
      ev.with_gradient("query.weight", q[b])
          .with_gradient("key.weight", k[b])
          .with_gradient("value.weight", v[b])
          .with_gradient("output.weight", o[b]);
      evidence["layers." + std::to_string(b)] = ev;
    }
  }
  Gradients(const Gradients&) = delete;
  Gradients& operator=(const Gradients&) = delete;
};

/// The masks with the `n` heads of the lowest scale gone, from the scale formula.
std::vector<HeadMask> weakest(Index n) {
  std::vector<HeadMask> m(kBlocks, HeadMask(kHeads));
  for (std::size_t b = 0; b < kBlocks; ++b)
    for (Index h = 0; h < kHeads; ++h)
      if ((4 * static_cast<Index>(b) + 7 * h) % 12 < n) m[b].remove(h);
  return m;
}

Index masked_count(const std::vector<HeadMask>& masks) {
  Index n = 0;
  for (const HeadMask& m : masks) n += m.removed_count();
  return n;
}

bool same(const std::vector<HeadMask>& a, const std::vector<HeadMask>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].removed().ids != b[i].removed().ids) return false;
  return true;
}

/// Heads masked after the pruning step at global step `step` of the schedule below (pruning steps 1,
/// 3, 5, 7, 9; linear from 0 to `final` over the 4 intervals), from the definition: the last pruning
/// step j reached gives floor(final * j/4 * 12).
Index scheduled(long step, double final_target) {
  if (step < 1) return 0;
  const long j = std::min<long>((step - 1) / 2, 4);
  return static_cast<Index>(std::floor(final_target * static_cast<double>(j) / 4.0 * 12.0 + 1e-9));
}

using GradientPruner = MhaPruner<mhaprune::Gradient, GlobalSelection, IterativeSchedule>;

GradientPruner make_pruner() {
  return GradientPruner(mhaprune::Gradient{}, GlobalSelection{},
                        IterativeSchedule(1, 9, 2, mhaprune::Decay::linear));
}

enum class Form { counted, global_step, epoch_step };

/// INC's loop: 3 epochs of 4 steps; `local` restarts every epoch. Returns the masks after each global
/// step's on_step_begin.
std::vector<std::vector<HeadMask>> run(Form form, Model<float>& model, PruneReport& report) {
  const Gradients grads;
  GradientPruner p = make_pruner();
  p.attach(model.blocks, 0.5);
  std::vector<std::vector<HeadMask>> history;
  long global = 0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    for (long local = 0; local < 4; ++local, ++global) {
      INFO("epoch " << epoch << ", local step " << local);
      switch (form) {
        case Form::counted:
          CHECK(p.optimizer_steps() == global);
          p.on_step_begin();
          // A second call in the same step (gradient accumulation) changes nothing.
          CHECK_FALSE(p.on_step_begin());
          CHECK(p.step() == global);
          break;
        case Form::global_step:
          p.on_step_begin(global);
          break;
        case Form::epoch_step:
          p.on_step_begin(local);
          break;
      }
      history.push_back(p.masks());
      p.on_before_optimizer_step(grads.evidence);
      p.on_after_optimizer_step();
      CHECK(p.optimizer_steps() == global + 1);
    }
  }
  report = p.finalize();
  return history;
}

}  // namespace

TEST_CASE("MhaPruner hooks in an INC-shaped loop: on_step_begin() counts optimizer steps and reaches the end",
          "[pruner][hooks][inc]") {
  Model<float> counted_model(pruner_test::uniform_specs(kBlocks, layout()), 13);
  PruneReport counted_report;
  const auto counted = run(Form::counted, counted_model, counted_report);
  REQUIRE(counted.size() == 12);
  for (long step = 0; step < 12; ++step) {
    INFO("global step " << step);
    const Index want = scheduled(step, 0.5);
    CHECK(masked_count(counted[static_cast<std::size_t>(step)]) == want);
    CHECK(same(counted[static_cast<std::size_t>(step)], weakest(want)));
  }
  // The last pruning step (9, in the third epoch) reached the final target: 6 of 12 heads.
  CHECK(masked_count(counted.back()) == 6);
  CHECK(counted_report.heads_removed() == 6);
  CHECK(counted_report.steps_skipped() == 0);  // step 0 is no pruning step here
  for (std::size_t b = 0; b < kBlocks; ++b)
    CHECK(counted_report.blocks[b].removed == weakest(6)[b].removed().ids);

  SECTION("the explicit form given the global step masks the same heads at every step") {
    Model<float> model(pruner_test::uniform_specs(kBlocks, layout()), 13);
    PruneReport report;
    const auto explicit_global = run(Form::global_step, model, report);
    for (std::size_t s = 0; s < 12; ++s) CHECK(same(explicit_global[s], counted[s]));
    CHECK(report.heads_removed() == 6);
    CHECK(snapshot(model) == snapshot(counted_model));
  }
  SECTION("the explicit form given INC's per-epoch step never gets past the first epoch's schedule") {
    Model<float> model(pruner_test::uniform_specs(kBlocks, layout()), 13);
    PruneReport report;
    const auto explicit_local = run(Form::epoch_step, model, report);
    // Local steps 0..3 only ever hit pruning steps 1 (target 0) and 3 (target 0.125: 1 head), in every
    // epoch: one head from global step 3 on, never the 6 of the final target.
    for (std::size_t s = 0; s < 12; ++s) CHECK(masked_count(explicit_local[s]) == (s < 3 ? 0 : 1));
    CHECK(report.heads_removed() == 1);
    CHECK(report.heads_removed() < counted_report.heads_removed());
  }
}

TEST_CASE("MhaPruner hooks: on_step_begin() skips a pruning step that has no evidence yet, and reports it",
          "[pruner][hooks][inc]") {
  const Gradients grads;
  Model<float> model(pruner_test::uniform_specs(kBlocks, layout()), 17);

  SECTION("gradient, one-shot at step 0: skipped, nothing ever masked, the skip in the report and its JSON") {
    const pruner_test::Snapshot before = snapshot(model);
    MhaPruner<mhaprune::Gradient> p;  // OneshotSchedule(0)
    p.attach(model.blocks, 0.5);
    CHECK_FALSE(p.on_step_begin());
    REQUIRE(p.skipped_steps().size() == 1);
    CHECK(p.skipped_steps()[0].step == 0);
    CHECK_THAT(p.skipped_steps()[0].reason, Contains("pruning step 0 skipped") && Contains("gradient") &&
                                                Contains("layers.0") && Contains("query.weight"));
    CHECK(masked_count(p.masks()) == 0);
    CHECK(snapshot(model) == before);
    CHECK_FALSE(p.on_step_begin());  // the same counted step again: handled, not skipped twice
    CHECK(p.skipped_steps().size() == 1);
    p.on_before_optimizer_step(grads.evidence);
    p.on_after_optimizer_step();
    CHECK_FALSE(p.on_step_begin());  // step 1: no pruning step
    const PruneReport r = p.finalize();
    CHECK(r.heads_removed() == 0);
    REQUIRE(r.steps_skipped() == 1);
    CHECK(r.skipped_steps[0].step == 0);
    CHECK(p.skipped_steps().empty());  // moved into the report
    const nlohmann::json j = nlohmann::json::parse(nlohmann::json(r).dump());
    CHECK(j.at("steps_skipped") == 1);
    REQUIRE(j.at("skipped_steps").size() == 1);
    CHECK(j.at("skipped_steps").at(0).at("step") == 0);
    CHECK(j.at("skipped_steps").at(0).at("reason").get<std::string>() == r.skipped_steps[0].reason);
    CHECK(j.at("totals").at("heads_removed") == 0);
  }
  SECTION("snip_momentum, iterative from step 0: step 0 skipped, the later steps reach their targets") {
    // Pruning steps 0, 2, 4 with linear targets 0, 0.25, 0.5 of 12 heads: 0, 3, 6.
    MhaPruner<mhaprune::SnipMomentum, GlobalSelection, IterativeSchedule> p(
        mhaprune::SnipMomentum{}, GlobalSelection{}, IterativeSchedule(0, 4, 2, mhaprune::Decay::linear));
    p.attach(model.blocks, 0.5);
    std::vector<Index> counts;
    for (long step = 0; step < 6; ++step) {
      p.on_step_begin();
      counts.push_back(masked_count(p.masks()));
      p.on_before_optimizer_step(grads.evidence);
      p.on_after_optimizer_step();
    }
    CHECK(counts == std::vector<Index>{0, 0, 3, 3, 6, 6});
    REQUIRE(p.skipped_steps().size() == 1);
    CHECK(p.skipped_steps()[0].step == 0);
    CHECK_THAT(p.skipped_steps()[0].reason, Contains("snip_momentum"));
    const PruneReport r = p.finalize();
    CHECK(r.heads_removed() == 6);
    CHECK(r.steps_skipped() == 1);
  }
  SECTION("magnitude needs no evidence: step 0 prunes, nothing is skipped") {
    MhaPruner<mhaprune::Magnitude> p;
    p.attach(model.blocks, 0.5);
    CHECK(p.on_step_begin());
    CHECK(masked_count(p.masks()) == 6);
    CHECK(p.skipped_steps().empty());
    CHECK(p.finalize().steps_skipped() == 0);
  }
  SECTION("the explicit form still throws there, and records nothing") {
    MhaPruner<mhaprune::Gradient> p;
    p.attach(model.blocks, 0.5);
    CHECK_THAT(exact_message<mhaprune::evidence_error>([&] { p.on_step_begin(0); }), Contains("gradient"));
    CHECK(p.skipped_steps().empty());
  }
  SECTION("prune() never skips: its report has an empty skip record") {
    MhaPruner<mhaprune::Gradient> p;
    const PruneReport r = p.prune(model.blocks, 0.25, grads.evidence);
    CHECK(r.heads_removed() == 3);
    const nlohmann::json j = r;
    CHECK(j.at("steps_skipped") == 0);
    CHECK(j.at("skipped_steps").empty());
  }
}

TEST_CASE("MhaPruner hooks: the two forms of on_step_begin cannot be mixed within one attach",
          "[pruner][hooks][inc]") {
  Model<float> model(pruner_test::uniform_specs(kBlocks, layout()), 19);
  MhaPruner<mhaprune::Magnitude, GlobalSelection, IterativeSchedule> p(
      mhaprune::Magnitude{}, GlobalSelection{}, IterativeSchedule(1, 3, 1, mhaprune::Decay::linear));
  p.attach(model.blocks, 0.5);
  CHECK_FALSE(p.on_step_begin());  // counted step 0: no pruning step
  p.on_after_optimizer_step();
  const pruner_test::Snapshot before = snapshot(model);
  // Step 2 would prune: the mixed call must throw before doing so.
  CHECK_THAT(exact_message<mhaprune::error>([&] { p.on_step_begin(2); }),
             Contains("on_step_begin(step) after on_step_begin()") && Contains("one form"));
  CHECK(snapshot(model) == before);
  CHECK(masked_count(p.masks()) == 0);
  CHECK(p.optimizer_steps() == 1);

  // A new attach starts with no form: the explicit one is now fine, and the counted one is refused.
  p.attach(model.blocks, 0.5);
  CHECK(p.optimizer_steps() == 0);
  CHECK(p.on_step_begin(2));  // target 0.25 of 12: 3 heads
  CHECK(masked_count(p.masks()) == 3);
  const pruner_test::Snapshot masked = snapshot(model);
  CHECK_THAT(exact_message<mhaprune::error>([&] { p.on_step_begin(); }),
             Contains("on_step_begin() after on_step_begin(step)"));
  CHECK(snapshot(model) == masked);
  CHECK(masked_count(p.masks()) == 3);
}

namespace {
/// Magnitude, except that it throws for every block while armed.
struct Flaky {
  bool armed = true;
  template <typename S>
  Eigen::VectorXd scores(const mhaprune::AttentionBlock<S>& b, const Evidence& ev) {
    if (armed) throw mhaprune::error("flaky: block \"" + b.name() + "\"");
    return mhaprune::Magnitude{}.scores(b, ev);
  }
};
}  // namespace

TEST_CASE("MhaPruner hooks: a counted step that throws is not marked handled; it runs again once fixed",
          "[pruner][hooks][inc][atomic]") {
  Model<float> model(pruner_test::uniform_specs(kBlocks, layout()), 23);
  const pruner_test::Snapshot before = snapshot(model);
  MhaPruner<Flaky> p;  // global, one-shot at step 0
  p.attach(model.blocks, 0.25);
  // Not an evidence_error: no skip, the error goes to the caller.
  CHECK_THAT(exact_message<mhaprune::error>([&] { p.on_step_begin(); }), Contains("layers.0"));
  CHECK(snapshot(model) == before);
  CHECK(p.skipped_steps().empty());
  p.criterion().armed = false;
  CHECK(p.on_step_begin());  // still counted step 0: it prunes now
  CHECK(masked_count(p.masks()) == 3);
  CHECK(p.skipped_steps().empty());
}

}  // namespace test_pruner_inc_loop
