// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// MhaPruner::prune, one call at a time: the default pruner on a vector of blocks, of pointers and of
// reference_wrappers, checked against magnitude scores computed from the matrices and a global
// ranking done here; the report's counts against the tensors' real sizes; the pruned forward against
// the original's with the same heads masked. Whole-call atomicity (a resized tensor, a throwing
// criterion, an invalid selection in the third of four blocks: no block changes). Explicit original
// ids over two calls (Hugging Face `prune_heads`), local against global scope, both GQA modes, and
// the min_heads / round_to / max ratio / exact_target guards, all through the pruner.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <functional>
#include <limits>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/message_of.hpp"
#include "support/pruner_model.hpp"

namespace test_pruner_oneshot {

namespace {

using Catch::Matchers::Contains;
using mhaprune::AttentionBlock;
using mhaprune::BlockScores;
using mhaprune::ExplicitSelection;
using mhaprune::GlobalSelection;
using mhaprune::GqaMode;
using mhaprune::HeadLayout;
using mhaprune::Index;
using mhaprune::LocalSelection;
using mhaprune::Magnitude;
using mhaprune::MhaPruner;
using mhaprune::Normalization;
using mhaprune::OneshotSchedule;
using mhaprune::PruneReport;
using mhaprune::Selection;
using mhaprune::SelectionOptions;
using mhaprune_test::exact_message;
using pruner_test::Model;
using pruner_test::snapshot;

/// Heads the global policy must remove, computed here: all heads ranked by (score, block, position),
/// the weakest taken while each block keeps at least `min_heads`, until `k` are taken. Returns the
/// original ids per block, ascending.
std::vector<std::vector<Index>> global_oracle(const std::vector<Eigen::VectorXd>& scores,
                                              const std::vector<std::vector<Index>>& ids, Index k,
                                              Index min_heads = 1) {
  std::vector<std::tuple<double, std::size_t, Index>> all;
  for (std::size_t b = 0; b < scores.size(); ++b)
    for (Index h = 0; h < scores[b].size(); ++h) all.emplace_back(scores[b](h), b, h);
  std::sort(all.begin(), all.end());
  std::vector<std::vector<Index>> out(scores.size());
  Index taken = 0;
  for (const auto& [s, b, h] : all) {
    (void)s;
    if (taken == k) break;
    if (scores[b].size() - static_cast<Index>(out[b].size()) <= min_heads) continue;
    out[b].push_back(ids[b][static_cast<std::size_t>(h)]);
    ++taken;
  }
  for (auto& v : out) std::sort(v.begin(), v.end());
  return out;
}

template <typename S>
std::vector<Eigen::VectorXd> oracle_scores(const Model<S>& m) {
  std::vector<Eigen::VectorXd> out;
  for (std::size_t i = 0; i < m.size(); ++i)
    out.push_back(pruner_test::magnitude_scores(m.tensors(i), m.blocks[i].layout()));
  return out;
}

template <typename S>
std::vector<std::vector<Index>> current_ids(const Model<S>& m) {
  std::vector<std::vector<Index>> out;
  for (const auto& b : m.blocks) out.push_back(b.head_ids());
  return out;
}

std::vector<Index> complement(Index n, const std::vector<Index>& removed) {
  std::vector<Index> out;
  for (Index h = 0; h < n; ++h)
    if (std::find(removed.begin(), removed.end(), h) == removed.end()) out.push_back(h);
  return out;
}

template <typename S>
double tolerance() {
  return std::is_same_v<S, float> || std::is_same_v<S, double> ? 1e-6 : 1e-3;
}

/// Everything a report and the pruned model must say after a one-shot prune of an unpruned model:
/// `expected` removed ids per block; `twin` is the same model, never pruned.
template <typename S>
void check_pruned(const PruneReport& report, const Model<S>& pruned, const Model<S>& twin,
                  const std::vector<std::vector<Index>>& expected,
                  const std::vector<Eigen::VectorXd>& scores_before) {
  REQUIRE(report.blocks.size() == pruned.size());
  std::int64_t params_before = 0, params_after = 0, flops_before = 0, flops_after = 0, heads_after = 0;
  const Eigen::MatrixXd x = pruner_test::random_input(7, 5, pruned.blocks[0].layout().model_dim());
  for (std::size_t i = 0; i < pruned.size(); ++i) {
    const auto& r = report.blocks[i];
    const auto& block = pruned.blocks[i];
    const auto& original = twin.blocks[i];
    const Index H = original.layout().heads();
    INFO("block " << r.name);
    CHECK(r.name == block.name());
    CHECK(r.removed == expected[i]);
    CHECK(r.before.heads == H);
    CHECK(r.after.heads == H - static_cast<Index>(expected[i].size()));
    CHECK(block.head_ids() == complement(H, expected[i]));
    CHECK(r.head_ids == original.head_ids());
    REQUIRE(r.scores.size() == static_cast<std::size_t>(H));
    for (Index h = 0; h < H; ++h)
      CHECK(r.scores[static_cast<std::size_t>(h)] ==
            Approx(scores_before[i](h)).epsilon(tolerance<S>()).margin(1e-12));

    // Counts from the tensors as they are now, not from the layout.
    CHECK(r.before.parameters == twin.parameters(i));
    CHECK(r.after.parameters == pruned.parameters(i));
    CHECK(r.before.projection_flops_per_token == 2 * twin.weight_elements(i));
    CHECK(r.after.projection_flops_per_token == 2 * pruned.weight_elements(i));
    CHECK(r.after.attention_flops_per_context_token == 4 * pruned.tensors(i).q.rows());
    CHECK(r.after.kv_heads * block.layout().head_dim() == pruned.tensors(i).k.rows());
    params_before += twin.parameters(i);
    params_after += pruned.parameters(i);
    flops_before += 2 * twin.weight_elements(i);
    flops_after += 2 * pruned.weight_elements(i);
    heads_after += pruned.tensors(i).q.rows() / block.layout().head_dim();

    // Survivors are the twin's rows and columns, bit for bit.
    const Index d = block.layout().head_dim();
    for (Index p = 0; p < block.layout().heads(); ++p) {
      const Index id = block.head_ids()[static_cast<std::size_t>(p)];
      CHECK(pruned.tensors(i).q.middleRows(p * d, d) == twin.tensors(i).q.middleRows(id * d, d));
      CHECK(pruned.tensors(i).o.middleCols(p * d, d) == twin.tensors(i).o.middleCols(id * d, d));
    }

    // The pruned block computes what the original computes with those heads masked.
    const auto mask = pruner_test::mask_of(original, expected[i]);
    CHECK(pruner_test::forward_difference(block, original, mask, x) < 1e-9);
    if (!expected[i].empty()) {
      // ... and that differs from the unmasked original, so the comparison above has teeth.
      CHECK(pruner_test::forward_difference(block, original, mhaprune::HeadMask(H), x) > 1e-6);
    }
  }
  const auto before = report.total(false), after = report.total(true);
  CHECK(before.parameters == params_before);
  CHECK(after.parameters == params_after);
  CHECK(before.projection_flops_per_token == flops_before);
  CHECK(after.projection_flops_per_token == flops_after);
  CHECK(after.heads == heads_after);
  Index removed = 0;
  for (const auto& e : expected) removed += static_cast<Index>(e.size());
  CHECK(report.heads_removed() == removed);
  CHECK(before.heads - after.heads == removed);
}

// 4 blocks of 4 heads: 16 heads, target 0.3 -> floor(4.8) = 4 heads go.
const HeadLayout kMha = HeadLayout::mha(4, 2, 8);

}  // namespace

TEST_CASE("MhaPruner<>: default arguments prune 30% of all heads globally by mean |W|", "[pruner][oneshot]") {
  Model<float> model(pruner_test::uniform_specs(4, kMha), 11), twin(pruner_test::uniform_specs(4, kMha), 11);
  const auto scores = oracle_scores(model);
  const auto expected = global_oracle(scores, current_ids(model), 4);
  Index total = 0;
  for (const auto& e : expected) total += static_cast<Index>(e.size());
  REQUIRE(total == 4);

  MhaPruner<> p;  // Magnitude, GlobalSelection, OneshotSchedule, float
  static_assert(std::is_same_v<MhaPruner<>, MhaPruner<Magnitude, GlobalSelection, OneshotSchedule, float>>);
  PruneReport report;
  SECTION("std::vector<AttentionBlock<float>>") { report = p.prune(model.blocks, 0.3); }
  SECTION("std::vector<AttentionBlock<float>*>") {
    std::vector<AttentionBlock<float>*> blocks;
    for (auto& b : model.blocks) blocks.push_back(&b);
    report = p.prune(blocks, 0.3);
  }
  SECTION("std::vector<std::reference_wrapper<AttentionBlock<float>>>") {
    std::vector<std::reference_wrapper<AttentionBlock<float>>> blocks(model.blocks.begin(),
                                                                      model.blocks.end());
    report = p.prune(blocks, 0.3);
  }
  CHECK(report.target == 0.3);
  check_pruned(report, model, twin, expected, scores);
  CHECK(report.total(false).heads == 16);
  CHECK(report.total(true).heads == 12);
}

TEMPLATE_TEST_CASE("MhaPruner: one-shot global prune for every scalar type, with biases", "[pruner][oneshot]",
                   float, double, Eigen::half, Eigen::bfloat16) {
  // Two layouts in one model: heads compete across blocks of different widths.
  const std::vector<pruner_test::BlockSpec> specs{{"enc.0", HeadLayout::mha(4, 2, 8)},
                                                  {"enc.1", HeadLayout::mha(6, 2, 8)},
                                                  {"enc.2", HeadLayout::mha(4, 2, 8)}};
  Model<TestType> model(specs, 5, /*biases=*/true), twin(specs, 5, true);
  const auto scores = oracle_scores(model);
  // 14 heads, target 0.5 -> 7 go.
  const auto expected = global_oracle(scores, current_ids(model), 7);

  MhaPruner<Magnitude, GlobalSelection, OneshotSchedule, TestType> p;
  const std::vector<Eigen::VectorXd> scored = p.score(model.blocks);
  REQUIRE(scored.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(scored[i].isApprox(scores[i], tolerance<TestType>()));
  CHECK(snapshot(model) == snapshot(twin));  // scoring changes nothing

  const PruneReport report = p.prune(model.blocks, 0.5);
  check_pruned(report, model, twin, expected, scores);
  CHECK(report.total(true).heads == 7);
}

TEST_CASE("MhaPruner: targets are cumulative fractions of the original heads across calls",
          "[pruner][oneshot]") {
  Model<double> model(pruner_test::uniform_specs(4, kMha), 3);
  MhaPruner<Magnitude, GlobalSelection, OneshotSchedule, double> p;

  const auto before = snapshot(model);
  const PruneReport none = p.prune(model.blocks, 0.0);
  CHECK(none.heads_removed() == 0);
  CHECK(snapshot(model) == before);
  for (const auto& b : none.blocks) {
    CHECK(b.before.heads == b.after.heads);
    CHECK(b.before.parameters == b.after.parameters);
    CHECK(b.removed.empty());
  }

  const PruneReport first = p.prune(model.blocks, 0.25);  // 4 of 16
  CHECK(first.heads_removed() == 4);
  // The second call sees the pruned blocks: the weakest 4 of the 12 left make 8 of 16.
  const auto scores = oracle_scores(model);
  const auto expected = global_oracle(scores, current_ids(model), 4);
  const PruneReport second = p.prune(model.blocks, 0.5);
  CHECK(second.heads_removed() == 4);
  CHECK(second.total(false).heads == 12);
  CHECK(second.total(true).heads == 8);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(second.blocks[i].removed == expected[i]);
    CHECK(second.blocks[i].head_ids.size() == static_cast<std::size_t>(scores[i].size()));
  }
  // Asking for what is already gone removes nothing more.
  CHECK(p.prune(model.blocks, 0.5).heads_removed() == 0);
  CHECK(p.prune(model.blocks, 0.3).heads_removed() == 0);
}

namespace {

/// Weight gradients for every block of a model, each element of query head h's Q rows and O columns
/// equal to scale[b][h] and every K and V element 1, so Gradient scores head h (2*scale + 2) / 4.
/// Owns the matrices the evidence views.
struct Gradients {
  std::vector<std::array<pruner_test::ColMatrix<float>, 4>> m;
  mhaprune::EvidenceMap evidence;

