// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The gradients file (io/gradients_file.hpp) and scoring from it (checkpoint/gradient_evidence.hpp):
// for each of gradient, snip, snip_momentum, taylor and fisher, the scores from a file equal the
// library's scores when it is handed the same gradients in memory (Evidence, update); every kind of
// bad content is refused naming the file, the tensor and the shapes; the bundled tiny-qwen2's gate
// gradients (written by its training script) score taylor and fisher through score_checkpoint.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <mhaprune/checkpoint/checkpoint.hpp>
#include <mhaprune/checkpoint/gradient_evidence.hpp>
#include <mhaprune/io/gradients_file.hpp>
#include <random>
#include <string>
#include <vector>

#include "test_safetensors_support.hpp"

namespace test_gradients_file {

using Catch::Matchers::Contains;
using mhaprune::AnyCriterion;
using mhaprune::AttentionBlock;
using mhaprune::Evidence;
using mhaprune::Index;
using mhaprune::io::Dtype;
using mhaprune::io::GradientsFile;
using mhaprune::io::GradientsFileWriter;
using mhaprune::io::GradientStatistic;
using mhaprune_test::message_of;
using mhaprune_test::ScratchDir;
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
namespace layout = mhaprune::layout;
namespace ck = mhaprune::checkpoint;

const std::string block_name = "model.layers.0.self_attn";
const std::string q_name = block_name + ".q_proj.weight", k_name = block_name + ".k_proj.weight",
                  v_name = block_name + ".v_proj.weight", o_name = block_name + ".o_proj.weight";

Matrix random_matrix(Index rows, Index cols, std::mt19937& rng) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}

/// A grouped-query block (H = 4, H_kv = 2, d = 2, D = 6) over its own weights, named as in a
/// Qwen2 checkpoint, and gradients for three steps.
struct Fixture {
  std::mt19937 rng{20260};
  Matrix q = random_matrix(8, 6, rng), k = random_matrix(4, 6, rng), v = random_matrix(4, 6, rng),
         o = random_matrix(6, 8, rng);
  AttentionBlock<float> block{block_name, mhaprune::HeadLayout(4, 2, 2, 6)};
  std::vector<std::string> names{q_name, k_name, v_name, o_name};
  std::vector<Matrix*> weights{&q, &k, &v, &o};
  std::vector<std::vector<Matrix>> steps;  // steps[t][tensor]
  Fixture() {
    block.add(layout::query(q).named(q_name)).add(layout::key(k).named(k_name));
    block.add(layout::value(v).named(v_name)).add(layout::output(o).named(o_name));
    for (int t = 0; t < 3; ++t) {
      std::vector<Matrix> g;
      for (Matrix* w : weights) g.push_back(random_matrix(w->rows(), w->cols(), rng));
      steps.push_back(std::move(g));
    }
  }
  Matrix sum(std::size_t tensor) const {
    Matrix s = steps[0][tensor];
    for (std::size_t t = 1; t < steps.size(); ++t) s += steps[t][tensor];
    return s;
  }
};

AnyCriterion make(const std::string& name, const std::string& reduce = "mean", bool normalize = false) {
  mhaprune::CriterionOptions o;
  o.reduce = reduce;
  o.normalize = normalize;
  return mhaprune::criterion_from_name(name, o);
}

void require_close(const Eigen::VectorXd& got, const Eigen::VectorXd& want, double rel) {
  REQUIRE(got.size() == want.size());
  for (Index h = 0; h < got.size(); ++h) {
    INFO("head " << h << ": from the file " << got(h) << ", in memory " << want(h));
    CHECK(got(h) == Approx(want(h)).epsilon(rel).margin(1e-300));
  }
}

