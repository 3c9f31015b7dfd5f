// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The quality tables (QUALITY.md beside this file): held-out NLL of the bundled checkpoints after removing
// 25% and 50% of their attention heads with every criterion, scope and compensation, as Markdown on stdout.
// Run it through scripts/quality-table. Nothing here is tuned on the held-out text: the library's defaults,
// statistics from text/calibration.txt, gradients from the training script.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bert.hpp"
#include "experiments.hpp"
#include "qwen2.hpp"

namespace {

using tiny_lm::Nll;
using tiny_lm::PruneSettings;
using Method = mhaprune::CompensationMethod;

const std::vector<std::string> criteria{"magnitude", "wanda_sp", "fluctuation", "taylor", "fisher", "obs"};
const std::vector<Method> methods{Method::none, Method::bias,     Method::scale,
                                  Method::lsq,  Method::bias_lsq, Method::obs};
const std::vector<double> sparsities{0.25, 0.5};
const std::vector<std::string> scopes{"local", "global"};
constexpr int random_seeds = 5;
constexpr double noise_factor = 2.0;      // "worse beyond noise": more than 2 standard errors
constexpr int calibration_resamples = 8;  // bootstrap draws of the calibration text, for flagged cells

/// Refitting to targets has no scale or obs variant; the search is run for bias+lsq only (its cost).
bool applicable(tiny_lm::RemovalOrder order, Method m, bool values) {
  if (values || order == tiny_lm::RemovalOrder::searched_targets) return m == Method::bias_lsq;
  if (order == tiny_lm::RemovalOrder::sequential_targets) return m != Method::scale && m != Method::obs;
  return true;
}

/// One line of the table: a criterion at one sparsity and scope, with every compensation.
struct Row {
  double sparsity = 0.0;
  std::string scope, criterion;
  tiny_lm::RemovalOrder order = tiny_lm::RemovalOrder::one_shot;
  bool values = false;           // V refitted too
  std::vector<Nll> nll;          // per method; for random the mean over seeds (per sequence too)
  std::vector<double> seed_std;  // per method, random only: std of the seeds' NLLs
  /// per method: SD over calibration resamples of (NLL with it - NLL without); NaN when not measured
  std::vector<double> calibration_sd;
};

/// Held-out sampling noise of "method m vs no compensation" in a row: the paired standard error.
double held_out_noise(const Row& r, std::size_t m) {
  return tiny_lm::paired_standard_error(r.nll[m], r.nll[0]);
}

/// All the noise measured for that comparison: held-out sampling and, where measured, which
/// calibration text was drawn (independent sources, so their variances add).
double noise(const Row& r, std::size_t m) {
  const double h = held_out_noise(r, m), c = r.calibration_sd.empty() ? NAN : r.calibration_sd[m];
  return std::isnan(c) ? h : std::sqrt(h * h + c * c);
}

bool comparable(const Row& r, std::size_t m) {
  return m > 0 && !std::isnan(r.nll[m].mean) && !std::isnan(r.nll[0].mean);
}

double excess(const Row& r, std::size_t m) { return r.nll[m].mean - r.nll[0].mean; }

Nll mean_over_seeds(const std::vector<Nll>& runs, double& std_out) {
  Nll m = runs.front();
  std::vector<double> means;
  for (std::size_t i = 1; i < runs.size(); ++i)
    for (std::size_t s = 0; s < m.per_sequence.size(); ++s) m.per_sequence[s] += runs[i].per_sequence[s];
  double sum = 0.0;
  for (const Nll& r : runs) sum += r.mean, means.push_back(r.mean);
  m.mean = sum / static_cast<double>(runs.size());
  for (double& v : m.per_sequence) v /= static_cast<double>(runs.size());
  std_out = tiny_lm::standard_error(means) * std::sqrt(static_cast<double>(means.size()));
  return m;
}

template <typename Model>
std::vector<Row> run_rows(tiny_lm::Experiments<Model>& experiments, const std::vector<std::string>& names,
                          tiny_lm::RemovalOrder order, unsigned threads, bool values = false) {
  std::vector<PruneSettings> settings;
  std::vector<Row> rows;
  for (double sparsity : sparsities)
    for (const std::string& scope : scopes)
      for (const std::string& name : names) {
        rows.push_back({sparsity, scope, name, order, values, {}, {}, {}});
        const int seeds = name == "random" ? random_seeds : 1;
        for (Method m : methods)
          for (int seed = 0; seed < seeds && applicable(order, m, values); ++seed)
            settings.push_back(
                {name, scope, sparsity, static_cast<std::uint64_t>(seed), m, order, {}, {}, values});
      }
  const std::vector<Nll> results = experiments.run(settings, threads);
  std::size_t at = 0;
  for (Row& row : rows) {
    const std::size_t seeds = row.criterion == "random" ? random_seeds : 1;
    for (std::size_t m = 0; m < methods.size(); ++m) {
      if (!applicable(row.order, methods[m], row.values)) {
        row.nll.push_back({NAN, {}, 0});
        row.seed_std.push_back(NAN);
        continue;
      }
      const std::vector<Nll> runs(results.begin() + static_cast<long>(at),
                                  results.begin() + static_cast<long>(at + seeds));
      at += seeds;
      double sd = 0.0;
      row.nll.push_back(seeds > 1 ? mean_over_seeds(runs, sd) : runs.front());
      row.seed_std.push_back(sd);
    }
  }
  return rows;
}

std::string percent(double x) { return std::to_string(static_cast<int>(std::lround(100.0 * x))) + "%"; }

std::string label(const Row& r) {
  std::string s = r.criterion == "random" ? "random (mean of 5 seeds)" : r.criterion;
  if (r.order == tiny_lm::RemovalOrder::sequential) s += ", sequential";
  if (r.order == tiny_lm::RemovalOrder::greedy) s += ", greedy";
  if (r.order == tiny_lm::RemovalOrder::sequential_targets) s += ", sequential to unpruned";
  if (r.order == tiny_lm::RemovalOrder::searched_targets) s += ", searched on calibration NLL";
  if (r.values) s += ", V refitted";
  return s;
}

double best_in(const std::vector<Row>& rows, double sparsity, const std::string& scope) {
  double best = INFINITY;
  for (const Row& r : rows)
    if (r.sparsity == sparsity && r.scope == scope)
      for (const Nll& n : r.nll) best = std::min(best, n.mean);
  return best;
}

void print_table(const std::vector<Row>& rows) {
  std::printf("| heads removed | scope | criterion |");
  for (Method m : methods)
    std::printf(" %s |", m == Method::none ? "no compensation" : std::string(to_string(m)).c_str());
  std::printf("\n|---|---|---|");
  for (std::size_t m = 0; m < methods.size(); ++m) std::printf("---:|");
  std::printf("\n");
  for (double sparsity : sparsities)
    for (const std::string& scope : scopes) {
      const double best = best_in(rows, sparsity, scope);
      for (const Row& r : rows) {
        if (r.sparsity != sparsity || r.scope != scope) continue;
        std::printf("| %s | %s | %s |", percent(sparsity).c_str(), scope.c_str(), label(r).c_str());
        for (std::size_t m = 0; m < methods.size(); ++m) {
          const double v = r.nll[m].mean;
          if (std::isnan(v)) {
            std::printf(" – |");
            continue;
          }
          const bool held_out_only = comparable(r, m) && excess(r, m) > noise_factor * held_out_noise(r, m);
          const bool worse = comparable(r, m) && excess(r, m) > noise_factor * noise(r, m);
          std::string cell = (v == best ? "**%.4f**" : "%.4f");
          char buf[64];
          std::snprintf(buf, sizeof buf, cell.c_str(), v);
          cell = buf;
          if (r.criterion == "random") {
            std::snprintf(buf, sizeof buf, " ±%.3f", r.seed_std[m]);
            cell += buf;
          }
          std::printf(" %s%s |", cell.c_str(), worse ? " †" : held_out_only ? " ‡" : "");
        }
        std::printf("\n");
      }
    }
}

/// Rows whose compensation refits to the unpruned model (this project's extension) rather than to the
/// block's own output from O-input statistics (the methods).
bool refits_to_targets(const Row& r) {
  return r.order == tiny_lm::RemovalOrder::sequential_targets ||
         r.order == tiny_lm::RemovalOrder::searched_targets;
}

/// "Compensation never makes NLL worse than the same criterion without it beyond noise", over the
/// rows of one kind, with every cell beyond the held-out noise listed with its numbers.
void print_compensation_check(const std::vector<Row>& rows, bool targets) {
  int cells = 0, worse = 0, held_out = 0, beyond = 0;
  std::string list;
  for (const Row& r : rows)
    for (std::size_t m = 1; m < methods.size(); ++m) {
      if (refits_to_targets(r) != targets || !comparable(r, m)) continue;
      ++cells;
      const double diff = excess(r, m);
      if (diff > 0) ++worse;
      if (diff <= noise_factor * held_out_noise(r, m)) continue;
      ++held_out;
      if (diff > noise_factor * noise(r, m)) ++beyond;
      char buf[300];
      std::snprintf(buf, sizeof buf,
                    "%s%s %s %s + %s (%+.4f; held-out paired SE %.4f, calibration SD %.4f)%s",
                    list.empty() ? "" : "; ", percent(r.sparsity).c_str(), r.scope.c_str(), label(r).c_str(),
                    std::string(to_string(methods[m])).c_str(), diff, held_out_noise(r, m),
                    r.calibration_sd[m], diff > noise_factor * noise(r, m) ? ", beyond both" : "");
      list += buf;
    }
  std::printf(
      "- %s vs the same criterion without it: %d of %d cells worse at all; %d worse by more than "
      "%.0f paired standard errors of the held-out text, and of those %d also beyond %.0f times the noise "
      "with the calibration text's own (SD over %d bootstrap resamples of the calibration sequences) added "
      "(† beyond both, ‡ held-out only)%s%s%s\n",
      targets ? "Refits to the unpruned model (\"sequential to unpruned\", \"searched\", \"V refitted\"; "
                "beyond the issue)"
              : "Compensation from O-input statistics (the issue's methods)",
      worse, cells, held_out, noise_factor, beyond, noise_factor, calibration_resamples, held_out ? ": " : "",
      list.c_str(),
      targets  ? "."
      : beyond ? ": target NOT met."
               : ": target met.");
}

/// The two targets, checked on the rows, with the numbers behind each verdict.
void print_targets(const std::vector<Row>& rows, const Nll& unpruned) {
  std::printf("\nTargets:\n\n");
  for (const std::string& scope : scopes) {
    double magnitude = NAN, best = INFINITY;
    std::string who;
    for (const Row& r : rows) {
      if (r.sparsity != 0.5 || r.scope != scope) continue;
      if (r.criterion == "magnitude" && r.order == tiny_lm::RemovalOrder::one_shot) magnitude = r.nll[0].mean;
      for (std::size_t m = 0; m < methods.size(); ++m)
        if (r.nll[m].mean < best)
          best = r.nll[m].mean, who = label(r) + " + " + std::string(to_string(methods[m]));
    }
    const double ratio = (best - unpruned.mean) / (magnitude - unpruned.mean);
    std::printf(
        "- 50%% removed, %s: magnitude without compensation +%.4f nats, best (%s) +%.4f, i.e. %.0f%% of "
        "magnitude's increase: target (<= 50%%) %s.\n",
        scope.c_str(), magnitude - unpruned.mean, who.c_str(), best - unpruned.mean, 100.0 * ratio,
        ratio <= 0.5 ? "met" : "NOT met");
  }
  print_compensation_check(rows, false);
  print_compensation_check(rows, true);
}

/// Measures the calibration noise of every cell that looks worse than no compensation beyond the
/// held-out noise: the same two settings pruned with statistics from bootstrap resamples of the
/// calibration sequences (random rows: seed b % 5 in draw b), the SD of their difference.
template <typename Model>
void add_calibration_noise(tiny_lm::Experiments<Model>& experiments, std::vector<Row>& rows,
                           unsigned threads) {
  std::vector<PruneSettings> settings;
  std::vector<std::uint64_t> seeds;
  std::vector<std::pair<std::size_t, std::size_t>> cells;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Row& r = rows[i];
    r.calibration_sd.assign(methods.size(), NAN);
    for (std::size_t m = 1; m < methods.size(); ++m) {
      if (!comparable(r, m) || excess(r, m) <= noise_factor * held_out_noise(r, m)) continue;
      cells.emplace_back(i, m);
      for (int b = 0; b < calibration_resamples; ++b)
        for (Method method : {Method::none, methods[m]}) {
          const auto seed = static_cast<std::uint64_t>(r.criterion == "random" ? b % random_seeds : 0);
          settings.push_back({r.criterion, r.scope, r.sparsity, seed, method, r.order, {}, {}, r.values});
          seeds.push_back(1000 + static_cast<std::uint64_t>(b));
        }
    }
  }
  const std::vector<Nll> results = experiments.run_resampled(settings, seeds, threads);
  for (std::size_t c = 0; c < cells.size(); ++c) {
    std::vector<double> diff;
    for (int b = 0; b < calibration_resamples; ++b) {
      const std::size_t at = (c * calibration_resamples + static_cast<std::size_t>(b)) * 2;
      diff.push_back(results[at + 1].mean - results[at].mean);
    }
    // standard_error is SD / sqrt(n): undo the sqrt to get the SD of one draw.
    rows[cells[c].first].calibration_sd[cells[c].second] =
        tiny_lm::standard_error(diff) * std::sqrt(static_cast<double>(diff.size()));
  }
}