  Gradients(const Model<float>& model, const std::vector<std::vector<double>>& scale) {
    m.resize(model.size());
    for (std::size_t b = 0; b < model.size(); ++b) {
      const HeadLayout& L = model.blocks[b].layout();
      const Index d = L.head_dim(), D = L.model_dim();
      auto& [q, k, v, o] = m[b];
      q.resize(L.query_width(), D), o.resize(D, L.query_width());
      k.setOnes(L.kv_width(), D), v.setOnes(L.kv_width(), D);
      for (Index h = 0; h < L.heads(); ++h) {
        q.middleRows(h * d, d).setConstant(static_cast<float>(scale[b][static_cast<std::size_t>(h)]));
        o.middleCols(h * d, d).setConstant(static_cast<float>(scale[b][static_cast<std::size_t>(h)]));
      }
    }
    for (std::size_t b = 0; b < model.size(); ++b) {
      mhaprune::Evidence ev;
      ev.with_gradient("query.weight", m[b][0])
          .with_gradient("key.weight", m[b][1])
          .with_gradient("value.weight", m[b][2])
          .with_gradient("output.weight", m[b][3]);
      evidence[model.blocks[b].name()] = ev;
    }
  }
};

}  // namespace

TEST_CASE("MhaPruner<Gradient>: prune with evidence given by block name", "[pruner][oneshot]") {
  const auto specs = pruner_test::uniform_specs(2, kMha);
  Model<float> model(specs, 23), twin(specs, 23);
  const Gradients g(model, {{3, 1, 4, 2}, {8, 6, 5, 7}});
  MhaPruner<mhaprune::Gradient> p;

  // Evidence missing for the second block: nothing changes.
  mhaprune::EvidenceMap partial = g.evidence;
  partial.erase("layers.1");
  CHECK_THAT(exact_message<mhaprune::evidence_error>([&] { p.prune(model.blocks, 0.25, partial); }),
             Contains("layers.1") && Contains("query.weight"));
  CHECK(snapshot(model) == snapshot(twin));

  // 8 heads, target 0.25: the two with the smallest gradients, both in the first block.
  const PruneReport r = p.prune(model.blocks, 0.25, g.evidence);
  CHECK(r.blocks[0].removed == std::vector<Index>{1, 3});
  CHECK(r.blocks[1].removed.empty());
  const std::vector<double> expected{2.0, 1.0, 2.5, 1.5};
  for (std::size_t h = 0; h < 4; ++h) CHECK(r.blocks[0].scores[h] == Approx(expected[h]));
  const Eigen::MatrixXd x = pruner_test::random_input(3, 4, 8);
  CHECK(pruner_test::forward_difference(model.blocks[0], twin.blocks[0],
                                        pruner_test::mask_of(twin.blocks[0], {1, 3}), x) < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Whole-call atomicity

namespace {

/// Magnitude, except that it throws (or misbehaves) for one block.
struct FaultyCriterion {
  enum class Fault { throws, wrong_size, nan };
  std::string bad;
  Fault fault = Fault::throws;
  static constexpr const char* name() { return "faulty"; }
  template <typename S>
  Eigen::VectorXd scores(const AttentionBlock<S>& b, const mhaprune::Evidence& ev) {
    Eigen::VectorXd s = Magnitude{}.scores(b, ev);
    if (b.name() != bad) return s;
    switch (fault) {
      case Fault::throws:
        throw mhaprune::evidence_error("faulty: no evidence for block \"" + b.name() + "\"");
      case Fault::wrong_size:
        return Eigen::VectorXd::Ones(s.size() + 1);
      case Fault::nan:
        s(1) = std::numeric_limits<double>::quiet_NaN();
        return s;
    }
    return s;
  }
};

/// A mask policy given as a function of the blocks.
struct FnPolicy {
  std::function<Selection(const std::vector<BlockScores>&)> f;
  Selection select(const std::vector<BlockScores>& blocks, double, const SelectionOptions&) const {
    return f(blocks);
  }
};

/// One head from each key/value group of every block (a valid uniform removal), except block 2,
/// which gets `bad`.
FnPolicy valid_except_block_2(std::vector<Index> bad) {
  return FnPolicy{[bad](const std::vector<BlockScores>& blocks) {
    Selection s;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      if (i == 2) {
        s.push_back(bad);
      } else {
        std::vector<Index> one_per_group;
        for (Index g = 0; g < blocks[i].kv_heads; ++g) one_per_group.push_back(g * blocks[i].group_size());
        s.push_back(one_per_group);
      }
    }
    return s;
  }};
}

}  // namespace

TEST_CASE("MhaPruner: a failure in any block changes no block", "[pruner][oneshot][atomic]") {
  // GQA blocks (4 query heads in 2 groups), so that a ragged selection is possible.
  const HeadLayout gqa(4, 2, 2, 8);
  Model<float> model(pruner_test::uniform_specs(4, gqa), 21, /*biases=*/true);
  const pruner_test::Snapshot before = snapshot(model);

  SECTION("the caller resized a tensor of the third block after binding it") {
    model.tensors(2).k.conservativeResize(2, 8);
    const pruner_test::Snapshot resized = snapshot(model);
    MhaPruner<> p;
    const std::string what = exact_message<mhaprune::shape_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("layers.2") && Contains("key.weight") && Contains("[2, 8]"));
    CHECK(snapshot(model) == resized);
  }
  SECTION("the criterion throws for the third block") {
    MhaPruner<FaultyCriterion> p(FaultyCriterion{"layers.2"});
    const std::string what = exact_message<mhaprune::evidence_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("layers.2"));
    CHECK(snapshot(model) == before);
  }
  SECTION("the evidence lacks the third block's gradients") {
    const Gradients g(model, std::vector<std::vector<double>>(4, {1, 2, 3, 4}));
    mhaprune::EvidenceMap partial = g.evidence;
    partial.erase("layers.2");
    MhaPruner<mhaprune::Gradient> p;
    const std::string what =
        exact_message<mhaprune::evidence_error>([&] { p.prune(model.blocks, 0.5, partial); });
    CHECK_THAT(what, Contains("layers.2") && Contains("query.weight"));
    CHECK(snapshot(model) == before);
    CHECK(p.prune(model.blocks, 0.5, g.evidence).heads_removed() == 8);  // the control
  }
  SECTION("the criterion returns a wrong number of scores for the third block") {
    MhaPruner<FaultyCriterion> p(FaultyCriterion{"layers.2", FaultyCriterion::Fault::wrong_size});
    const std::string what = exact_message<mhaprune::shape_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("faulty") && Contains("layers.2") && Contains("5 scores for 4"));
    CHECK(snapshot(model) == before);
  }
  SECTION("the criterion returns a NaN for the third block") {
    MhaPruner<FaultyCriterion> p(FaultyCriterion{"layers.2", FaultyCriterion::Fault::nan});
    const std::string what = exact_message<mhaprune::error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("layers.2") && Contains("not finite"));
    CHECK(snapshot(model) == before);
  }
  SECTION("the policy returns a ragged GQA removal for the third block") {
    MhaPruner<Magnitude, FnPolicy> p(Magnitude{}, valid_except_block_2({0}));
    const std::string what = exact_message<mhaprune::removal_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("layers.2") && Contains("different numbers of query heads"));
    CHECK(snapshot(model) == before);
  }
  SECTION("the policy removes every head of the third block") {
    MhaPruner<Magnitude, FnPolicy> p(Magnitude{}, valid_except_block_2({0, 1, 2, 3}));
    const std::string what = exact_message<mhaprune::removal_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("layers.2") && Contains("empty block"));
    CHECK(snapshot(model) == before);
  }
  SECTION("the policy names a position out of range in the third block") {
    MhaPruner<Magnitude, FnPolicy> p(Magnitude{}, valid_except_block_2({0, 7}));
    const std::string what = exact_message<mhaprune::head_id_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("layers.2") && Contains("7"));
    CHECK(snapshot(model) == before);
  }
  SECTION("the policy names a head twice in the third block") {
    MhaPruner<Magnitude, FnPolicy> p(Magnitude{}, valid_except_block_2({0, 0}));
    exact_message<mhaprune::head_id_error>([&] { p.prune(model.blocks, 0.5); });
    CHECK(snapshot(model) == before);
  }
  SECTION("the policy returns too few selections") {
    MhaPruner<Magnitude, FnPolicy> p(Magnitude{}, FnPolicy{[](const std::vector<BlockScores>&) {
                                       return Selection{{0, 2}, {0, 2}};
                                     }});
    const std::string what = exact_message<mhaprune::error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("2 selections for 4 blocks"));
    CHECK(snapshot(model) == before);
  }
  SECTION("two blocks share a name") {
    model.blocks[3] = AttentionBlock<float>("layers.1", gqa);
    model.blocks[3]
        .add(mhaprune::layout::query(model.tensors(3).q))
        .add(mhaprune::layout::key(model.tensors(3).k))
        .add(mhaprune::layout::value(model.tensors(3).v))
        .add(mhaprune::layout::output(model.tensors(3).o));
    const pruner_test::Snapshot renamed = snapshot(model);
    MhaPruner<> p;
    const std::string what = exact_message<mhaprune::error>([&] { p.prune(model.blocks, 0.5); });
    CHECK_THAT(what, Contains("\"layers.1\"") && Contains("distinct names"));
    CHECK(snapshot(model) == renamed);
  }
  SECTION("the target is out of range") {
    MhaPruner<> p;
    for (double t : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
      const std::string what = exact_message<mhaprune::error>([&] { p.prune(model.blocks, t); });
      CHECK_THAT(what, Contains("[0, 1]"));
    }
    CHECK(snapshot(model) == before);
  }
  SECTION("the same policy with a valid third block prunes all four (the control)") {
    MhaPruner<Magnitude, FnPolicy> p(Magnitude{}, valid_except_block_2({1, 3}));
    const PruneReport r = p.prune(model.blocks, 0.5);
    CHECK(r.heads_removed() == 8);
    CHECK(model.blocks[2].head_ids() == std::vector<Index>{0, 2});
    CHECK(model.blocks[0].head_ids() == std::vector<Index>{1, 3});
    CHECK(snapshot(model) != before);
  }
}

