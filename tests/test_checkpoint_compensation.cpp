// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// Compensation and statistics through the checkpoint pipeline.

#include <catch2/catch.hpp>

#include "test_checkpoint_support.hpp"

namespace test_checkpoint_compensation {

using namespace test_checkpoint_support;

// O-input statistics of every block over random inputs `xs[b]` ([T, D] each), keyed by P.
std::map<std::string, mhaprune::ActivationStats> collect_stats(const ck::Checkpoint& c,
                                                               std::vector<Eigen::MatrixXd>& xs) {
  std::map<std::string, mhaprune::ActivationStats> out;
  Weights rng(3);
  for (const auto& b : c.blocks()) {
    ck::LoadedBlock<float> loaded(c.reader(), b);
    xs.push_back(rng.matrix(64, b.layout.model_dim()).cast<double>());
    mhaprune::ActivationStats stats(b.layout.query_width(), mhaprune::GramTracking::on);
    stats.add(mhaprune::reference::head_outputs(xs.back(), loaded.block()));
    out.emplace(b.stats_key(), std::move(stats));
  }
  return out;
}

double output_error(const ck::Checkpoint& original, const ck::Checkpoint& pruned, std::size_t i,
                    const Eigen::MatrixXd& x) {
  ck::LoadedBlock<float> a(original.reader(), original.blocks()[i]);
  ck::LoadedBlock<float> b(pruned.reader(), pruned.blocks()[i]);
  return (mhaprune::reference::attention(x, a.block()) - mhaprune::reference::attention(x, b.block())).norm();
}

TEST_CASE("checkpoint compensation: lsq refits O and beats plain removal on the calibration data",
          "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert");
  std::vector<Eigen::MatrixXd> xs;
  const auto stats = collect_stats(in, xs);
  auto plain = sparsity(0.5, "local");
  plain.stats = &stats;
  ck::prune_checkpoint(in, tmp / "plain", plain);
  auto refit = plain;
  refit.compensation.method = mhaprune::CompensationMethod::lsq;
  ck::prune_checkpoint(in, tmp / "lsq", refit);
  const auto a = ck::Checkpoint::open(tmp / "plain");
  const auto b = ck::Checkpoint::open(tmp / "lsq");
  for (std::size_t i = 0; i < in.blocks().size(); ++i) {
    CHECK(a.blocks()[i].head_ids == b.blocks()[i].head_ids);
    CHECK(output_error(in, b, i, xs[i]) < output_error(in, a, i, xs[i]));
  }
}

TEST_CASE("checkpoint compensation: a bias shift gives LLaMA every attention bias", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "model.";
  s.heads = 4;
  s.kv_heads = 2;
  s.biases = false;
  mkdir((tmp / "in").c_str(), 0777);
  make_llama(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  std::vector<Eigen::MatrixXd> xs;
  const auto stats = collect_stats(in, xs);
  auto options = sparsity(0);
  options.explicit_heads = std::map<Index, std::vector<Index>>{{0, {0, 2}}, {1, {1, 3}}};
  options.stats = &stats;
  options.compensation.method = mhaprune::CompensationMethod::bias;
  ck::prune_checkpoint(in, tmp / "out", options);
  const auto out = ck::Checkpoint::open(tmp / "out");
  CHECK(read_json(tmp / "out/config.json").at("attention_bias") == true);
  for (const auto& b : out.blocks()) {
    CHECK(b.tensor_names.size() == 8);
    CHECK(out.reader().info(b.tensors.q_bias).shape ==
          io::Shape{static_cast<std::uint64_t>(b.layout.query_width())});
    CHECK(out.reader().tensor(b.tensors.k_bias).read_vector<float>().isZero());
  }
  // Block 0: the O bias is O[:, removed] · mean(X_removed).
  const auto& b0 = in.blocks()[0];
  const Eigen::MatrixXd O = in.reader().tensor(b0.tensors.o).read_matrix<double>();
  const Eigen::VectorXd mean = stats.at(b0.stats_key()).mean();
  const Eigen::VectorXd want =
      O.middleCols(0, 4) * mean.segment(0, 4) + O.middleCols(8, 4) * mean.segment(8, 4);
  const Eigen::VectorXd got = out.reader().tensor(out.blocks()[0].tensors.o_bias).read_vector<double>();
  CHECK((got - want).cwiseAbs().maxCoeff() < 1e-5);
  // Block 2 lost nothing: its new O bias is zero, its weights unchanged.
  CHECK(out.reader().tensor(out.blocks()[2].tensors.o_bias).read_vector<float>().isZero());
}

TEST_CASE("checkpoint compensation: refusals before any output exists", "[checkpoint]") {
  TempDir tmp;
  const auto qwen2 = ck::Checkpoint::open(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-qwen2");
  auto options = sparsity(0.25);
  options.compensation.method = mhaprune::CompensationMethod::bias;
  CHECK_THROWS_WITH(ck::prune_checkpoint(qwen2, tmp / "out", options),
                    Catch::Contains("qwen2 models cannot hold") && Catch::Contains("O projection"));
  CHECK_THROWS_AS(ck::prune_checkpoint(qwen2, tmp / "out", options), mhaprune::config_error);

  // No statistics: the error names the block and the key it looked for.
  options.compensation.method = mhaprune::CompensationMethod::lsq;
  CHECK_THROWS_WITH(ck::prune_checkpoint(qwen2, tmp / "out", options),
                    Catch::Contains("\"model.layers.0.self_attn.o_proj\""));
  CHECK_THROWS_AS(ck::prune_checkpoint(qwen2, tmp / "out", options), mhaprune::evidence_error);

  // Statistics of the wrong width are caught while scoring.
  std::map<std::string, mhaprune::ActivationStats> wrong;
  for (const auto& b : qwen2.blocks()) {
    mhaprune::ActivationStats s(8, mhaprune::GramTracking::on);
    s.add(Eigen::MatrixXd::Random(4, 8));
    wrong.emplace(b.stats_key(), std::move(s));
  }
  options.stats = &wrong;
  options.config.criterion_type = "magnitude";
  CHECK_THROWS_AS(ck::prune_checkpoint(qwen2, tmp / "out", options), mhaprune::compensation_error);
  CHECK(list_dir(tmp.path()).empty());
}

}  // namespace test_checkpoint_compensation
