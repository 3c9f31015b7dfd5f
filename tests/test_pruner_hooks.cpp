// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// MhaPruner's training-loop hooks: a simulated loop with synthetic gradients whose per-head scale
// fixes the order of importance, so the test knows which heads each pruning step must mask (the
// count from the schedule's formula, computed here); masked weights are zero after on_step_begin and
// again after the "optimizer" moved them; masks never come back; finalize() slices out exactly the
// masked heads and the result computes the masked forward. Also: pruning at step 0 before any
// optimizer step, GQA masking in both modes, failures that mask nothing, and hooks without attach.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <mhaprune/mhaprune.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/message_of.hpp"
#include "support/pruner_model.hpp"

namespace test_pruner_hooks {

namespace {

using Catch::Matchers::Contains;
using mhaprune::Evidence;
using mhaprune::EvidenceMap;
using mhaprune::GlobalSelection;
using mhaprune::GqaMode;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::IterativeSchedule;
using mhaprune::LocalSelection;
using mhaprune::Magnitude;
using mhaprune::MhaPruner;
using mhaprune::OneshotSchedule;
using mhaprune::PruneReport;
using mhaprune::SelectionOptions;
using mhaprune_test::exact_message;
using pruner_test::ColMatrix;
using pruner_test::Model;
using pruner_test::snapshot;
using pruner_test::Tensors;

/// Whether every element of a matrix block is zero.
template <typename Derived>
bool all_zero(const Eigen::DenseBase<Derived>& m) {
  for (Index r = 0; r < m.rows(); ++r)
    for (Index c = 0; c < m.cols(); ++c)
      if (mhaprune::detail::to_double(m.derived().coeff(r, c)) != 0.0) return false;
  return true;
}

/// Whether query head h's weights (Q rows, O columns) are all zero.
template <typename S>
bool query_head_zero(const Tensors<S>& t, Index d, Index h) {
  return all_zero(t.q.middleRows(h * d, d)) && all_zero(t.o.middleCols(h * d, d));
}
/// Whether key/value head g's weights (K and V rows) are all zero.
template <typename S>
bool kv_head_zero(const Tensors<S>& t, Index d, Index g) {
  return all_zero(t.k.middleRows(g * d, d)) && all_zero(t.v.middleRows(g * d, d));
}

/// The "optimizer": moves every weight, masked or not, by a small random step.
template <typename S>
void optimizer_step(Model<S>& m, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-0.01, 0.01);
  auto move = [&](auto& w) {
    for (Index r = 0; r < w.rows(); ++r)
      for (Index c = 0; c < w.cols(); ++c)
        w(r, c) = pruner_test::from_double<S>(mhaprune::detail::to_double(w(r, c)) + u(rng));
  };
  for (std::size_t i = 0; i < m.size(); ++i) {
    Tensors<S>& t = m.tensors(i);
    move(t.q), move(t.k), move(t.v), move(t.o);
  }
}

/// Synthetic weight gradients of one multi-head block: every element of head h's Q, K, V rows and
/// O columns is `scale[h]` times a factor in [0.9, 1.1], so any criterion that grows with |G| ranks
/// the heads by `scale`.
struct BlockGradients {
  ColMatrix<float> q, k, v, o;
  BlockGradients(const HeadLayout& L, const std::vector<double>& scale, std::mt19937& rng) {
    const Index d = L.head_dim(), D = L.model_dim(), H = L.heads();
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    q.resize(H * d, D), k.resize(H * d, D), v.resize(H * d, D), o.resize(D, H * d);
    for (Index h = 0; h < H; ++h) {
      const double s = scale[static_cast<std::size_t>(h)];
      for (Index a = h * d; a < (h + 1) * d; ++a) {
        for (Index j = 0; j < D; ++j) {
          q(a, j) = static_cast<float>(s * jitter(rng));
          k(a, j) = static_cast<float>(-s * jitter(rng));  // the sign does not matter to |G|
          v(a, j) = static_cast<float>(s * jitter(rng));
          o(j, a) = static_cast<float>(s * jitter(rng));
        }
      }
    }
  }
  Evidence evidence() const {
    Evidence ev;
    ev.with_gradient("query.weight", q)
        .with_gradient("key.weight", k)
        .with_gradient("value.weight", v)
        .with_gradient("output.weight", o);
    return ev;
  }
};

// Three blocks of four heads: 12 heads. Weakest first (block, head); no block has more than 3 among
// the 7 weakest, so min_heads (1) never interferes with the order.
constexpr std::array<std::pair<std::size_t, Index>, 12> kOrder{
    {{0, 1}, {1, 2}, {2, 0}, {0, 3}, {1, 0}, {2, 3}, {1, 3}, {0, 0}, {2, 1}, {0, 2}, {1, 1}, {2, 2}}};

/// scale[b][h] = 2^rank: a factor of 2 between neighbours outweighs the jitter and, for SNIP, the
/// spread of the heads' mean |W|.
std::vector<std::vector<double>> rank_scales() {
  std::vector<std::vector<double>> s(3, std::vector<double>(4, 0.0));
  for (std::size_t r = 0; r < kOrder.size(); ++r)
    s[kOrder[r].first][static_cast<std::size_t>(kOrder[r].second)] = std::ldexp(1.0, static_cast<int>(r));
  return s;
}

/// Which heads the first `n` of kOrder are, as a mask per block.
std::vector<HeadMask> weakest_masks(Index n) {
  std::vector<HeadMask> m(3, HeadMask(4));
  for (Index r = 0; r < n; ++r)
    m[kOrder[static_cast<std::size_t>(r)].first].remove(kOrder[static_cast<std::size_t>(r)].second);
  return m;
}

/// The number of heads masked after pruning at `step`, from the schedule's definition written out:
/// pruning steps start, start+f, ..., end; step j of m = (end-start)/f + 1 has the linear target
/// final * j/(m-1); the count is floor(target * all original heads).
Index expected_masked(long step, long start, long end, long f, double final_target, Index heads) {
  if (step < start) return 0;
  const long m = (end - start) / f + 1;
  const long j = std::min((step - start) / f, m - 1);
  const double target = final_target * static_cast<double>(j) / static_cast<double>(m - 1);
  return static_cast<Index>(std::floor(target * static_cast<double>(heads) + 1e-9));
}

/// The training loop of the tests below, for any criterion that grows with |G|.
template <typename Criterion>
void run_training_loop(Criterion criterion) {
  const HeadLayout L = HeadLayout::mha(4, 2, 8);
  const Index d = 2;
  Model<float> model(pruner_test::uniform_specs(3, L), 31);
  std::mt19937 rng(99);
  const auto scales = rank_scales();
  std::vector<BlockGradients> grads;
  for (std::size_t b = 0; b < 3; ++b) grads.emplace_back(L, scales[b], rng);
  EvidenceMap evidence;
  for (std::size_t b = 0; b < 3; ++b) evidence["layers." + std::to_string(b)] = grads[b].evidence();

  const long start = 2, end = 8, freq = 2;
  const double final_target = 0.6;  // pruning steps 2, 4, 6, 8 -> 0, 2 (2.4), 4 (4.8), 7 (7.2) heads
  MhaPruner<Criterion, GlobalSelection, IterativeSchedule> p(
      std::move(criterion), GlobalSelection{}, IterativeSchedule(start, end, freq, mhaprune::Decay::linear));
  p.attach(model.blocks, final_target);
  REQUIRE(p.masks().size() == 3);

  Index masked = 0;
  std::vector<Index> counts;
  for (long step = 0; step <= 10; ++step) {
    INFO("step " << step);
    const Index want = expected_masked(step, start, end, freq, final_target, 12);
    const std::vector<HeadMask> before = p.masks();
    const bool changed = p.on_step_begin(step);
    CHECK(changed == (want > masked));
    masked = want;
    counts.push_back(masked);

    // Exactly the `want` weakest are masked, and nothing masked before came back.
    const std::vector<HeadMask> expected = weakest_masks(want);
    for (std::size_t b = 0; b < 3; ++b) {
      for (Index h = 0; h < 4; ++h) {
        CHECK(p.masks()[b].keeps(h) == expected[b].keeps(h));
        if (!before[b].keeps(h)) CHECK_FALSE(p.masks()[b].keeps(h));
        // Masked heads are zero everywhere (MHA: K and V too); kept heads are not.
        const bool zero = query_head_zero(model.tensors(b), d, h) && kv_head_zero(model.tensors(b), d, h);
        CHECK(zero == !expected[b].keeps(h));
      }
    }

    // Backward pass, then the hooks around the optimizer.
    p.on_before_optimizer_step(evidence);
    optimizer_step(model, rng);
    if (want > 0) {
      const auto& [b, h] = kOrder[0];
      CHECK_FALSE(query_head_zero(model.tensors(b), d, h));  // the optimizer did move a masked head
    }
    p.on_after_optimizer_step();
    CHECK(p.step() == step + 1);
    CHECK(p.optimizer_steps() == step + 1);  // the pruner's own count agrees with the loop's here
    for (std::size_t b = 0; b < 3; ++b)
      for (Index h = 0; h < 4; ++h)
        if (!expected[b].keeps(h)) {
          CHECK(query_head_zero(model.tensors(b), d, h));
          CHECK(kv_head_zero(model.tensors(b), d, h));
        }
  }
  CHECK(counts == std::vector<Index>{0, 0, 0, 0, 2, 2, 4, 4, 7, 7, 7});

  // Weights at finalize: the masked heads' slices are zero in them. A second twin holds garbage there.
  auto at_finalize = Model<float>::copy_of(model);
  auto garbage = Model<float>::copy_of(model);
  const std::vector<HeadMask> final_masks = weakest_masks(7);
  for (std::size_t b = 0; b < 3; ++b)
    for (Index h = 0; h < 4; ++h)
      if (!final_masks[b].keeps(h)) {
        garbage->tensors(b).q.middleRows(h * d, d).setConstant(3.0f);
        garbage->tensors(b).k.middleRows(h * d, d).setConstant(-2.0f);
        garbage->tensors(b).v.middleRows(h * d, d).setConstant(1.0f);
        garbage->tensors(b).o.middleCols(h * d, d).setConstant(5.0f);
      }

  const PruneReport report = p.finalize();
  CHECK(report.target == final_target);
  CHECK(report.heads_removed() == 7);
  const Eigen::MatrixXd x = pruner_test::random_input(4, 6, 8);
  for (std::size_t b = 0; b < 3; ++b) {
    INFO("block " << b);
    std::vector<Index> removed;
    for (Index h = 0; h < 4; ++h)
      if (!final_masks[b].keeps(h)) removed.push_back(h);
    CHECK(report.blocks[b].removed == removed);
    CHECK(report.blocks[b].before.heads == 4);
    CHECK(model.blocks[b].layout().heads() == 4 - static_cast<Index>(removed.size()));
    CHECK(model.tensors(b).q.rows() == model.blocks[b].layout().heads() * d);
    CHECK(report.blocks[b].after.parameters == model.parameters(b));
    // The report's scores are the criterion's latest, one per head present before: they follow the
    // gradient scales among the heads still live.
    REQUIRE(report.blocks[b].scores.size() == 4);
    for (Index h = 0; h < 4; ++h)
      for (Index g = 0; g < 4; ++g)
        if (final_masks[b].keeps(h) && final_masks[b].keeps(g) &&
            scales[b][static_cast<std::size_t>(h)] < scales[b][static_cast<std::size_t>(g)])
          CHECK(report.blocks[b].scores[static_cast<std::size_t>(h)] <
                report.blocks[b].scores[static_cast<std::size_t>(g)]);

    // The sliced block computes the masked forward of the weights at finalize, with or without the
    // mask option (masked weights are zero), and whatever the masked slices held.
    CHECK(pruner_test::forward_difference(model.blocks[b], at_finalize->blocks[b], final_masks[b], x) < 1e-9);
    CHECK(pruner_test::forward_difference(model.blocks[b], at_finalize->blocks[b], HeadMask(4), x) < 1e-9);
    CHECK(pruner_test::forward_difference(model.blocks[b], garbage->blocks[b], final_masks[b], x) < 1e-9);
    CHECK(pruner_test::forward_difference(model.blocks[b], garbage->blocks[b], HeadMask(4), x) > 1e-6);
  }

  // The masks restart over the sliced blocks; the hooks go on without masking anything.
  REQUIRE(p.masks().size() == 3);
  for (std::size_t b = 0; b < 3; ++b) {
    CHECK(p.masks()[b].heads() == model.blocks[b].layout().heads());
    CHECK(p.masks()[b].removed_count() == 0);
  }
  const pruner_test::Snapshot after = snapshot(model);
  p.on_after_optimizer_step();
  CHECK(snapshot(model) == after);
  CHECK(p.finalize().heads_removed() == 0);
  CHECK(snapshot(model) == after);
}

}  // namespace