TEST_CASE("gradients file: gradient and snip from T.grad.sum equal the library handed the summed gradients",
          "[gradients_file]") {
  Fixture f;
  ScratchDir dir;
  GradientsFileWriter w;
  std::vector<Matrix> sums;
  for (std::size_t i = 0; i < 4; ++i) sums.push_back(f.sum(i));
  for (std::size_t i = 0; i < 4; ++i) w.add_gradient_sum(f.names[i], sums[i], 3);
  w.write(dir / "g.safetensors");
  const GradientsFile file(dir / "g.safetensors");
  CHECK(file.size() == 4);
  CHECK(file.count(q_name, GradientStatistic::gradient_sum) == 3);

  Evidence in_memory;
  for (std::size_t i = 0; i < 4; ++i) in_memory.with_gradient(f.names[i], sums[i]);
  for (const char* reduce : {"mean", "sum", "max", "l2"}) {
    INFO("reduce " << reduce);
    mhaprune::ElementWiseOptions eo{mhaprune::parse_reduction(reduce), {}};
    AnyCriterion g = make("gradient", reduce), s = make("snip", reduce);
    require_close(ck::score_with_gradients(g, f.block, file),
                  mhaprune::Gradient(eo).scores(f.block, in_memory), 1e-12);
    require_close(ck::score_with_gradients(s, f.block, file), mhaprune::Snip(eo).scores(f.block, in_memory),
                  1e-12);
  }
  // Different from magnitude's, so the gradients were read.
  AnyCriterion g = make("gradient");
  const Eigen::VectorXd by_grad = ck::score_with_gradients(g, f.block, file);
  CHECK((by_grad - mhaprune::Magnitude().scores(f.block)).cwiseAbs().maxCoeff() > 1e-3);
}

TEST_CASE("gradients file: snip_momentum's running score S equals the library's after the same updates",
          "[gradients_file]") {
  for (const char* reduce : {"mean", "sum", "max", "l2"}) {
    INFO("reduce " << reduce);
    Fixture f;
    // In memory: three optimizer steps, the weights changing between them, as in training.
    mhaprune::SnipMomentum library(mhaprune::parse_reduction(reduce));
    // Beside it, S by its definition S <- 0.9 S + 1.0 |W_t * G_t|, in double.
    std::vector<Eigen::MatrixXd> S;
    for (Matrix* w : f.weights) S.push_back(Eigen::MatrixXd::Zero(w->rows(), w->cols()));
    for (std::size_t t = 0; t < f.steps.size(); ++t) {
      Evidence ev;
      for (std::size_t i = 0; i < 4; ++i) ev.with_gradient(f.names[i], f.steps[t][i]);
      library.update(f.block, ev);
      for (std::size_t i = 0; i < 4; ++i) {
        S[i] =
            0.9 * S[i] + (f.weights[i]->cast<double>().cwiseProduct(f.steps[t][i].cast<double>())).cwiseAbs();
        *f.weights[i] -= 0.1f * f.steps[t][i];  // the optimizer step
      }
    }
    ScratchDir dir;
    GradientsFileWriter w;
    for (std::size_t i = 0; i < 4; ++i) w.add_momentum_score(f.names[i], S[i], 3);
    w.write(dir / "g.safetensors");
    const GradientsFile file(dir / "g.safetensors");
    AnyCriterion c = make("snip_momentum", reduce);
    // S is stored as F32 (the library's max/l2 state is float too): agreement to float rounding.
    require_close(ck::score_with_gradients(c, f.block, file), library.scores(f.block), 1e-5);
  }
}

TEST_CASE("gradients file: taylor and fisher from the gate sums equal the library updated batch by batch",
          "[gradients_file]") {
  Fixture f;
  std::mt19937 rng(7);
  const Matrix per_batch = random_matrix(5, 4, rng);  // [batches, H]
  ScratchDir dir;
  GradientsFileWriter().add_gate_gradients(block_name, per_batch, Dtype::F64).write(dir / "g.safetensors");
  const GradientsFile file(dir / "g.safetensors");
  CHECK(file.count(block_name, GradientStatistic::gate_sq_sum) == 5);
  for (bool normalize : {false, true}) {
    INFO("normalize " << normalize);
    mhaprune::Taylor taylor(normalize);
    mhaprune::Fisher fisher(normalize);
    for (Index b = 0; b < per_batch.rows(); ++b) {  // one update per batch, as a training loop would
      const Eigen::RowVectorXf row = per_batch.row(b);
      taylor.update(f.block, Evidence().with_gate_gradients(row));
      fisher.update(f.block, Evidence().with_gate_gradients(row));
    }
    AnyCriterion t = make("taylor", "mean", normalize), fi = make("fisher", "mean", normalize);
    require_close(ck::score_with_gradients(t, f.block, file), taylor.scores(f.block), 1e-12);
    require_close(ck::score_with_gradients(fi, f.block, file), fisher.scores(f.block), 1e-12);
    // Scoring twice gives the same (the block's state is reset, not added to).
    require_close(ck::score_with_gradients(t, f.block, file), taylor.scores(f.block), 1e-12);
  }
  // By hand: taylor of head 2 is sum_b |g_b2|.
  AnyCriterion t = make("taylor");
  CHECK(ck::score_with_gradients(t, f.block, file)(2) ==
        Approx(per_batch.col(2).cast<double>().cwiseAbs().sum()));
}