template <typename Model>
void report(const std::string& name, const std::string& dir, unsigned threads, bool all_sequential) {
  const auto start = std::chrono::steady_clock::now();
  tiny_lm::Experiments<Model> experiments(dir);
  const Nll& unpruned = experiments.unpruned();
  std::vector<std::string> names{"random"};
  names.insert(names.end(), criteria.begin(), criteria.end());
  std::vector<Row> rows = run_rows(experiments, names, tiny_lm::RemovalOrder::one_shot, threads);

  // Sequential calibration for the criterion that does best at 50% in one shot (or for all).
  std::vector<std::string> sequential = criteria;
  if (!all_sequential) {
    double best = INFINITY;
    for (const Row& r : rows)
      for (const Nll& n : r.nll)
        if (r.sparsity == 0.5 && r.criterion != "random" && n.mean < best)
          best = n.mean, sequential = {r.criterion};
  }
  std::vector<Row> more = run_rows(experiments, sequential, tiny_lm::RemovalOrder::sequential, threads);
  rows.insert(rows.end(), more.begin(), more.end());
  // ZipLM: OBS costs re-computed after every removal (single-head costs assume the others stay).
  more = run_rows(experiments, {"obs"}, tiny_lm::RemovalOrder::greedy, threads);
  rows.insert(rows.end(), more.begin(), more.end());
  // Every layer refitted to the unpruned model's residual stream, layer by layer; obs there ranks
  // heads by the residual that refit leaves.
  names.erase(names.begin());  // random: 5 seeds of sequential runs add little
  more = run_rows(experiments, names, tiny_lm::RemovalOrder::sequential_targets, threads);
  rows.insert(rows.end(), more.begin(), more.end());
  // And the heads (and with global scope the per-layer counts) searched on the calibration NLL.
  more = run_rows(experiments, {"obs"}, tiny_lm::RemovalOrder::searched_targets, threads);
  rows.insert(rows.end(), more.begin(), more.end());
  // And the kept heads' V refitted with O (mhaprune::refit_values) after each layer's removal.
  more = run_rows(experiments, criteria, tiny_lm::RemovalOrder::sequential_targets, threads, true);
  rows.insert(rows.end(), more.begin(), more.end());
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.sparsity != b.sparsity ? a.sparsity < b.sparsity : a.scope != b.scope && a.scope == "local";
  });

  add_calibration_noise(experiments, rows, threads);
  std::printf("### %s\n\nUnpruned held-out NLL %.4f nats (standard error over the 64 sequences %.4f).\n\n",
              name.c_str(), unpruned.mean, tiny_lm::standard_error(unpruned.per_sequence));
  print_table(rows);
  print_targets(rows, unpruned);
  std::printf("\n");
  std::fprintf(stderr, "%s: %.1f s\n", name.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = TINY_LM_DATA_DIR;
  unsigned threads = 1;
  bool all_sequential = false;
  CLI::App app{"The quality tables of QUALITY.md (Markdown on stdout)"};
  app.add_option("--data", data, "the tests/data directory");
  app.add_option("--threads", threads, "pruning runs in parallel")->check(CLI::Range(1u, 64u));
  app.add_flag("--all-sequential", all_sequential,
               "sequential calibration for every criterion, not only the best");
  CLI11_PARSE(app, argc, argv);
  try {
    report<tiny_lm::Qwen2>("tiny-qwen2 (decoder, 4 layers x 8 query heads, 2 KV heads, BF16)",
                           data + "/tiny-qwen2", threads, all_sequential);
    report<tiny_lm::Bert>("tiny-bert (encoder, 4 layers x 4 heads, F32)", data + "/tiny-bert", threads,
                          all_sequential);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