TEST_CASE("MhaPruner hooks: iterative masking with Gradient scores follows the schedule", "[pruner][hooks]") {
  run_training_loop(mhaprune::Gradient{});
}

TEST_CASE("MhaPruner hooks: iterative masking with SnipMomentum scores follows the schedule",
          "[pruner][hooks]") {
  run_training_loop(mhaprune::SnipMomentum{});
}

TEST_CASE("MhaPruner hooks: pruning at step 0, before any optimizer step, uses fresh magnitude scores",
          "[pruner][hooks]") {
  const auto specs = pruner_test::uniform_specs(2, HeadLayout::mha(4, 2, 8));
  Model<double> model(specs, 41), twin(specs, 41);
  MhaPruner<Magnitude, LocalSelection, OneshotSchedule, double> p;  // one-shot at step 0
  p.attach(model.blocks, 0.5);
  CHECK(p.on_step_begin(0));
  const Eigen::MatrixXd x = pruner_test::random_input(3, 4, 8);
  for (std::size_t b = 0; b < 2; ++b) {
    const auto scores = pruner_test::magnitude_scores(twin.tensors(b), twin.blocks[b].layout());
    const std::vector<Index> weakest = pruner_test::weakest(scores, 2);
    CHECK(p.masks()[b].removed().ids == weakest);
    for (Index h : weakest) CHECK(query_head_zero(model.tensors(b), 2, h));
    // The masked block computes what the original computes with the mask.
    const HeadMask mask = pruner_test::mask_of(twin.blocks[b], weakest);
    mhaprune::reference::AttentionOptions o;
    o.mask = mask;
    CHECK((mhaprune::reference::attention(x, model.blocks[b]) -
           mhaprune::reference::attention(x, twin.blocks[b], o))
              .cwiseAbs()
              .maxCoeff() < 1e-12);
  }
  CHECK_FALSE(p.on_step_begin(1));  // not a pruning step: nothing more
  const PruneReport r = p.finalize();
  for (std::size_t b = 0; b < 2; ++b) {
    const auto scores = pruner_test::magnitude_scores(twin.tensors(b), twin.blocks[b].layout());
    CHECK(r.blocks[b].removed == pruner_test::weakest(scores, 2));
    CHECK(model.blocks[b].layout().heads() == 2);
  }
}

