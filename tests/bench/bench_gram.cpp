// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Gram accumulation of ActivationStats over one 2048x4096 float batch, against its baseline measured
// in the same run: one Eigen float GEMM of the same shape, G = XᵀX. Target: throughput >= 0.8x the
// GEMM's. Both run on one thread (Eigen uses threads only under OpenMP, which is not enabled here).
// The ratio is taken between the best iterations' thread CPU times (wall times are printed too):
// run with --benchmark_min_time=5 for several iterations of each.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mhaprune/calibration/activation_stats.hpp>

namespace {

constexpr Eigen::Index kTokens = 2048;
constexpr Eigen::Index kChannels = 4096;
constexpr double kTarget = 0.8;

const Eigen::MatrixXf& batch() {
  static const Eigen::MatrixXf x = [] {
    Eigen::MatrixXf m = Eigen::MatrixXf::Random(kTokens, kChannels);
    m.array() += 1.0f;  // a non-zero mean, as real activations have
    return m;
  }();
  return x;
}

/// Fastest iteration of one benchmark, over every run and repetition: the machine is shared, and the
/// best time is the one least disturbed by others. Both clocks are kept: the work is single-threaded,
/// so the thread's CPU time measures it even while another process takes the core away.
struct Best {
  double wall = 0;
  double cpu = 0;
};
Best g_gemm;
Best g_gram;
bool g_failed = false;

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void keep_min(double& best, double t) {
  if (best == 0 || t < best) best = t;
}

template <typename Work>
void timed(benchmark::State& state, Best& best, Work&& work) {
  for (auto _ : state) {
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu_seconds();
    work();
    benchmark::ClobberMemory();
    keep_min(best.cpu, thread_cpu_seconds() - c0);
    keep_min(best.wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
  }
}

void BM_EigenGemmBaseline(benchmark::State& state) {
  const Eigen::MatrixXf& x = batch();
  Eigen::MatrixXf g(kChannels, kChannels);
  timed(state, g_gemm, [&] {
    g.noalias() = x.transpose() * x;
    benchmark::DoNotOptimize(g.data());
  });
  state.SetItemsProcessed(state.iterations() * kTokens);
  state.counters["gflops"] = benchmark::Counter(
      2.0 * kTokens * kChannels * kChannels * 1e-9 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_ActivationStatsGram(benchmark::State& state) {
  const Eigen::MatrixXf& x = batch();
  mhaprune::ActivationStats stats(kChannels, mhaprune::GramTracking::on);
  timed(state, g_gram, [&] {
    stats.add(x);
    benchmark::DoNotOptimize(stats.gram().data());
  });
  state.SetItemsProcessed(state.iterations() * kTokens);

  // A fast wrong answer is no answer: spot-check entries against double dot products.
  const double n = static_cast<double>(state.iterations());
  double worst = 0;
  for (Eigen::Index k = 0; k < 64; ++k) {
    const Eigen::Index i = (k * 977) % kChannels, j = (k * 131 + 7) % kChannels;
    const double exact = x.col(i).cast<double>().dot(x.col(j).cast<double>());
    worst = std::max(worst, std::abs(stats.gram()(i, j) / n - exact) / std::abs(exact));
  }
  state.counters["max_rel_error"] = worst;
  if (!(worst < 1e-5)) {
    g_failed = true;
    state.SkipWithError("ActivationStats::gram() disagrees with XtX");
  }
  if (g_gemm.cpu > 0 && g_gram.cpu > 0) {
    state.counters["throughput_vs_gemm"] = g_gemm.cpu / g_gram.cpu;
    state.counters["throughput_vs_gemm_wall"] = g_gemm.wall / g_gram.wall;
  }
}

// The baseline is registered first so its time is known when the Gram benchmark reports the ratio.
BENCHMARK(BM_EigenGemmBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ActivationStatsGram)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_gemm.cpu > 0 && g_gram.cpu > 0) {
    const double ratio = g_gemm.cpu / g_gram.cpu;
    std::printf("bench_gram: %ldx%ld float batch, %d thread(s), best thread CPU time: ",
                static_cast<long>(kTokens), static_cast<long>(kChannels), Eigen::nbThreads());
    std::printf(
        "ActivationStats::add with Gram %.1f ms, Eigen float GEMM XtX %.1f ms (wall: %.1f vs %.1f ms); ",
        g_gram.cpu * 1e3, g_gemm.cpu * 1e3, g_gram.wall * 1e3, g_gemm.wall * 1e3);
    std::printf("throughput_vs_gemm %.2f (wall %.2f), target >= %.2f: %s\n", ratio, g_gemm.wall / g_gram.wall,
                kTarget, ratio >= kTarget ? "met" : "MISSED");
  }
  return g_failed ? 1 : 0;
}
