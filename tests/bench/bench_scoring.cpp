// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// How fast is element-wise head scoring, compared with the cheapest conceivable pass over the same
// bytes: a plain read-reduction (sum of |x|)?
//
// Block: separate row-major Q/K/V/O in PyTorch Linear orientation, LLaMA-7B shaped (D=4096, H=H_kv=32,
// d=128): 4 x 64 MiB in fp32, 4 x 32 MiB in bf16, far larger than any cache. The criterion is
// `Magnitude` with mean reduction (the pruner's default): each head's 128 rows of Q, K, V (one 2 MiB run
// each) and its 128 columns of O (4096 runs of 128 elements, one per row of O).
//
// The yardstick, written simply and well:
// - fp32: Eigen's `Map<const ArrayXf>(p, n).abs().sum()` over each tensor (explicitly vectorised).
// - bf16: a loop over the raw 16-bit values, clearing the sign bit and shifting into a float, with 16
//   independent float accumulators written out, which the compiler vectorises at -O2 and -O3.
//
// Each iteration times both, in alternating order (std::chrono), so that both see the same machine;
// the scoring time is the benchmark's reported (manual) time. Counters: score_ms and read_ms (medians),
// score_GBps and read_GBps, and throughput_vs_read = read_ms / score_ms (target >= 0.7). A one-line
// summary per dtype is printed after the run. Before timing, the scores are checked against the
// yardstick (the four tensors' |x| sums per head must add up to the read total); the process exits
// non-zero when they do not. The timing target is only reported: shared machines make timings noisy.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <utility>
#include <vector>

namespace {

using mhaprune::Index;

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr double kTarget = 0.7;
constexpr Index kD = 4096, kH = 32, kHkv = 32, kd = 128;

template <typename T>
const char* type_name() {
  return sizeof(T) == 4 ? "fp32" : "bf16";
}

/// Values in about [-1, 1) that differ from element to element.
template <typename T>
void fill(RowMatrix<T>& m, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  T* p = m.data();
  for (Index i = 0; i < m.size(); ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const float v = static_cast<float>(static_cast<std::int32_t>(x >> 32)) * (1.0f / 2147483648.0f);
    p[i] = T(v);
  }
}

/// The LLaMA-7B-shaped block, built once per dtype and kept for every run.
template <typename T>
struct Block {
  RowMatrix<T> q{kH * kd, kD}, k{kHkv * kd, kD}, v{kHkv * kd, kD}, o{kD, kH*kd};
  mhaprune::AttentionBlock<T> block{"layers.0.self_attn", mhaprune::HeadLayout(kH, kHkv, kd, kD)};

  Block() {
    fill(q, 1);
    fill(k, 2);
    fill(v, 3);
    fill(o, 4);
    block.add(mhaprune::layout::query(q))
        .add(mhaprune::layout::key(k))
        .add(mhaprune::layout::value(v))
        .add(mhaprune::layout::output(o));
  }
  std::size_t bytes() const {
    return static_cast<std::size_t>(q.size() + k.size() + v.size() + o.size()) * sizeof(T);
  }