TEST_CASE("MhaPruner hooks: GQA masking in both modes, then finalize", "[pruner][hooks][gqa]") {
  const HeadLayout gqa(8, 2, 2, 8);  // groups of 4
  const auto specs = pruner_test::uniform_specs(2, gqa);
  Model<float> model(specs, 51);
  SelectionOptions o;
  const Eigen::MatrixXd x = pruner_test::random_input(5, 5, 8);
  std::mt19937 rng(7);

  SECTION("uniform_per_group: one more head from every group at each pruning step; K and V stay") {
    o.gqa_mode = GqaMode::uniform_per_group;
    // Pruning steps 0, 1, 2: targets 0, 0.25, 0.5 -> 0, 1, 2 heads per group.
    MhaPruner<Magnitude, LocalSelection, IterativeSchedule> p(
        Magnitude{}, LocalSelection{}, IterativeSchedule(0, 2, 1, mhaprune::Decay::linear), o);
    p.attach(model.blocks, 0.5);
    std::vector<Eigen::VectorXd> scores(2);  // what the pruner cached at the last optimizer step
    for (long step = 0; step <= 3; ++step) {
      INFO("step " << step);
      const std::vector<HeadMask> before = p.masks();
      p.on_step_begin(step);
      const Index per_group = std::min<long>(step, 2);
      for (std::size_t b = 0; b < 2; ++b) {
        for (Index g = 0; g < 2; ++g) {
          Index n = 0;
          for (Index h = g * 4; h < g * 4 + 4; ++h) {
            n += p.masks()[b].keeps(h) ? 0 : 1;
            if (!before[b].keeps(h)) CHECK_FALSE(p.masks()[b].keeps(h));
            if (!p.masks()[b].keeps(h)) CHECK(query_head_zero(model.tensors(b), 2, h));
          }
          CHECK(n == per_group);
          CHECK_FALSE(kv_head_zero(model.tensors(b), 2, g));
          // The heads masked at this step were the weakest live ones of the group by cached score.
          if (step >= 1 && step <= 2) {
            double newly_max = -1, live_min = 1e300;
            for (Index h = g * 4; h < g * 4 + 4; ++h) {
              if (!before[b].keeps(h)) continue;
              if (!p.masks()[b].keeps(h))
                newly_max = std::max(newly_max, scores[b](h));
              else
                live_min = std::min(live_min, scores[b](h));
            }
            CHECK(newly_max <= live_min);
          }
        }
      }
      p.on_before_optimizer_step();
      for (std::size_t b = 0; b < 2; ++b)
        scores[b] = pruner_test::magnitude_scores(model.tensors(b), model.blocks[b].layout());
      optimizer_step(model, rng);
      p.on_after_optimizer_step();
    }
    auto twin = Model<float>::copy_of(model);
    const std::vector<HeadMask> masks = p.masks();
    const PruneReport r = p.finalize();
    for (std::size_t b = 0; b < 2; ++b) {
      CHECK(r.blocks[b].removed == masks[b].removed().ids);
      CHECK(r.blocks[b].removed_kv.empty());
      CHECK(model.blocks[b].layout().heads() == 4);
      CHECK(model.blocks[b].layout().kv_heads() == 2);
      CHECK(pruner_test::forward_difference(model.blocks[b], twin->blocks[b], masks[b], x) < 1e-9);
    }
  }
  SECTION("whole_groups: the weaker group is masked with its K and V, then sliced out") {
    o.gqa_mode = GqaMode::whole_groups;
    MhaPruner<Magnitude, LocalSelection> p(Magnitude{}, LocalSelection{}, OneshotSchedule(1), o);
    p.attach(model.blocks, 0.5);
    CHECK_FALSE(p.on_step_begin(0));
    p.on_before_optimizer_step();
    std::vector<Index> weaker(2);
    for (std::size_t b = 0; b < 2; ++b) {
      const auto s = pruner_test::magnitude_scores(model.tensors(b), model.blocks[b].layout());
      weaker[b] = s.segment(0, 4).mean() <= s.segment(4, 4).mean() ? 0 : 1;
    }
    optimizer_step(model, rng);
    p.on_after_optimizer_step();
    CHECK(p.on_step_begin(1));
    for (std::size_t b = 0; b < 2; ++b) {
      const Index g = weaker[b];
      CHECK(kv_head_zero(model.tensors(b), 2, g));
      CHECK_FALSE(kv_head_zero(model.tensors(b), 2, 1 - g));
      for (Index h = 0; h < 8; ++h) CHECK(p.masks()[b].keeps(h) == (h / 4 != g));
    }
    optimizer_step(model, rng);
    p.on_after_optimizer_step();
    for (std::size_t b = 0; b < 2; ++b) CHECK(kv_head_zero(model.tensors(b), 2, weaker[b]));
    auto twin = Model<float>::copy_of(model);
    const std::vector<HeadMask> masks = p.masks();
    const PruneReport r = p.finalize();
    for (std::size_t b = 0; b < 2; ++b) {
      CHECK(r.blocks[b].removed_kv == std::vector<Index>{weaker[b]});
      CHECK(model.blocks[b].kv_head_ids() == std::vector<Index>{1 - weaker[b]});
      CHECK(model.tensors(b).k.rows() == 2);
      CHECK(pruner_test::forward_difference(model.blocks[b], twin->blocks[b], masks[b], x) < 1e-9);
      CHECK(pruner_test::forward_difference(model.blocks[b], twin->blocks[b], HeadMask(8), x) < 1e-9);
    }
  }
}

