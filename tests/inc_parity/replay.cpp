// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The parity replay's C++ half: runs MhaPruner's hooks, counted as the reference pruner (Intel Neural
// Compressor's PythonMultiheadAttentionPruner) counts them, over a fixed gradient stream, in a loop
// shaped like INC's own (epochs, a per-epoch step it ignores), and writes every step's schedule
// target, the head scores the pruner used, its masks, the weights' per-head maxima and the final
// report as JSON. tests/pycheck/inc_replay.py replays INC on the same stream from its rules (numpy,
// written from the reference notes, sharing nothing with this code) and compares step by step.
//
// usage: mhaprune_inc_parity_replay <out.json>
//
// The gradient stream (inc_replay.py regenerates it from this definition and checks the JSON's copy):
// at optimizer step t, block b, weight tensor R (Q, K, V: [H*d, D]; O: [D, H*d]), element (r, c) in
// PyTorch [out, in] indices, with h the head that owns it (r / d for Q/K/V, c / d for O):
//   G = sign * table[t][b][h] * role[R] * (1 + ((r + c) % 2) / 2),
//   sign = -1 when (r + 2c + t) % 3 == 0, else +1;  role = {Q: 1, K: 0.5, V: 0.25, O: 2}.
// The weights start at ((7r + 3c + 5b + 2R) % 17 - 8) / 16 + 1/32 (never zero) and the "optimizer"
// subtracts G / 16 from every weight, masked or not, before on_after_optimizer_step masks again.
// Every value is a small dyadic rational, so the head means are exact in double on both sides and
// ties are real ties.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <mhaprune/criteria/gradient.hpp>
#include <mhaprune/criteria/snip_momentum.hpp>
#include <mhaprune/layouts/separate_qkv.hpp>
#include <mhaprune/pruner/mha_pruner.hpp>
#include <mhaprune/pruner/report_json.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// Only the headers it uses (not mhaprune.hpp): this program is compiled with every test build.