// ---------------------------------------------------------------------------------------------
// Explicit ids

TEST_CASE("MhaPruner<Magnitude, ExplicitSelection>: original ids across two calls, as prune_heads",
          "[pruner][oneshot][explicit]") {
  const HeadLayout L = HeadLayout::mha(6, 2, 8);
  Model<float> model(pruner_test::uniform_specs(2, L), 8), twin(pruner_test::uniform_specs(2, L), 8);
  using Explicit = MhaPruner<Magnitude, ExplicitSelection>;

  // First call: block 0 by name, block 1 by index.
  const PruneReport first = Explicit(Magnitude{}, ExplicitSelection()
                                                      .remove("layers.0", mhaprune::OriginalIds{4, 1})
                                                      .remove(std::size_t{1}, mhaprune::OriginalIds{0}))
                                .prune(model.blocks, 0.0);
  CHECK(first.blocks[0].removed == std::vector<Index>{1, 4});
  CHECK(first.blocks[1].removed == std::vector<Index>{0});
  CHECK(model.blocks[0].head_ids() == std::vector<Index>{0, 2, 3, 5});
  CHECK(model.blocks[1].head_ids() == std::vector<Index>{1, 2, 3, 4, 5});

  // Second call names heads by their ORIGINAL ids: 5 and 2 are now at positions 3 and 1.
  const auto scores = pruner_test::magnitude_scores(model.tensors(0), model.blocks[0].layout());
  const PruneReport second =
      Explicit(Magnitude{}, ExplicitSelection().remove("layers.0", mhaprune::OriginalIds{5, 2}))
          .prune(model.blocks, 0.0);
  CHECK(second.blocks[0].removed == std::vector<Index>{2, 5});
  CHECK(second.blocks[0].head_ids == std::vector<Index>{0, 2, 3, 5});
  REQUIRE(second.blocks[0].scores.size() == 4);
  for (Index k = 0; k < 4; ++k)
    CHECK(second.blocks[0].scores[static_cast<std::size_t>(k)] == Approx(scores(k)));
  CHECK(second.blocks[1].removed.empty());
  CHECK(model.blocks[0].head_ids() == std::vector<Index>{0, 3});

  const Eigen::MatrixXd x = pruner_test::random_input(1, 6, 8);
  CHECK(pruner_test::forward_difference(model.blocks[0], twin.blocks[0],
                                        pruner_test::mask_of(twin.blocks[0], {1, 2, 4, 5}), x) < 1e-9);
  CHECK(pruner_test::forward_difference(model.blocks[1], twin.blocks[1],
                                        pruner_test::mask_of(twin.blocks[1], {0}), x) < 1e-9);
  CHECK(model.tensors(0).q.middleRows(2, 2) == twin.tensors(0).q.middleRows(6, 2));  // original head 3

  // Naming a head that is gone, or never was, or twice, or a block that is not there: nothing changes.
  const pruner_test::Snapshot before = snapshot(model);
  auto attempt = [&](ExplicitSelection s) { Explicit(Magnitude{}, std::move(s)).prune(model.blocks, 0.0); };
  CHECK_THAT(exact_message<mhaprune::head_id_error>([&] {
               attempt(ExplicitSelection()
                           .remove("layers.1", mhaprune::OriginalIds{5})
                           .remove("layers.0", mhaprune::OriginalIds{4}));
             }),
             Contains("layers.0") && Contains("original head 4 was already removed"));
  CHECK_THAT(exact_message<mhaprune::head_id_error>(
                 [&] { attempt(ExplicitSelection().remove("layers.1", mhaprune::OriginalIds{6})); }),
             Contains("layers.1") && Contains("original head 6 does not exist"));
  CHECK_THAT(exact_message<mhaprune::head_id_error>([&] {
               attempt(ExplicitSelection().remove("layers.1", mhaprune::OriginalIds{3, 3}));
             }),
             Contains("named twice"));
  CHECK_THAT(exact_message<mhaprune::error>(
                 [&] { attempt(ExplicitSelection().remove("layers.7", mhaprune::OriginalIds{1})); }),
             Contains("layers.7"));
  CHECK(snapshot(model) == before);
}