namespace {

/// Magnitude, except that it throws for one block once armed.
struct ArmedCriterion {
  std::string bad;
  bool armed = false;
  template <typename S>
  Eigen::VectorXd scores(const mhaprune::AttentionBlock<S>& b, const Evidence& ev) {
    if (armed && b.name() == bad) throw mhaprune::evidence_error("armed: block \"" + b.name() + "\"");
    return Magnitude{}.scores(b, ev);
  }
};

}  // namespace

TEST_CASE("MhaPruner hooks: a failing pruning step or finalize changes no block", "[pruner][hooks][atomic]") {
  const auto specs = pruner_test::uniform_specs(4, HeadLayout::mha(4, 2, 8));
  Model<float> model(specs, 61);
  MhaPruner<ArmedCriterion, GlobalSelection, IterativeSchedule> p(
      ArmedCriterion{"layers.2"}, GlobalSelection{}, IterativeSchedule(0, 2, 1, mhaprune::Decay::linear));
  p.attach(model.blocks, 0.5);
  CHECK_FALSE(p.on_step_begin(0));  // target 0
  CHECK(p.on_step_begin(1));        // target 0.25: 4 of 16
  const pruner_test::Snapshot masked = snapshot(model);
  const std::vector<HeadMask> masks = p.masks();
  auto same_masks = [&] {
    for (std::size_t b = 0; b < 4; ++b) CHECK(p.masks()[b].removed().ids == masks[b].removed().ids);
  };

  SECTION("the criterion throws for the third block at a pruning step") {
    p.criterion().armed = true;
    CHECK_THAT(exact_message<mhaprune::evidence_error>([&] { p.on_step_begin(2); }), Contains("layers.2"));
    CHECK(snapshot(model) == masked);
    same_masks();
    SECTION("and finalize still slices what was masked") { CHECK(p.finalize().heads_removed() == 4); }
  }
  SECTION("a tensor of the third block was resized before the pruning step") {
    model.tensors(2).v.conservativeResize(6, 8);
    const pruner_test::Snapshot resized = snapshot(model);
    CHECK_THAT(exact_message<mhaprune::shape_error>([&] { p.on_step_begin(2); }),
               Contains("layers.2") && Contains("value.weight"));
    CHECK(snapshot(model) == resized);
    same_masks();
  }
  SECTION("a tensor of the third block was resized before finalize") {
    model.tensors(2).o.conservativeResize(8, 6);
    const pruner_test::Snapshot resized = snapshot(model);
    CHECK_THAT(exact_message<mhaprune::shape_error>([&] { p.finalize(); }),
               Contains("layers.2") && Contains("output.weight"));
    CHECK(snapshot(model) == resized);
    same_masks();
  }
  SECTION("a block lost heads behind the pruner's back") {
    mhaprune::remove_heads(model.blocks[1], mhaprune::Positions{0});
    const pruner_test::Snapshot changed = snapshot(model);
    // Its mask still covers 4 heads: reading it against 3 would be out of range, and slicing its
    // positions now would take the wrong heads.
    CHECK_THAT(exact_message<mhaprune::head_id_error>([&] { p.on_step_begin(2); }),
               Contains("layers.1") && Contains("has 3 heads") && Contains("4"));
    CHECK(snapshot(model) == changed);
    same_masks();
    exact_message<mhaprune::head_id_error>([&] { p.on_after_optimizer_step(); });
    CHECK(snapshot(model) == changed);
    CHECK_THAT(exact_message<mhaprune::head_id_error>([&] { p.finalize(); }), Contains("layers.1"));
    CHECK(snapshot(model) == changed);
  }
}