TEST_CASE("gradients file: bad content is refused naming the file, the tensor and the shapes",
          "[gradients_file]") {
  Fixture f;
  ScratchDir dir;
  const std::string path = dir / "bad.safetensors";
  const auto open_with = [&](const std::function<void(mhaprune::io::SafetensorsWriter&)>& fill) {
    mhaprune::io::SafetensorsWriter w;
    fill(w);
    w.write(path);
    return message_of<mhaprune::corrupt_file_error>([&] { GradientsFile{path}; });
  };
  const Eigen::VectorXd one = Eigen::VectorXd::Constant(1, 1.0);
  const Matrix q = f.q;

  CHECK_THAT(open_with([&](auto& w) { w.add("unrelated", one); }), Contains("holds no gradient statistics"));
  CHECK_THAT(open_with([&](auto& w) { w.add(q_name + ".grad.sum", q); }),
             Contains(q_name + ".grad.count\" is missing"));
  CHECK_THAT(open_with([&](auto& w) {
               w.add(q_name + ".grad.sum", q);
               w.add(q_name + ".grad.count", Eigen::VectorXd(Eigen::VectorXd::Zero(1)));
             }),
             Contains("the count is 0; expected an integer >= 1"));
  CHECK_THAT(open_with([&](auto& w) {
               w.add(q_name + ".grad.sum", q);
               w.add(q_name + ".grad.count", Eigen::VectorXd(Eigen::VectorXd::Constant(2, 1.0)));
             }),
             Contains("shape [2], expected [1]"));
  CHECK_THAT(open_with([&](auto& w) {
               w.add(q_name + ".grad.sum", q);
               w.add(q_name + ".grad.count", Eigen::VectorXd(Eigen::VectorXd::Constant(1, 2.5)));
             }),
             Contains("the count is 2.5"));
  const std::vector<std::int32_t> integer{7};
  CHECK_THAT(open_with([&](auto& w) {
               w.add(q_name + ".grad.sum", Dtype::I32, mhaprune::io::Shape{1},
                     mhaprune::io::ByteSpan(integer));
             }),
             Contains("dtype I32, expected F32"));

  // Well-formed files that do not fit the block, or hold bad values.
  const auto score_with = [&](const char* criterion, const std::function<void(GradientsFileWriter&)>& fill) {
    GradientsFileWriter w;
    fill(w);
    w.write(path);
    const GradientsFile file(path);
    AnyCriterion c = make(criterion);
    return message_of<mhaprune::corrupt_file_error>([&] { ck::score_with_gradients(c, f.block, file); });
  };
  const std::string missing = score_with("gradient", [&](auto& w) {
    for (std::size_t i = 0; i < 3; ++i) w.add_gradient_sum(f.names[i], *f.weights[i], 1);
  });
  CHECK_THAT(missing,
             Contains(path) && Contains(o_name + ".grad.sum\" is missing (expected one shaped [6, 8])"));
  const std::string shape = score_with("snip", [&](auto& w) {
    for (std::size_t i = 0; i < 4; ++i) w.add_gradient_sum(f.names[i], i == 1 ? f.q : *f.weights[i], 1);
  });
  CHECK_THAT(shape, Contains(k_name + ".grad.sum\": shape [8, 6] differs from the expected [4, 6]"));
  const std::string nan = score_with("gradient", [&](auto& w) {
    for (std::size_t i = 0; i < 4; ++i) {
      Matrix g = *f.weights[i];
      if (i == 3) g(2, 5) = std::numeric_limits<float>::quiet_NaN();
      w.add_gradient_sum(f.names[i], g, 1);
    }
  });
  CHECK_THAT(nan, Contains(o_name + ".grad.sum\": element (2, 5) is nan; expected a finite value"));
  const std::string negative = score_with("snip_momentum", [&](auto& w) {
    for (std::size_t i = 0; i < 4; ++i) w.add_momentum_score(f.names[i], f.weights[i]->cwiseAbs() * -1.0f, 2);
  });
  CHECK_THAT(negative, Contains(q_name + ".snip_momentum.score\": element (0, 0) is -") &&
                           Contains("expected a finite value >= 0"));
  const std::string heads =
      score_with("taylor", [&](auto& w) { w.add_gate_gradients(block_name, Matrix::Ones(2, 3)); });
  CHECK_THAT(heads,
             Contains(block_name + ".head_gate.abs_sum\": shape [3] differs from the expected [4] (one value "
                                   "per current query head)"));
  const std::string gate_missing = score_with(
      "fisher", [&](auto& w) { w.add_gate_gradients("model.layers.1.self_attn", Matrix::Ones(2, 4)); });
  CHECK_THAT(gate_missing,
             Contains(block_name + ".head_gate.sq_sum\" is missing (expected one shaped [4]); the "
                                   "fisher criterion needs it"));
  // Σg² > (Σ|g|)² cannot come from any gradients.
  const std::string inconsistent = score_with("fisher", [&](auto& w) {
    w.add_gate_sums(block_name, Eigen::Vector4d(1, 1, 1, 1), Eigen::Vector4d(0.5, 0.5, 4, 0.5), 3);
  });
  CHECK_THAT(inconsistent,
             Contains("head 2: sq_sum 4 and abs_sum 1 over 3 batches") && Contains("inconsistent"));
}

