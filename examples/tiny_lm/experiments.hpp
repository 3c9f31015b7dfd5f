// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "calibration.hpp"
#include "evaluate.hpp"
#include "prune.hpp"
#include "search.hpp"

namespace tiny_lm {

/// Many pruning runs of one checkpoint: each loads a fresh model, prunes it with the shared calibration
/// (collected once, from the unpruned model) and measures the held-out NLL. Runs that end with the same
/// heads removed and the same compensation give the same model, so they are evaluated once.
template <typename Model>
class Experiments {
 public:
  explicit Experiments(std::string dir) : dir_(std::move(dir)) {
    const Model model(dir_);
    heldout_ = Model::batch(read_sequences(dir_ + "/text/heldout.txt"));
    unpruned_ = evaluate(model, heldout_);
    calibration_.batch = Model::batch(read_sequences(dir_ + "/text/calibration.txt"));
    calibration_.o_input = collect_o_input_stats(model, calibration_.batch);
    calibration_.gate_gradients = read_gate_gradients(model, dir_ + "/head_gate_grads.safetensors");
    calibration_.original_residual = collect_attention_residuals(model, calibration_.batch);
  }

  const Nll& unpruned() const { return unpruned_; }

  /// Runs every setting on `threads` threads; results in the order of `settings`.
  std::vector<Nll> run(const std::vector<PruneSettings>& settings, unsigned threads) {
    return in_parallel(settings.size(), threads, [&](std::size_t i) { return run_one(settings[i]); });
  }

  /// The held-out NLL of each setting pruned with statistics from a bootstrap resample of the
  /// calibration sequences (drawn with replacement, seeded by `seeds[i]`): how much a result depends on
  /// which calibration text happened to be drawn. Not memoised.
  std::vector<Nll> run_resampled(const std::vector<PruneSettings>& settings,
                                 const std::vector<std::uint64_t>& seeds, unsigned threads) const {
    return in_parallel(settings.size(), threads, [&](std::size_t i) {
      const Calibration c = resampled_calibration(seeds[i]);
      Model model(dir_);
      prune(model, searched(settings[i], c), c);
      return evaluate(model, heldout_);
    });
  }

 private:
  template <typename F>
  static std::vector<Nll> in_parallel(std::size_t n, unsigned threads, F&& job) {
    std::vector<Nll> out(n);
    std::atomic<std::size_t> next{0};
    const auto worker = [&] {
      for (std::size_t i = next++; i < n; i = next++) out[i] = job(i);
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    return out;
  }

  /// `s` with the searched heads filled in when its order asks for a search.
  PruneSettings searched(PruneSettings s, const Calibration& c) const {
    if (s.order == RemovalOrder::searched_targets) {
      if (s.scope == "global") s.layer_counts = search_layer_counts<Model>(dir_, s, c);
      s.layer_heads = search_layer_heads<Model>(dir_, s, c);
    }
    return s;
  }

  Calibration resampled_calibration(std::uint64_t seed) const {
    const TokenBatch& all = calibration_.batch;
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<Index> pick(0, all.sequences - 1);
    Calibration c;
    c.batch.sequences = all.sequences;
    c.batch.length = all.length;
    for (Index i = 0; i < all.sequences; ++i) {
      const auto first = static_cast<std::ptrdiff_t>(pick(rng) * all.length), end = first + all.length;
      c.batch.inputs.insert(c.batch.inputs.end(), all.inputs.begin() + first, all.inputs.begin() + end);
      c.batch.targets.insert(c.batch.targets.end(), all.targets.begin() + first, all.targets.begin() + end);
    }
    const Model model(dir_);
    c.o_input = collect_o_input_stats(model, c.batch);
    c.gate_gradients = calibration_.gate_gradients;  // from the training script, not resampled
    c.original_residual = collect_attention_residuals(model, c.batch);
    return c;
  }

  Nll run_one(PruneSettings s) {
    s = searched(std::move(s), calibration_);
    Model model(dir_);
    const auto removed = prune(model, s, calibration_);
    std::string key = std::string(mhaprune::to_string(s.compensation));
    // The same heads removed with the same compensation give the same model, except that sequential
    // and greedy runs compensate with other statistics.
    if (s.compensation != mhaprune::CompensationMethod::none)
      key += " " + std::to_string(static_cast<int>(s.order)) + (s.refit_values ? " V" : "");
    for (const auto& layer : removed) {
      key += " |";
      for (Index id : layer) key += " " + std::to_string(id);
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const auto it = memo_.find(key);
      if (it != memo_.end()) return it->second;
    }
    Nll nll = evaluate(model, heldout_);
    const std::lock_guard<std::mutex> lock(mutex_);
    memo_.emplace(key, nll);
    return nll;
  }

  std::string dir_;
  TokenBatch heldout_;
  Nll unpruned_;
  Calibration calibration_;
  std::mutex mutex_;
  std::map<std::string, Nll> memo_;
};

}  // namespace tiny_lm