TEST_CASE("MhaPruner<Magnitude, ExplicitSelection>: a ragged GQA removal changes nothing",
          "[pruner][oneshot][explicit]") {
  const HeadLayout gqa(4, 2, 2, 8);
  Model<float> model(pruner_test::uniform_specs(3, gqa), 4);
  const pruner_test::Snapshot before = snapshot(model);
  MhaPruner<Magnitude, ExplicitSelection> p(Magnitude{}, ExplicitSelection()
                                                             .remove("layers.0", mhaprune::OriginalIds{0, 1})
                                                             .remove("layers.2", mhaprune::OriginalIds{3}));
  CHECK_THAT(exact_message<mhaprune::removal_error>([&] { p.prune(model.blocks, 0.0); }),
             Contains("layers.2"));
  CHECK(snapshot(model) == before);
}

// ---------------------------------------------------------------------------------------------
// Scope, GQA modes, guards

TEST_CASE("MhaPruner: local scope prunes each block alike, global ranks all heads together",
          "[pruner][oneshot][scope]") {
  // Block 0 is 4x stronger than the rest, block 2 4x weaker (powers of two scale exactly).
  const auto specs = pruner_test::uniform_specs(3, kMha);
  Model<double> model(specs, 9), unscaled(specs, 9);
  for (Index h = 0; h < 4; ++h) {
    model.scale_head(0, h, 4.0);
    model.scale_head(2, h, 0.25);
  }
  using Local = MhaPruner<Magnitude, LocalSelection, OneshotSchedule, double>;
  using Global = MhaPruner<Magnitude, GlobalSelection, OneshotSchedule, double>;
  const auto scores = oracle_scores(model);

  SECTION("local: floor(0.5 * 4) = 2 weakest of every block") {
    const PruneReport r = Local().prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(r.blocks[i].removed == pruner_test::weakest(scores[i], 2));
      CHECK(model.blocks[i].layout().heads() == 2);
    }
  }
  SECTION("global: 6 weakest of all 12, each block keeping one") {
    const auto expected = global_oracle(scores, current_ids(model), 6);
    CHECK(expected[0].empty());
    CHECK(expected[1].size() == 3);
    CHECK(expected[2].size() == 3);
    const PruneReport r = Global().prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 3; ++i) CHECK(r.blocks[i].removed == expected[i]);
    CHECK(model.blocks[0].layout().heads() == 4);
    CHECK(model.blocks[2].layout().heads() == 1);
  }
  SECTION("global with per-block normalisation ignores each block's scale") {
    for (Normalization n : {Normalization::l2, Normalization::standardize}) {
      Model<double> a(specs, 9), b(specs, 9);
      for (Index h = 0; h < 4; ++h) {
        a.scale_head(0, h, 4.0);
        a.scale_head(2, h, 0.25);
      }
      SelectionOptions o;
      o.normalization = n;
      Global pa, pb;
      pa.set_options(o);
      pb.set_options(o);
      const PruneReport ra = pa.prune(a.blocks, 0.5), rb = pb.prune(b.blocks, 0.5);
      CHECK(ra.heads_removed() == 6);
      for (std::size_t i = 0; i < 3; ++i) CHECK(ra.blocks[i].removed == rb.blocks[i].removed);
    }
    // Without normalisation the scaled model differs from the unscaled one.
    Model<double> b(specs, 9);
    const PruneReport scaled = Global().prune(model.blocks, 0.5), plain = Global().prune(b.blocks, 0.5);
    std::vector<std::vector<Index>> s, u;
    for (std::size_t i = 0; i < 3; ++i) {
      s.push_back(scaled.blocks[i].removed);
      u.push_back(plain.blocks[i].removed);
    }
    CHECK(s != u);
  }
}