namespace {

using mhaprune::Index;
using nlohmann::json;
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using Table = std::vector<std::vector<std::vector<double>>>;  // [step][block][head]

constexpr Index kHeads = 4, kDim = 2, kModel = 8;
constexpr double kLearningRate = 1.0 / 16.0;

const char* const kTensorNames[4] = {"query.weight", "key.weight", "value.weight", "output.weight"};
constexpr double kRole[4] = {1.0, 0.5, 0.25, 2.0};

/// One step's gradient of one block's weight tensor `role` (0..3 = Q, K, V, O).
Matrix gradient(const Table& table, long t, std::size_t b, int role) {
  const Index W = kHeads * kDim;
  const bool out = role == 3;
  Matrix g(out ? kModel : W, out ? W : kModel);
  for (Index r = 0; r < g.rows(); ++r) {
    for (Index c = 0; c < g.cols(); ++c) {
      const Index h = out ? c / kDim : r / kDim;
      const double sign = (r + 2 * c + t) % 3 == 0 ? -1.0 : 1.0;
      const double scale = table[static_cast<std::size_t>(t)][b][static_cast<std::size_t>(h)];
      g(r, c) = sign * scale * kRole[role] * (1.0 + static_cast<double>((r + c) % 2) / 2.0);
    }
  }
  return g;
}

json matrix_json(const Matrix& m) {
  json rows = json::array();
  for (Index r = 0; r < m.rows(); ++r) {
    json row = json::array();
    for (Index c = 0; c < m.cols(); ++c) row.push_back(m(r, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

/// Q, K, V, O of one block, PyTorch [out, in].
using Weights = std::array<Matrix, 4>;

/// The blocks over weights the program owns (heap-held, so the blocks' views stay valid).
struct Model {
  std::vector<std::unique_ptr<Weights>> weights;
  std::vector<mhaprune::AttentionBlock<double>> blocks;

  explicit Model(std::size_t n) {
    const Index W = kHeads * kDim;
    for (std::size_t b = 0; b < n; ++b) {
      auto w = std::make_unique<Weights>();
      for (int role = 0; role < 4; ++role) {
        Matrix& m = (*w)[static_cast<std::size_t>(role)];
        m.resize(role == 3 ? kModel : W, role == 3 ? W : kModel);
        for (Index r = 0; r < m.rows(); ++r)
          for (Index c = 0; c < m.cols(); ++c)
            m(r, c) =
                static_cast<double>((7 * r + 3 * c + 5 * static_cast<Index>(b) + 2 * role) % 17 - 8) / 16.0 +
                1.0 / 32.0;
      }
      weights.push_back(std::move(w));
    }
    namespace ml = mhaprune::layout;
    for (std::size_t b = 0; b < n; ++b) {
      Weights& w = *weights[b];
      blocks.emplace_back("layers." + std::to_string(b), mhaprune::HeadLayout::mha(kHeads, kDim, kModel));
      blocks.back().add(ml::query(w[0])).add(ml::key(w[1])).add(ml::value(w[2])).add(ml::output(w[3]));
    }
  }
};

/// Max |w| over each head's Q, K, V rows and O columns.
json head_absmax(const Weights& w) {
  json out = json::array();
  for (Index h = 0; h < kHeads; ++h) {
    double m = 0.0;
    for (int role = 0; role < 3; ++role)
      m = std::max(m, w[static_cast<std::size_t>(role)].middleRows(h * kDim, kDim).cwiseAbs().maxCoeff());
    m = std::max(m, w[3].middleCols(h * kDim, kDim).cwiseAbs().maxCoeff());
    out.push_back(m);
  }
  return out;
}

/// The INC configuration the scenario stands for, written out here (not taken from config.hpp):
/// criterion "gradient" or "snip_momentum" (alpha 0.9, beta 1), pruning_scope "global",
/// criterion_reduce_type "mean", pattern "head"; ours: the same criterion with its defaults (mean,
/// equal role weights), GlobalSelection with default options (min_heads 1).
template <typename Criterion, typename Schedule>
json run(const std::string& name, const char* criterion, Schedule schedule, json schedule_json,
         double final_target, int epochs, long steps_per_epoch, const Table& table) {
  const std::size_t blocks = table.front().size();
  Model model(blocks);
  mhaprune::MhaPruner<Criterion, mhaprune::GlobalSelection, Schedule, double> p(
      Criterion{}, mhaprune::GlobalSelection{}, schedule, mhaprune::SelectionOptions{});
  p.attach(model.blocks, final_target);

  json steps = json::array();
  long t = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (long local = 0; local < steps_per_epoch; ++local, ++t) {
      json s;
      s["step"] = t;
      s["epoch"] = epoch;
      s["local_step"] = local;
      const bool pruning = p.schedule().is_pruning_step(t);
      s["pruning_step"] = pruning;
      s["target"] = pruning ? json(p.schedule().target_at(t, final_target)) : json(nullptr);
      json used = json::array();  // what the pruning step scores with: the last step's scores
      for (const Eigen::VectorXd& v : p.cached_scores()) {
        if (v.size() == 0) {
          used.push_back(nullptr);
        } else {
          used.push_back(std::vector<double>(v.data(), v.data() + v.size()));
        }
      }
      s["scores_used"] = pruning ? used : json(nullptr);
      const std::size_t skipped_before = p.skipped_steps().size();
      s["masked_more"] = p.on_step_begin();  // INC's loop passes `local`; the counted form needs none
      s["skipped"] = p.skipped_steps().size() > skipped_before;
      json masks = json::array();
      for (const mhaprune::HeadMask& m : p.masks()) {
        json keep = json::array();
        for (Index h = 0; h < m.heads(); ++h) keep.push_back(m.keeps(h) ? 1 : 0);
        masks.push_back(std::move(keep));
      }
      s["masks"] = std::move(masks);

      // The backward pass: this step's gradients; then the hooks around the optimizer.
      std::vector<std::vector<Matrix>> grads(blocks);
      mhaprune::EvidenceMap evidence;
      json grads_json = json::object();
      for (std::size_t b = 0; b < blocks; ++b) {
        mhaprune::Evidence ev;
        json per_tensor = json::object();
        for (int role = 0; role < 4; ++role) grads[b].push_back(gradient(table, t, b, role));
        for (int role = 0; role < 4; ++role) {
          ev.with_gradient(kTensorNames[role], grads[b][static_cast<std::size_t>(role)]);
          per_tensor[kTensorNames[role]] = matrix_json(grads[b][static_cast<std::size_t>(role)]);
        }
        evidence[model.blocks[b].name()] = ev;
        grads_json[model.blocks[b].name()] = std::move(per_tensor);
      }
      s["gradients"] = std::move(grads_json);
      p.on_before_optimizer_step(evidence);
      for (std::size_t b = 0; b < blocks; ++b)
        for (std::size_t role = 0; role < 4; ++role)
          (*model.weights[b])[role] -= kLearningRate * grads[b][role];
      p.on_after_optimizer_step();
      json absmax = json::array();
      for (std::size_t b = 0; b < blocks; ++b) absmax.push_back(head_absmax(*model.weights[b]));
      s["head_absmax_after"] = std::move(absmax);
      steps.push_back(std::move(s));
    }
  }
  json out;
  out["name"] = name;
  out["criterion"] = criterion;
  out["heads"] = kHeads;
  out["head_dim"] = kDim;
  out["model_dim"] = kModel;
  json names = json::array();
  for (const auto& b : model.blocks) names.push_back(b.name());
  out["blocks"] = std::move(names);
  out["schedule"] = std::move(schedule_json);
  out["final_target"] = final_target;
  out["epochs"] = epochs;
  out["steps_per_epoch"] = steps_per_epoch;
  out["learning_rate"] = kLearningRate;
  out["gradient_table"] = table;
  out["steps"] = std::move(steps);
  out["report"] = p.finalize();
  return out;
}

/// How many heads GlobalSelection (default options) removes from ten fresh 4-head blocks at `target`.
Index removed_of_40(double target) {
  std::vector<mhaprune::BlockScores> blocks;
  for (Index b = 0; b < 10; ++b) {
    mhaprune::BlockScores s;
    s.name = "b" + std::to_string(b);
    s.heads = s.kv_heads = s.original_heads = s.original_kv_heads = 4;
    s.head_ids = {0, 1, 2, 3};
    s.scores = Eigen::Vector4d(1.0 + static_cast<double>(b), 11.0 + static_cast<double>(b),
                               21.0 + static_cast<double>(b), 31.0 + static_cast<double>(b));
    blocks.push_back(std::move(s));
  }
  Index n = 0;
  for (const auto& chosen : mhaprune::GlobalSelection{}.select(blocks, target, mhaprune::SelectionOptions{}))
    n += static_cast<Index>(chosen.size());
  return n;
}

/// Fills the steps a scenario does not care about with a fixed, untied pattern.
Table table_of(long steps, std::size_t blocks) {
  Table t(static_cast<std::size_t>(steps), std::vector<std::vector<double>>(blocks, std::vector<double>(4)));
  for (std::size_t s = 0; s < t.size(); ++s)
    for (std::size_t b = 0; b < blocks; ++b)
      for (std::size_t h = 0; h < 4; ++h) t[s][b][h] = static_cast<double>(1 + (3 * s + 5 * b + 7 * h) % 11);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mhaprune_inc_parity_replay <out.json>\n";
    return 2;
  }
  try {
    json doc;
    doc["scenarios"] = json::array();

    // 1. Iterative, linear, pruning steps 0, 2, 4, 6, 8 to 0.5 of 8 heads (k = 0, 1, 2, 3, 4), two
    //    epochs of five steps. The table rows a pruning step scores with (the previous step's):
    {
      Table t = table_of(10, 2);
      t[1] = {{8, 1, 6, 7}, {5, 9, 4, 10}};  // step 2: one clear weakest, (0,1)
      t[3] = {{8, 1, 6, 7}, {5, 9, 10, 2}};  // step 4: (0,1) and (1,3)
      t[5] = {{8, 1, 4, 7}, {4, 9, 10, 2}};  // step 6: (0,2) and (1,0) tie at the threshold
      t[7] = {{8, 20, 1, 7}, {3, 4, 9, 2}};  // step 8: (0,1) is now strong
      json sched = {{"kind", "iterative"},    {"start_step", 0},   {"end_step", 8},
                    {"pruning_frequency", 2}, {"decay", "linear"}, {"initial", 0.0}};
      doc["scenarios"].push_back(run<mhaprune::Gradient>(
          "iterative_gradient_global", "gradient",
          mhaprune::IterativeSchedule(0, 8, 2, mhaprune::Decay::linear), sched, 0.5, 2, 5, t));
    }
    // 2. One-shot at step 1 to 0.5 of 8: the four weakest heads are all of block 1.
    {
      Table t = table_of(3, 2);
      t[0] = {{5, 6, 7, 8}, {1, 2, 3, 4}};
      json sched = {{"kind", "oneshot"}, {"start_step", 1}, {"end_step", 1}, {"pruning_frequency", 1}};
      doc["scenarios"].push_back(run<mhaprune::Gradient>("oneshot_gradient_global", "gradient",
                                                         mhaprune::OneshotSchedule(1), sched, 0.5, 1, 3, t));
    }
    // 3. snip_momentum, one-shot at step 0, before any backward pass, to 0.5 of 8 (INC's running
    //    scores start at zero; ours have none yet).
    {
      const Table t = table_of(3, 2);
      json sched = {{"kind", "oneshot"}, {"start_step", 0}, {"end_step", 0}, {"pruning_frequency", 1}};
      doc["scenarios"].push_back(run<mhaprune::SnipMomentum>(
          "oneshot_snip_momentum_step0", "snip_momentum", mhaprune::OneshotSchedule(0), sched, 0.5, 1, 3, t));
    }

    // 4. The schedule targets alone, every decay, pruning steps 0, 2, ..., 8 to 0.7, and how many of
    //    40 heads (ten fresh 4-head blocks, distinct scores) GlobalSelection removes at each target.
    json targets = json::array();
    for (mhaprune::Decay d :
         {mhaprune::Decay::linear, mhaprune::Decay::cube, mhaprune::Decay::cos, mhaprune::Decay::exp}) {
      const mhaprune::IterativeSchedule s(0, 8, 2, d);
      json row = {{"decay", mhaprune::to_string(d)},
                  {"start_step", 0},
                  {"end_step", 8},
                  {"pruning_frequency", 2},
                  {"final_target", 0.7}};
      json at = json::array();
      for (long step = 0; step <= 8; ++step)
        if (s.is_pruning_step(step)) {
          const double target = s.target_at(step, 0.7);
          at.push_back({{"step", step}, {"target", target}, {"removed_of_40", removed_of_40(target)}});
        }
      row["targets"] = std::move(at);
      targets.push_back(std::move(row));
    }
    doc["targets"] = std::move(targets);

    std::ofstream f(argv[1]);
    f << doc.dump(1) << '\n';
    if (!f) {
      std::cerr << "mhaprune_inc_parity_replay: cannot write " << argv[1] << '\n';
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "mhaprune_inc_parity_replay: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