TEST_CASE("MhaPruner hooks: a criterion that needs evidence cannot prune before any optimizer step",
          "[pruner][hooks]") {
  const auto specs = pruner_test::uniform_specs(2, HeadLayout::mha(4, 2, 8));
  Model<float> model(specs, 71);
  const pruner_test::Snapshot before = snapshot(model);
  MhaPruner<mhaprune::Gradient> p;
  p.attach(model.blocks, 0.5);
  CHECK_THAT(exact_message<mhaprune::evidence_error>([&] { p.on_step_begin(0); }),
             Contains("gradient") && Contains("layers.0") && Contains("query.weight"));
  CHECK(snapshot(model) == before);
  CHECK(p.masks()[0].removed_count() == 0);
  CHECK(p.masks()[1].removed_count() == 0);
  // The explicit form throws rather than skipping, so nothing is recorded as skipped (the counted form,
  // on_step_begin(), skips and records instead: test_pruner_inc_loop.cpp).
  CHECK(p.skipped_steps().empty());
  CHECK(p.finalize().steps_skipped() == 0);
}

TEST_CASE("MhaPruner hooks: without attach they do nothing; a bad attach keeps nothing", "[pruner][hooks]") {
  const auto specs = pruner_test::uniform_specs(2, HeadLayout::mha(4, 2, 8));
  Model<float> model(specs, 81);
  const pruner_test::Snapshot before = snapshot(model);
  MhaPruner<> p;
  CHECK_FALSE(p.on_step_begin(0));
  p.on_before_optimizer_step();
  EvidenceMap ev;
  ev["layers.0"] = Evidence{};
  p.on_before_optimizer_step(ev);
  p.on_after_optimizer_step();
  CHECK(p.masks().empty());
  const PruneReport r = p.finalize();
  CHECK(r.blocks.empty());
  CHECK(r.heads_removed() == 0);
  CHECK(snapshot(model) == before);

  // An invalid target or block list attaches nothing.
  CHECK_THAT(exact_message<mhaprune::error>([&] { p.attach(model.blocks, 1.5); }), Contains("[0, 1]"));
  model.tensors(1).q.conservativeResize(6, 8);
  exact_message<mhaprune::shape_error>([&] { p.attach(model.blocks, 0.5); });
  CHECK(p.masks().empty());
  CHECK_FALSE(p.on_step_begin(0));
}