TEST_CASE("MhaPruner: GQA blocks in both modes through SelectionOptions", "[pruner][oneshot][gqa]") {
  // 8 query heads in 2 key/value groups of 4.
  const HeadLayout gqa(8, 2, 2, 8);
  const auto specs = pruner_test::uniform_specs(2, gqa);
  Model<float> model(specs, 13, /*biases=*/true), twin(specs, 13, true);
  const auto scores = oracle_scores(model);
  const Eigen::MatrixXd x = pruner_test::random_input(2, 5, 8);
  SelectionOptions o;

  auto check_forward = [&](const PruneReport& r) {
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(pruner_test::forward_difference(model.blocks[i], twin.blocks[i],
                                            pruner_test::mask_of(twin.blocks[i], r.blocks[i].removed),
                                            x) < 1e-9);
      CHECK(r.blocks[i].after.parameters == model.parameters(i));
      CHECK(r.blocks[i].after.projection_flops_per_token == 2 * model.weight_elements(i));
    }
  };
  // The m weakest heads of each group of block i, as original ids.
  auto per_group = [&](std::size_t i, Index m) {
    std::vector<Index> out;
    for (Index g = 0; g < 2; ++g) {
      for (Index p : pruner_test::weakest(scores[i].segment(g * 4, 4), m)) out.push_back(g * 4 + p);
    }
    return out;
  };

  SECTION("uniform_per_group, local: two heads from every group, K and V stay") {
    o.gqa_mode = GqaMode::uniform_per_group;
    MhaPruner<Magnitude, LocalSelection> p(Magnitude{}, LocalSelection{}, OneshotSchedule{}, o);
    const PruneReport r = p.prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(r.blocks[i].removed == per_group(i, 2));
      CHECK(r.blocks[i].removed_kv.empty());
      CHECK(r.blocks[i].after.kv_heads == 2);
      CHECK(model.tensors(i).k.rows() == 4);
      CHECK(model.tensors(i).q.rows() == 8);
    }
    check_forward(r);
  }
  SECTION("whole_groups, local: the group with the lower mean score goes with its K and V") {
    o.gqa_mode = GqaMode::whole_groups;
    MhaPruner<Magnitude, LocalSelection> p(Magnitude{}, LocalSelection{}, OneshotSchedule{}, o);
    const PruneReport r = p.prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 2; ++i) {
      const Index g = scores[i].segment(0, 4).mean() <= scores[i].segment(4, 4).mean() ? 0 : 1;
      CHECK(r.blocks[i].removed == std::vector<Index>{g * 4, g * 4 + 1, g * 4 + 2, g * 4 + 3});
      CHECK(r.blocks[i].removed_kv == std::vector<Index>{g});
      CHECK(r.blocks[i].after.kv_heads == 1);
      CHECK(model.blocks[i].kv_head_ids() == std::vector<Index>{1 - g});
      CHECK(model.tensors(i).k.rows() == 2);
      CHECK(model.tensors(i).bk.size() == 2);
    }
    check_forward(r);
  }
  SECTION("uniform_per_group, global: whole rungs, cheapest first") {
    // 16 heads, target 0.25 -> 4; a block loses 2, 4 or 6 (one rung = one head per group). Brute force
    // over the blocks' counts: most heads up to 4, then the lowest total score.
    o.gqa_mode = GqaMode::uniform_per_group;
    auto cost = [&](std::size_t i, Index m) {
      double c = 0;
      for (Index id : per_group(i, m)) c += scores[i](id);
      return c;
    };
    Index best0 = 0, best1 = 0;
    double best = 1e300;
    for (Index m0 = 0; m0 <= 3; ++m0)
      for (Index m1 = 0; m1 <= 3; ++m1) {
        if (2 * (m0 + m1) != 4) continue;
        const double c = cost(0, m0) + cost(1, m1);
        if (c < best) best = c, best0 = m0, best1 = m1;
      }
    MhaPruner<Magnitude, GlobalSelection> p(Magnitude{}, GlobalSelection{}, OneshotSchedule{}, o);
    const PruneReport r = p.prune(model.blocks, 0.25);
    CHECK(r.blocks[0].removed == per_group(0, best0));
    CHECK(r.blocks[1].removed == per_group(1, best1));
    CHECK(r.heads_removed() == 4);
    check_forward(r);
  }
  SECTION("whole_groups, global: the weakest group of all goes") {
    o.gqa_mode = GqaMode::whole_groups;
    std::vector<std::tuple<double, std::size_t, Index>> groups;
    for (std::size_t i = 0; i < 2; ++i)
      for (Index g = 0; g < 2; ++g) groups.emplace_back(scores[i].segment(g * 4, 4).mean(), i, g);
    std::sort(groups.begin(), groups.end());
    const auto [s, bi, g] = groups.front();
    (void)s;
    MhaPruner<Magnitude, GlobalSelection> p(Magnitude{}, GlobalSelection{}, OneshotSchedule{}, o);
    const PruneReport r = p.prune(model.blocks, 0.3);  // floor(4.8) = 4: one group of 4
    CHECK(r.blocks[bi].removed_kv == std::vector<Index>{g});
    CHECK(r.blocks[1 - bi].removed.empty());
    CHECK(r.total(true).kv_heads == 3);
    check_forward(r);
  }
}