TEST_CASE("gradients file: tiny-qwen2's gate gradients from its training script score taylor and fisher",
          "[gradients_file][checkpoint]") {
  // tests/data/tiny-qwen2/head_gate_grads.safetensors was written by the training script (PyTorch,
  // float64), in this format: B.head_gate.{abs_sum,sq_sum,count} with B the block name.
  const std::string dir = MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-qwen2";
  const auto model = ck::Checkpoint::open(dir);
  const GradientsFile file(dir + "/head_gate_grads.safetensors");
  const mhaprune::io::SafetensorsReader raw(dir + "/head_gate_grads.safetensors");
  for (const char* criterion : {"taylor", "fisher"}) {
    ck::PruneOptions o;
    o.config.criterion_type = criterion;
    o.gradients = &file;
    const mhaprune::PruneReport r = ck::score_checkpoint(model, o);
    REQUIRE(r.blocks.size() == 4);
    for (const auto& b : r.blocks) {
      const auto want = raw.tensor(b.name + (criterion == std::string("taylor") ? ".head_gate.abs_sum"
                                                                                : ".head_gate.sq_sum"))
                            .read_vector<double>();
      INFO(criterion << ", block " << b.name);
      REQUIRE(b.scores.size() == 8);
      for (Index h = 0; h < 8; ++h)
        CHECK(b.scores[static_cast<std::size_t>(h)] == Approx(want(h)).epsilon(1e-12));
    }
  }
  // A file without weight gradients fails for gradient before any block is read, naming the tensor.
  ck::PruneOptions o;
  o.config.criterion_type = "gradient";
  o.gradients = &file;
  CHECK_THAT(
      message_of<mhaprune::corrupt_file_error>([&] { ck::score_checkpoint(model, o); }),
      Contains(
          "model.layers.0.self_attn.q_proj.weight.grad.sum\" is missing (expected one shaped [128, 128])"));
  // Without a file, the gradient criteria say what to give.
  o.gradients = nullptr;
  CHECK_THAT(message_of<mhaprune::evidence_error>([&] { ck::score_checkpoint(model, o); }),
             Contains("no gradient given") && Contains("give a gradients file"));
}

}  // namespace test_gradients_file