  static Block& get() {
    static std::unique_ptr<Block> b = std::make_unique<Block>();
    return *b;
  }
};

double read_reduce(const float* p, Index n) {
  return static_cast<double>(Eigen::Map<const Eigen::ArrayXf>(p, n).abs().sum());
}

float abs_bf16(Eigen::bfloat16 x) {
  const std::uint32_t bits = static_cast<std::uint32_t>(x.value & 0x7fffu) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The 16 lanes written out, so the compiler vectorises them at -O2 too (a loop over the lanes is only
// vectorised at -O3).
template <int... L>
void add_lanes(float* acc, const Eigen::bfloat16* src, std::integer_sequence<int, L...>) {
  ((acc[L] += abs_bf16(src[L])), ...);
}

double read_reduce(const Eigen::bfloat16* src, Index n) {
  float acc[16] = {};
  Index i = 0;
  for (; i + 16 <= n; i += 16) add_lanes(acc, src + i, std::make_integer_sequence<int, 16>{});
  double s = 0.0;
  for (; i < n; ++i) s += std::abs(static_cast<double>(static_cast<float>(src[i])));
  for (float a : acc) s += static_cast<double>(a);
  return s;
}

template <typename T>
double read_block(const Block<T>& b) {
  return read_reduce(b.q.data(), b.q.size()) + read_reduce(b.k.data(), b.k.size()) +
         read_reduce(b.v.data(), b.v.size()) + read_reduce(b.o.data(), b.o.size());
}

double median_ms(std::vector<double> seconds) {
  if (seconds.empty()) return 0.0;
  std::sort(seconds.begin(), seconds.end());
  const std::size_t n = seconds.size();
  return (n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2])) * 1e3;
}

struct Summary {
  std::string label;
  std::string error;
  bool ok = false;
  double score_ms = 0, read_ms = 0, gib = 0;
};

std::vector<std::string> g_order;
std::map<std::string, Summary> g_summary;

/// The scores agree with the yardstick: per-head sums of |x| over all four tensors add up to the read.
template <typename T>
std::string verify(const Block<T>& b) {
  const mhaprune::RoleNumbers n = mhaprune::Magnitude(mhaprune::Reduction::sum).numbers(b.block);
  const double total = n.query.sum() + n.key.sum() + n.value.sum() + n.output.sum();
  const double read = read_block(b);
  if (!(std::abs(total - read) <= 1e-5 * read)) {
    return "per-head sums add up to " + std::to_string(total) + ", the plain read gives " +
           std::to_string(read);
  }
  const Eigen::VectorXd mean = mhaprune::Magnitude().scores(b.block);
  const Eigen::VectorXd sum = mhaprune::Magnitude(mhaprune::Reduction::sum).scores(b.block);
  if (mean.size() != kH || !sum.isApprox(static_cast<double>(kd * kD) * mean, 1e-9)) {
    return "mean and sum reductions disagree";
  }
  return {};
}

template <typename T>
void bm_magnitude(benchmark::State& state, const std::string key) {
  using Clock = std::chrono::steady_clock;
  Summary& sum = g_summary[key];
  sum = Summary{};
  const Block<T>& b = Block<T>::get();
  sum.gib = static_cast<double>(b.bytes()) / (1024.0 * 1024.0 * 1024.0);
  sum.label = std::string("magnitude scoring ") + type_name<T>() + " (LLaMA-7B block, " +
              std::to_string(b.bytes() >> 20) + " MiB, mean reduction)";
  sum.error = verify(b);
  if (!sum.error.empty()) {
    state.SkipWithError(sum.error.c_str());
    return;
  }

  const mhaprune::Magnitude criterion;
  std::vector<double> score_s, read_s;
  bool read_first = false;
  for (auto _ : state) {
    read_first = !read_first;
    double read_time = 0, score_time = 0;
    for (int pass = 0; pass < 2; ++pass) {
      const auto t0 = Clock::now();
      if ((pass == 0) == read_first) {
        benchmark::DoNotOptimize(read_block(b));
        read_time = std::chrono::duration<double>(Clock::now() - t0).count();
      } else {
        Eigen::VectorXd s = criterion.scores(b.block);
        benchmark::DoNotOptimize(s.data());
        score_time = std::chrono::duration<double>(Clock::now() - t0).count();
      }
    }
    read_s.push_back(read_time);
    score_s.push_back(score_time);
    state.SetIterationTime(score_time);
  }

  sum.ok = true;
  sum.score_ms = median_ms(score_s);
  sum.read_ms = median_ms(read_s);
  const double gb = static_cast<double>(b.bytes()) / 1e9;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(b.bytes()));
  state.counters["score_ms"] = sum.score_ms;
  state.counters["read_ms"] = sum.read_ms;
  state.counters["score_GBps"] = sum.score_ms > 0 ? gb / (sum.score_ms * 1e-3) : 0.0;
  state.counters["read_GBps"] = sum.read_ms > 0 ? gb / (sum.read_ms * 1e-3) : 0.0;
  state.counters["throughput_vs_read"] = sum.score_ms > 0 ? sum.read_ms / sum.score_ms : 0.0;
}

template <typename T>
void register_case() {
  const std::string key = std::string("magnitude_scoring/") + type_name<T>() + "/llama7b";
  g_order.push_back(key);
  benchmark::RegisterBenchmark(key.c_str(), bm_magnitude<T>, key)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

bool print_summary(std::FILE* out) {
  bool all_ok = true;
  bool header = false;
  for (const std::string& key : g_order) {
    const auto it = g_summary.find(key);
    if (it == g_summary.end()) continue;
    if (!header) {
      std::fprintf(out, "\nSummary (medians; throughput_vs_read = plain read time / scoring time):\n");
      header = true;
    }
    const Summary& s = it->second;
    if (!s.ok) {
      std::fprintf(out, "%s: FAILED: %s\n", s.label.c_str(), s.error.c_str());
      all_ok = false;
      continue;
    }
    const double ratio = s.score_ms > 0 ? s.read_ms / s.score_ms : 0.0;
    const double gb = s.gib * 1.073741824;
    std::fprintf(out,
                 "%s: %.2f ms (%.1f GB/s), plain read %.2f ms (%.1f GB/s), throughput_vs_read %.2f (target "
                 ">= %.1f: %s)\n",
                 s.label.c_str(), s.score_ms, gb / (s.score_ms * 1e-3), s.read_ms, gb / (s.read_ms * 1e-3),
                 ratio, kTarget, ratio >= kTarget ? "met" : "MISSED");
  }
  return all_ok;
}

}  // namespace

int main(int argc, char** argv) {
  bool machine_format = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--benchmark_format=", 0) == 0 && arg != "--benchmark_format=console")
      machine_format = true;
  }
  register_case<float>();
  register_case<Eigen::bfloat16>();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("mhaprune_version", MHAPRUNE_VERSION_STRING);
#ifdef MHAPRUNE_BENCH_BUILD_TYPE
  benchmark::AddCustomContext("mhaprune_build_type", MHAPRUNE_BENCH_BUILD_TYPE);
#endif
  benchmark::AddCustomContext("block",
                              "LLaMA-7B attention: D=4096, H=H_kv=32, d=128, separate row-major Q/K/V/O");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return print_summary(machine_format ? stderr : stdout) ? 0 : 1;
}