TEST_CASE("MhaPruner: min_heads, round_to, max ratio and exact_target through the pruner",
          "[pruner][oneshot][guards]") {
  const HeadLayout L = HeadLayout::mha(8, 2, 8);
  const auto specs = pruner_test::uniform_specs(2, L);
  Model<float> model(specs, 17);
  const auto scores = oracle_scores(model);
  using Local = MhaPruner<Magnitude, LocalSelection>;
  using Global = MhaPruner<Magnitude, GlobalSelection>;
  SelectionOptions o;

  SECTION("min_heads 4 caps a 0.75 target at 4 heads per block") {
    o.min_heads = 4;
    const PruneReport r =
        Local(Magnitude{}, LocalSelection{}, OneshotSchedule{}, o).prune(model.blocks, 0.75);
    for (std::size_t i = 0; i < 2; ++i) CHECK(r.blocks[i].removed == pruner_test::weakest(scores[i], 4));
  }
  SECTION("round_to 4: 0.3 (2 heads) would keep 6, so nothing goes; 0.5 keeps 4") {
    o.round_to = 4;
    Local p(Magnitude{}, LocalSelection{}, OneshotSchedule{}, o);
    CHECK(p.prune(model.blocks, 0.3).heads_removed() == 0);
    const PruneReport r = p.prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(r.blocks[i].removed == pruner_test::weakest(scores[i], 4));
      CHECK(model.blocks[i].layout().heads() % 4 == 0);
    }
  }
  SECTION("round_to 3: 0.5 (4 heads) is lowered to 2, keeping 6") {
    o.round_to = 3;
    const PruneReport r = Local(Magnitude{}, LocalSelection{}, OneshotSchedule{}, o).prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 2; ++i) CHECK(r.blocks[i].removed == pruner_test::weakest(scores[i], 2));
  }
  SECTION("round_to 2, global: every block keeps an even count") {
    o.round_to = 2;
    const PruneReport r =
        Global(Magnitude{}, GlobalSelection{}, OneshotSchedule{}, o).prune(model.blocks, 0.5);
    CHECK(r.heads_removed() == 8);
    for (std::size_t i = 0; i < 2; ++i) CHECK(model.blocks[i].layout().heads() % 2 == 0);
  }
  SECTION("max ratio 0.25, global: no block loses more than 2 of its 8") {
    o.max_ratio_per_block = 0.25;
    const PruneReport r =
        Global(Magnitude{}, GlobalSelection{}, OneshotSchedule{}, o).prune(model.blocks, 0.5);
    for (std::size_t i = 0; i < 2; ++i) CHECK(r.blocks[i].removed == pruner_test::weakest(scores[i], 2));
  }
  SECTION("exact_target: a target the guards cannot meet throws and changes nothing") {
    o.round_to = 4;
    o.exact_target = true;
    const pruner_test::Snapshot before = snapshot(model);
    Local local(Magnitude{}, LocalSelection{}, OneshotSchedule{}, o);
    Global global(Magnitude{}, GlobalSelection{}, OneshotSchedule{}, o);
    CHECK_THAT(exact_message<mhaprune::constraint_error>([&] { local.prune(model.blocks, 0.3); }),
               Contains("layers.0") && Contains("{0, 4}"));
    // Globally 0.3 (4 heads) is met by one block losing 4; 0.2 (3 heads) cannot be.
    CHECK_THAT(exact_message<mhaprune::constraint_error>([&] { global.prune(model.blocks, 0.2); }),
               Contains("remove 3 more heads") && Contains("only 0"));
    CHECK(snapshot(model) == before);
  }
  SECTION("invalid options are refused by the constructor and by set_options") {
    SelectionOptions bad;
    bad.min_heads = 0;
    CHECK_THAT(
        exact_message<mhaprune::error>([&] { Local(Magnitude{}, LocalSelection{}, OneshotSchedule{}, bad); }),
        Contains("min_heads"));
    Local p;
    bad = SelectionOptions{};
    bad.round_to = 0;
    CHECK_THAT(exact_message<mhaprune::error>([&] { p.set_options(bad); }), Contains("round_to"));
    CHECK(p.options().round_to == 1);
  }
}

}  // namespace test_pruner_oneshot