TEST_CASE("MhaPruner hooks: evidence one block rejects leaves the criterion's state unchanged for all",
          "[pruner][hooks][atomic]") {
  const HeadLayout L = HeadLayout::mha(4, 2, 8);
  const auto specs = pruner_test::uniform_specs(2, L);
  Model<float> model(specs, 91);
  MhaPruner<mhaprune::SnipMomentum> p;
  p.attach(model.blocks, 0.5);
  std::mt19937 rng(5);
  const BlockGradients good(L, std::vector<double>(4, 1.0), rng);
  BlockGradients bad(L, std::vector<double>(4, 1.0), rng);
  bad.q.conservativeResize(L.heads() * L.head_dim() - 1, L.model_dim());

  EvidenceMap step1{{"layers.0", good.evidence()}, {"layers.1", good.evidence()}};
  p.on_before_optimizer_step(step1);
  REQUIRE(p.criterion().state("layers.0") != nullptr);
  const auto state0 = *p.criterion().state("layers.0");

  EvidenceMap step2{{"layers.0", good.evidence()}, {"layers.1", bad.evidence()}};
  CHECK_THROWS_AS(p.on_before_optimizer_step(step2), mhaprune::error);
  // The first block's running scores did not take step 2's update although its evidence was fine.
  const auto& after = *p.criterion().state("layers.0");
  CHECK(after.steps == state0.steps);
  CHECK(after.sums == state0.sums);
  CHECK(after.elements == state0.elements);
}

}  // namespace test_pruner_hooks
