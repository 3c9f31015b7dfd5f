// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The tiny_lm example's forward pass (examples/tiny_lm): it reproduces the training script's logits,
// and after heads are removed in place it computes what the unpruned model computes with those heads
// masked (their O columns zero) — so the head bookkeeping (original ids, GQA groups) is right.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../examples/tiny_lm/bert.hpp"
#include "../examples/tiny_lm/calibration.hpp"
#include "../examples/tiny_lm/evaluate.hpp"
#include "../examples/tiny_lm/prune.hpp"
#include "../examples/tiny_lm/qwen2.hpp"
#include "mhaprune/core/mask_heads.hpp"
#include "mhaprune/core/remove_heads.hpp"

namespace test_tiny_lm {

const std::string qwen_dir = MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-qwen2";
const std::string bert_dir = MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert";

template <typename Model>
tiny_lm::TokenBatch first_sequences(const std::string& dir, Eigen::Index count) {
  return tiny_lm::slice(Model::batch(tiny_lm::read_sequences(dir + "/text/heldout.txt")), 0, count);
}

template <typename Model>
tiny_lm::Matrix hidden(const Model& model, const tiny_lm::TokenBatch& batch) {
  return model.hidden(batch, [](Eigen::Index, const tiny_lm::Matrix&) {});
}

/// Removes `heads` (original ids) of layer `layer` from one model and masks them in another; both
/// must then compute the same hidden states.
template <typename Model>
double pruned_vs_masked(const std::string& dir, Eigen::Index layer, const std::vector<Eigen::Index>& heads) {
  Model pruned(dir), masked(dir);
  auto& block = masked.attention(layer).block;
  mhaprune::HeadMask mask(block.layout().heads());
  for (Eigen::Index h : heads) mask.remove(h);
  mhaprune::mask_heads(block, mask);
  mhaprune::remove_heads(pruned.attention(layer).block, mhaprune::OriginalIds(heads));
  const auto batch = first_sequences<Model>(dir, 3);
  return (hidden(pruned, batch) - hidden(masked, batch)).cwiseAbs().maxCoeff();
}

TEST_CASE("tiny_lm Qwen2 forward reproduces the reference logits and held-out NLL", "[tiny_lm]") {
  const tiny_lm::Qwen2 model(qwen_dir);
  const nlohmann::json ref = tiny_lm::read_json(qwen_dir + "/reference_nll.json");
  const auto& debug = ref.at("debug_logits_float64");
  const auto batch = first_sequences<tiny_lm::Qwen2>(qwen_dir, 1);
  const tiny_lm::Matrix logits = model.logits(hidden(model, batch));
  const auto positions = debug.at("positions").get<std::vector<int>>();
  for (std::size_t i = 0; i < positions.size(); ++i) {
    const auto expected = debug.at("first_8_logits").at(i).get<std::vector<double>>();
    for (std::size_t j = 0; j < expected.size(); ++j)
      CHECK(logits(positions[i], static_cast<Eigen::Index>(j)) == Approx(expected[j]).margin(1e-3));
  }
  const tiny_lm::Nll nll = tiny_lm::evaluate(
      model, tiny_lm::Qwen2::batch(tiny_lm::read_sequences(qwen_dir + "/text/heldout.txt")));
  CHECK(nll.predictions == 8128);
  CHECK(nll.mean == Approx(ref.at("nll_float64").get<double>()).margin(1e-4));
}

TEST_CASE("tiny_lm BERT forward reproduces the reference held-out NLL", "[tiny_lm]") {
  const tiny_lm::Bert model(bert_dir);
  const nlohmann::json ref = tiny_lm::read_json(bert_dir + "/reference_nll.json");
  const tiny_lm::Nll nll =
      tiny_lm::evaluate(model, tiny_lm::Bert::batch(tiny_lm::read_sequences(bert_dir + "/text/heldout.txt")));
  CHECK(nll.predictions == ref.at("num_predictions").get<Eigen::Index>());
  CHECK(nll.mean == Approx(ref.at("nll_float64").get<double>()).margin(1e-4));
}

TEST_CASE("tiny_lm forward after removal equals the masked unpruned model", "[tiny_lm]") {
  // Qwen2: 8 query heads in 2 groups of 4; one head per group keeps both K/V heads.
  CHECK(pruned_vs_masked<tiny_lm::Qwen2>(qwen_dir, 1, {1, 6}) < 1e-4);
  // Two of the four heads of each group: the survivors must still find their own K/V head.
  CHECK(pruned_vs_masked<tiny_lm::Qwen2>(qwen_dir, 2, {0, 3, 4, 5}) < 1e-4);
  // A whole group: K/V head 0 goes too, query heads 4..7 now read the former K/V head 1 at position 0.
  CHECK(pruned_vs_masked<tiny_lm::Qwen2>(qwen_dir, 0, {0, 1, 2, 3}) < 1e-4);
  // BERT: multi-head attention with an O bias.
  CHECK(pruned_vs_masked<tiny_lm::Bert>(bert_dir, 3, {0, 2}) < 1e-4);

  // And removal does change the output (the comparison above is not vacuous).
  tiny_lm::Qwen2 full(qwen_dir), pruned(qwen_dir);
  mhaprune::remove_heads(pruned.attention(0).block, mhaprune::OriginalIds{0, 1, 2, 3});
  const auto batch = first_sequences<tiny_lm::Qwen2>(qwen_dir, 1);
  CHECK((hidden(full, batch) - hidden(pruned, batch)).cwiseAbs().maxCoeff() > 1e-2);
}

TEST_CASE("tiny_lm keeps the bias that compensation creates for Qwen2, which has no O bias", "[tiny_lm]") {
  // FLAP's bias compensation makes the layer's mean attention output over the calibration tokens
  // exact; layer 0's input does not depend on its own heads, so that can be checked directly.
  tiny_lm::Qwen2 full(qwen_dir), pruned(qwen_dir);
  const auto batch = tiny_lm::slice(
      tiny_lm::Qwen2::batch(tiny_lm::read_sequences(qwen_dir + "/text/calibration.txt")), 0, 4);
  const mhaprune::ActivationStats stats = tiny_lm::collect_o_input_stats(full, batch, 0);
  tiny_lm::detail::remove_layer_heads(pruned, 0, {0, 5}, stats, mhaprune::CompensationMethod::bias);
  REQUIRE(pruned.attention(0).o_bias.size() == 128);
  REQUIRE(pruned.attention(0).block.layout().heads() == 6);

  const auto mean_output = [&](const tiny_lm::Qwen2& model) {
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(128);
    model.hidden(batch, [&](Eigen::Index l, const tiny_lm::Matrix& o_input) {
      if (l == 0) sum = model.attention(0).project_output(o_input).cast<double>().colwise().sum().transpose();
    });
    return Eigen::VectorXd(sum / static_cast<double>(batch.inputs.size()));
  };
  const Eigen::VectorXd before = mean_output(full), after = mean_output(pruned);
  CHECK((after - before).cwiseAbs().maxCoeff() < 1e-4 * before.cwiseAbs().maxCoeff() + 1e-5);

  // Without the bias the mean would be off.
  pruned.attention(0).o_bias.resize(0);
  CHECK((mean_output(pruned) - before).cwiseAbs().maxCoeff() > 1e-3);
}

}  // namespace test_tiny_lm
