// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// llama-imatrix files: both forms read against fixtures and expected values written by an
// independent numpy script (tests/data/imatrix/make_imatrix.py, which lays the GGUF form out as
// llama-imatrix's save_imatrix does), broken and truncated files, the writer (byte-identical to
// that layout), slice_columns, and what imatrix_to_stats gives the criteria and compensations.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mhaprune/io/imatrix.hpp"
#include "support/message_of.hpp"
#include "support/random_block.hpp"

namespace test_imatrix {

using Catch::Contains;
using Catch::StartsWith;
using mhaprune::io::Imatrix;
using mhaprune::io::ImatrixEntry;
using mhaprune::io::read_imatrix;
using mhaprune::io::slice_columns;
using mhaprune::io::write_imatrix_gguf;

namespace {

const std::string dir = MHAPRUNE_TEST_SOURCE_DIR "/data/imatrix/";

nlohmann::json expected() {
  std::ifstream in(dir + "expected.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A fresh directory, removed at scope exit.
struct Scratch {
  std::string path;
  Scratch() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/mhaprune-imatrix-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~Scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::vector<double> doubles(const nlohmann::json& j) { return j.get<std::vector<double>>(); }

/// The entries of `m` equal what expected.json says, exactly (float32 values read as double).
void check_against(const Imatrix& m, const nlohmann::json& want) {
  CHECK(m.datasets == want["datasets"].get<std::vector<std::string>>());
  CHECK(m.chunk_count == want["chunk_count"].get<std::uint32_t>());
  CHECK(m.chunk_size == want["chunk_size"].get<std::uint32_t>());
  REQUIRE(m.entries.size() == want["entries"].size());
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    const ImatrixEntry& e = m.entries[i];
    const nlohmann::json& w = want["entries"][i];
    INFO("entry " << w["name"].get<std::string>());
    CHECK(e.name == w["name"].get<std::string>());
    CHECK(e.n_mat == w["n_mat"].get<std::int64_t>());
    CHECK(e.sum2 == doubles(w["sum2"]));
    const std::vector<double> counts = doubles(w["counts"]);
    if (e.n_mat == 1) {
      CHECK(e.counts.empty());
      CHECK(e.count == counts[0]);
    } else {
      CHECK(e.counts == counts);
      CHECK(e.count == *std::max_element(counts.begin(), counts.end()));
    }
    CHECK(e.sum.has_value() == w.contains("sum"));
    if (e.sum && w.contains("sum")) CHECK(*e.sum == doubles(w["sum"]));
    CHECK(e.columns() * e.n_mat == static_cast<std::int64_t>(e.sum2.size()));
    CHECK(m.find(e.name) == &e);
  }
  CHECK(m.find("no.such.weight") == nullptr);
}

using mhaprune_test::message_of;

}  // namespace

TEST_CASE("read_imatrix reads the GGUF form", "[io][imatrix]") {
  const Imatrix m = read_imatrix(dir + "tiny.gguf");
  check_against(m, expected()["gguf"]);
  // The names as llama-imatrix sorts them: "blk.10" after "blk.1", "output" last.
  std::vector<std::string> names;
  for (const auto& e : m.entries) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"blk.0.attn_output.weight", "blk.0.attn_q.weight",
                                          "blk.0.ffn_up_exps.weight", "blk.1.attn_output.weight",
                                          "blk.10.attn_output.weight", "output.weight"});
}

TEST_CASE("read_imatrix reads the legacy .dat form", "[io][imatrix]") {
  const nlohmann::json want = expected()["dat"];
  const Imatrix m = read_imatrix(dir + "tiny.dat");
  check_against(m, want);
  // sum2 / count is the mean square E[x²] llama-quantize uses (value / ncall), whatever the chunk
  // size: here checked against the mean squares numpy computed before writing the .dat.
  for (const ImatrixEntry& e : m.entries) {
    const std::vector<double> ms = doubles(want["mean_squares"][e.name]);
    REQUIRE(ms.size() == e.sum2.size());
    for (std::size_t j = 0; j < ms.size(); ++j) CHECK(e.sum2[j] / e.count == Approx(ms[j]).epsilon(1e-6));
  }
  // Another assumed chunk size scales sums and counts together and nothing else.
  mhaprune::io::ReadImatrixOptions o;
  o.legacy_chunk_size = 100;
  const Imatrix m100 = read_imatrix(dir + "tiny.dat", o);
  CHECK(m100.chunk_size == 100);
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    CHECK(m100.entries[i].count * 512 == m.entries[i].count * 100);
    for (std::size_t j = 0; j < m.entries[i].sum2.size(); ++j)
      CHECK(m100.entries[i].sum2[j] / m100.entries[i].count ==
            Approx(m.entries[i].sum2[j] / m.entries[i].count));
  }
}

TEST_CASE("the two forms of one run agree on sum2 / count", "[io][imatrix]") {
  const Imatrix g = read_imatrix(dir + "tiny.gguf"), d = read_imatrix(dir + "tiny.dat");
  for (const ImatrixEntry& e : d.entries) {
    const ImatrixEntry* ge = g.find(e.name);
    REQUIRE(ge != nullptr);
    REQUIRE(ge->sum2.size() == e.sum2.size());
    for (std::size_t j = 0; j < e.sum2.size(); ++j)
      CHECK(e.sum2[j] / e.count == Approx(ge->sum2[j] / ge->count).epsilon(1e-6));
    // The .dat counts whole chunks: 1024 tokens are 2 chunks of 512.
    CHECK(e.count == 1024);
  }
}

TEST_CASE("broken imatrix files are corrupt_file_error naming the file, the entry and the check",
          "[io][imatrix][errors]") {
  const nlohmann::json broken = expected()["broken"];
  REQUIRE(broken.size() >= 10);
  for (const auto& [file, what] : broken.items()) {
    INFO(file);
    const std::string path = dir + file;
    const std::string msg = message_of<mhaprune::corrupt_file_error>([&] { read_imatrix(path); });
    CHECK_THAT(msg, StartsWith(path + ": "));
    const std::string entry = what["entry"].get<std::string>();
    if (!entry.empty()) CHECK_THAT(msg, Contains("\"" + entry + "\""));
    CHECK_THAT(msg, Contains(what["contains"].get<std::string>()));
  }
}

TEST_CASE("a .dat cut short anywhere is corrupt, except where the optional trailer may end",
          "[io][imatrix][errors]") {
  const std::string full = slurp(dir + "tiny.dat");
  const std::size_t trailer = 4 + 4 + std::string("calibration.txt").size();
  const std::size_t entries_end = full.size() - trailer;
  const Imatrix whole = read_imatrix(dir + "tiny.dat");
  Scratch tmp;
  const std::string path = tmp / "cut.dat";
  std::size_t rejected = 0;
  for (std::size_t n = 0; n < full.size(); ++n) {
    spit(path, full.substr(0, n));
    if (n == entries_end || n == entries_end + 4) {
      // Files of older llama.cpp versions: no trailer, or the chunk count without a dataset name.
      const Imatrix m = read_imatrix(path);
      CHECK(m.entries.size() == whole.entries.size());
      CHECK(m.datasets.empty());
      CHECK(m.chunk_count == (n == entries_end ? 0u : 2u));
      continue;
    }
    INFO("prefix of " << n << " bytes");
    const std::string msg = message_of<mhaprune::corrupt_file_error>([&] { read_imatrix(path); });
    CHECK_THAT(msg, StartsWith(path + ": "));
    CHECK_THAT(msg, Contains("truncated"));
    if (n >= 4 && n < entries_end) CHECK_THAT(msg, Contains(" of 5") && Contains("imatrix entry"));
    ++rejected;
  }
  CHECK(rejected == full.size() - 2);
}

TEST_CASE("a GGUF imatrix cut short anywhere is corrupt", "[io][imatrix][errors]") {
  const std::string full = slurp(dir + "tiny.gguf");
  Scratch tmp;
  const std::string path = tmp / "cut.gguf";
  for (std::size_t n = 0; n < full.size(); n += 7) {
    spit(path, full.substr(0, n));
    INFO("prefix of " << n << " bytes");
    CHECK_THAT(message_of<mhaprune::corrupt_file_error>([&] { read_imatrix(path); }),
               StartsWith(path + ": "));
  }
}

TEST_CASE("write_imatrix_gguf lays the file out as llama-imatrix does", "[io][imatrix]") {
  Scratch tmp;
  SECTION("read then written back: the same bytes as the numpy writer's") {
    const Imatrix m = read_imatrix(dir + "tiny.gguf");
    write_imatrix_gguf(m, tmp / "out.gguf", {false});
    CHECK(slurp(tmp / "out.gguf") == slurp(dir + "tiny.gguf"));
  }
  SECTION("entries out of order come out sorted; read back equal") {
    Imatrix m = read_imatrix(dir + "tiny.gguf");
    std::reverse(m.entries.begin(), m.entries.end());
    write_imatrix_gguf(m, tmp / "out.gguf", {false});
    CHECK(slurp(tmp / "out.gguf") == slurp(dir + "tiny.gguf"));
  }
  SECTION("a .dat converted to GGUF reads back with the same values") {
    const Imatrix d = read_imatrix(dir + "tiny.dat");
    write_imatrix_gguf(d, tmp / "from_dat.gguf", {false});
    const Imatrix back = read_imatrix(tmp / "from_dat.gguf");
    check_against(back, expected()["dat"]);
  }
  SECTION("counts per expert and a missing in_sum round-trip") {
    Imatrix m;
    ImatrixEntry moe;
    moe.name = "blk.2.ffn_down_exps.weight";
    moe.n_mat = 2;
    moe.sum2 = {1, 2, 3, 0, 0, 0};
    moe.counts = {5, 0};
    moe.count = 5;
    ImatrixEntry dense;
    dense.name = "blk.2.attn_k.weight";
    dense.sum2 = {0.25, 4};
    dense.count = 3;
    m.entries = {moe, dense};
    m.chunk_count = 9;
    write_imatrix_gguf(m, tmp / "m.gguf", {false});
    const Imatrix back = read_imatrix(tmp / "m.gguf");
    REQUIRE(back.entries.size() == 2);
    CHECK(back.entries[0].name == "blk.2.attn_k.weight");
    CHECK(back.entries[0].sum2 == dense.sum2);
    CHECK(!back.entries[0].sum);
    CHECK(back.entries[1].counts == moe.counts);
    CHECK(back.entries[1].n_mat == 2);
    CHECK(back.entries[1].columns() == 3);
    CHECK(back.chunk_count == 9);
    CHECK(back.datasets.empty());
    const mhaprune::io::GgufReader r(tmp / "m.gguf");
    CHECK(r.tensor("blk.2.ffn_down_exps.weight.in_sum2").ne == std::vector<std::uint64_t>{3, 2});
    CHECK(r.tensor("blk.2.ffn_down_exps.weight.counts").ne == std::vector<std::uint64_t>{1, 2});
    CHECK(r.tensor("blk.2.attn_k.weight.counts").ne == std::vector<std::uint64_t>{1});
    CHECK(r.find("imatrix.chunk_size")->type() == mhaprune::io::GgufType::UINT32);
    CHECK(r.find("imatrix.datasets")->element_type() == mhaprune::io::GgufType::STRING);
  }
  SECTION("invalid entries are refused before anything is written") {
    const auto refused = [&](const Imatrix& m, const std::string& phrase) {
      const std::string msg =
          message_of<mhaprune::io_error>([&] { write_imatrix_gguf(m, tmp / "bad.gguf"); });
      CHECK_THAT(msg, StartsWith(tmp / "bad.gguf: ") && Contains(phrase));
      CHECK_FALSE(std::filesystem::exists(tmp / "bad.gguf"));
      CHECK(std::distance(std::filesystem::directory_iterator(tmp.path),
                          std::filesystem::directory_iterator()) == 0);
    };
    Imatrix m;
    refused(m, "without entries");
    ImatrixEntry e;
    e.name = "blk.0.attn_output.weight";
    e.sum2 = {1, 2};
    e.count = 4;
    m.entries = {e, e};
    refused(m, "appears twice");
    m.entries = {e};
    m.entries[0].sum2[1] = -1;
    refused(m, "column 1 is -1");
    m.entries = {e};
    m.entries[0].sum = std::vector<double>{1};
    refused(m, "lengths differ");
    m.entries = {e};
    m.entries[0].name = std::string(60, 'x');
    refused(m, "tensor names");
    m.entries = {e};
    m.entries[0].sum2[0] = 1e300;
    refused(m, "beyond float's range");
    m.entries = {e};
    m.entries[0].n_mat = 2;
    m.entries[0].counts = {1, 2, 3};
    refused(m, "3 per-matrix counts for n_mat = 2");
  }
}

TEST_CASE("slice_columns keeps the given columns of every matrix", "[io][imatrix]") {
  ImatrixEntry e;
  e.name = "blk.0.attn_output.weight";
  e.sum2 = {0, 1, 2, 3, 4, 5};
  e.sum = std::vector<double>{-0.5, 1.5, 2.5, 3.5, 4.5, 5.5};
  e.count = 7;
  const ImatrixEntry s = slice_columns(e, {4, 5, 0, 1});
  CHECK(s.name == e.name);
  CHECK(s.sum2 == std::vector<double>{4, 5, 0, 1});
  CHECK(*s.sum == std::vector<double>{4.5, 5.5, -0.5, 1.5});
  CHECK(s.count == 7);
  CHECK(s.columns() == 4);

  ImatrixEntry moe;
  moe.name = "blk.0.ffn_up_exps.weight";
  moe.n_mat = 2;
  moe.sum2 = {0, 1, 2, 10, 11, 12};
  moe.counts = {3, 4};
  moe.count = 4;
  const ImatrixEntry ms = slice_columns(moe, {2, 0});
  CHECK(ms.sum2 == std::vector<double>{2, 0, 12, 10});
  CHECK(ms.counts == moe.counts);
  CHECK(!ms.sum);

  CHECK_THROWS_WITH(slice_columns(e, {}),
                    Contains("\"blk.0.attn_output.weight\"") && Contains("no column kept"));
  CHECK_THROWS_WITH(slice_columns(e, {6}), Contains("column 6 is outside [0, 6)"));
  CHECK_THROWS_WITH(slice_columns(e, {-1}), Contains("column -1 is outside"));
  CHECK_THROWS_WITH(slice_columns(e, {2, 2}), Contains("column 2 is kept twice"));

  // Sliced, written and read back: what llama-quantize will load for a pruned O.
  Scratch tmp;
  Imatrix m;
  m.entries = {s};
  write_imatrix_gguf(m, tmp / "pruned.gguf", {false});
  CHECK(read_imatrix(tmp / "pruned.gguf").entries[0].sum2 == s.sum2);
}

TEST_CASE("imatrix_to_stats: O entries as activation statistics", "[io][imatrix][calibration]") {
  const Imatrix m = read_imatrix(dir + "tiny.gguf");
  const auto stats = mhaprune::io::imatrix_to_stats(m);
  std::vector<std::string> keys;
  for (const auto& [k, v] : stats) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"blk.0.attn_output", "blk.1.attn_output", "blk.10.attn_output"});

  const ImatrixEntry& with_sum = *m.find("blk.0.attn_output.weight");
  const mhaprune::ActivationStats& a = stats.at("blk.0.attn_output");
  CHECK(a.count() == 1024);
  CHECK(a.channels() == 8);
  CHECK(a.has_moments());
  CHECK_FALSE(a.has_gram());
  for (Eigen::Index j = 0; j < 8; ++j) {
    const double n = 1024, s = (*with_sum.sum)[static_cast<std::size_t>(j)],
                 s2 = with_sum.sum2[static_cast<std::size_t>(j)];
    CHECK(a.sum_squares()(j) == s2);
    CHECK(a.mean()(j) == Approx(s / n).epsilon(1e-15));
    CHECK(a.m2()(j) == Approx(s2 - s * s / n).epsilon(1e-12));
    CHECK(a.variance()(j) > 0);
  }
  // This entry's activations had a mean of about 0.5 (see make_imatrix.py).
  CHECK(a.mean().mean() == Approx(0.5).margin(0.1));

  const mhaprune::ActivationStats& b = stats.at("blk.10.attn_output");  // no in_sum
  CHECK(b.count() == 1024);
  CHECK_FALSE(b.has_moments());
  const ImatrixEntry& no_sum = *m.find("blk.10.attn_output.weight");
  for (Eigen::Index j = 0; j < 8; ++j) {
    CHECK(b.sum_squares()(j) == no_sum.sum2[static_cast<std::size_t>(j)]);
    CHECK(b.l2_norms()(j) == std::sqrt(no_sum.sum2[static_cast<std::size_t>(j)]));
  }
  CHECK_THROWS_AS(b.mean(), mhaprune::calibration_error);
  CHECK_THROWS_WITH(b.variance(), Contains("only per-channel sums of squares") && Contains("llama-imatrix"));
  CHECK_THROWS_AS(b.m2(), mhaprune::calibration_error);
  CHECK_THROWS_AS(b.population_variance(), mhaprune::calibration_error);

  // Every .dat entry is sums-only.
  const auto dat_stats = mhaprune::io::imatrix_to_stats(read_imatrix(dir + "tiny.dat"));
  REQUIRE(dat_stats.size() == 3);
  for (const auto& [k, s] : dat_stats) CHECK_FALSE(s.has_moments());
}

TEST_CASE("ActivationStats::from_sum_squares", "[calibration][imatrix]") {
  Eigen::VectorXd sumsq(3);
  sumsq << 4, 0, 9;
  mhaprune::ActivationStats s = mhaprune::ActivationStats::from_sum_squares(10, sumsq);
  CHECK(s.count() == 10);
  CHECK(s.batches() == 1);
  CHECK(s.l2_norms() == Eigen::Vector3d(2, 0, 3));
  CHECK_FALSE(s.has_moments());

  // Merging and adding keep summing squares; moments stay unknown.
  mhaprune::ActivationStats full(3);
  Eigen::MatrixXd x(2, 3);
  x << 1, 2, 3, -1, 0, 1;
  full.add(x);
  CHECK(full.has_moments());
  mhaprune::ActivationStats merged = s;
  merged.merge(full);
  CHECK(merged.count() == 12);
  CHECK(merged.sum_squares() == Eigen::Vector3d(6, 4, 19));
  CHECK_FALSE(merged.has_moments());
  mhaprune::ActivationStats other = full;
  other.merge(s);
  CHECK_FALSE(other.has_moments());
  CHECK(other.sum_squares() == Eigen::Vector3d(6, 4, 19));
  merged.add(x);
  CHECK(merged.count() == 14);
  CHECK_FALSE(merged.has_moments());
  merged.reset();
  CHECK(merged.has_moments());
  merged.add(x);
  CHECK(merged.mean() == full.mean());

  // With no tokens nothing is unknown.
  mhaprune::ActivationStats empty = mhaprune::ActivationStats::from_sum_squares(0, Eigen::VectorXd::Zero(3));
  CHECK(empty.has_moments());
  empty.add(x);
  CHECK(empty.mean() == full.mean());

  CHECK_THROWS_AS(mhaprune::ActivationStats::from_sum_squares(1, Eigen::VectorXd()), mhaprune::shape_error);
  CHECK_THROWS_WITH(mhaprune::ActivationStats::from_sum_squares(-1, sumsq), Contains("count >= 0"));
  Eigen::VectorXd bad = sumsq;
  bad(1) = -1;
  CHECK_THROWS_WITH(mhaprune::ActivationStats::from_sum_squares(3, bad), Contains("channel 1 is -1"));
  bad(1) = std::nan("");
  CHECK_THROWS_AS(mhaprune::ActivationStats::from_sum_squares(3, bad), mhaprune::calibration_error);
  CHECK_THROWS_WITH(mhaprune::ActivationStats::from_sum_squares(0, sumsq), Contains("0 with a count of 0"));
}

TEST_CASE("what criteria and compensations do with imatrix statistics", "[io][imatrix][criteria]") {
  mhaprune_test::BlockConfig config;
  config.name = "blk.0";
  config.heads = 4;
  config.kv_heads = 4;
  config.head_dim = 2;
  config.model_dim = 8;
  config.output_bias = true;
  mhaprune_test::RandomBlock<double> rb(config, 11);
  auto& block = rb.block();

  Eigen::VectorXd sumsq(8), sum(8);
  sumsq << 1, 4, 9, 16, 25, 36, 49, 64;
  sum << 1, -1, 2, -2, 3, -3, 4, -4;
  ImatrixEntry no_sum;
  no_sum.name = "blk.0.attn_output.weight";
  no_sum.sum2.assign(sumsq.data(), sumsq.data() + 8);
  no_sum.count = 16;
  ImatrixEntry with_sum = no_sum;
  with_sum.sum = std::vector<double>(sum.data(), sum.data() + 8);
  Imatrix a, b;
  a.entries = {no_sum};
  b.entries = {with_sum};
  const auto sums_only = mhaprune::io::imatrix_to_stats(a).at("blk.0.attn_output");
  const auto moments = mhaprune::io::imatrix_to_stats(b).at("blk.0.attn_output");

  // wanda_sp needs only sums of squares: both give the same scores.
  const Eigen::VectorXd w1 =
      mhaprune::WandaSp{}.scores(block, mhaprune::Evidence{}.with_activations(sums_only));
  const Eigen::VectorXd w2 =
      mhaprune::WandaSp{}.scores(block, mhaprune::Evidence{}.with_activations(moments));
  CHECK(w1 == w2);
  CHECK(w1.allFinite());

  // fluctuation needs the variance: only with in_sum.
  CHECK_THROWS_AS(mhaprune::Fluctuation{}.scores(block, mhaprune::Evidence{}.with_activations(sums_only)),
                  mhaprune::evidence_error);
  CHECK_THROWS_WITH(mhaprune::Fluctuation{}.scores(block, mhaprune::Evidence{}.with_activations(sums_only)),
                    Contains("\"blk.0\"") && Contains("only sums of squares") && Contains("llama-imatrix"));
  CHECK(mhaprune::Fluctuation{}.scores(block, mhaprune::Evidence{}.with_activations(moments)).allFinite());

  // obs needs the Gram matrix, which no imatrix holds.
  CHECK_THROWS_AS(mhaprune::Obs{}.scores(block, mhaprune::Evidence{}.with_activations(moments)),
                  mhaprune::evidence_error);
  CHECK_THROWS_WITH(mhaprune::Obs{}.scores(block, mhaprune::Evidence{}.with_activations(moments)),
                    Contains("Gram matrix") && Contains("llama-imatrix"));

  // Compensations: none with sums only; bias with in_sum; the Gram-based ones never.
  mhaprune::CompensationOptions o;
  o.method = mhaprune::CompensationMethod::bias;
  CHECK_THROWS_AS(mhaprune::remove_heads_compensated(block, mhaprune::OriginalIds{1}, sums_only, o),
                  mhaprune::compensation_error);
  CHECK_THROWS_WITH(mhaprune::remove_heads_compensated(block, mhaprune::OriginalIds{1}, sums_only, o),
                    Contains("only sums of squares") && Contains("llama-imatrix"));
  CHECK(block.layout().heads() == 4);
  for (auto method : {mhaprune::CompensationMethod::lsq, mhaprune::CompensationMethod::scale,
                      mhaprune::CompensationMethod::obs}) {
    o.method = method;
    CHECK_THROWS_AS(mhaprune::remove_heads_compensated(block, mhaprune::OriginalIds{1}, moments, o),
                    mhaprune::compensation_error);
    CHECK_THROWS_WITH(mhaprune::remove_heads_compensated(block, mhaprune::OriginalIds{1}, moments, o),
                      Contains("Gram matrix") && Contains("llama-imatrix"));
  }
  CHECK(block.layout().heads() == 4);
  o.method = mhaprune::CompensationMethod::bias;
  mhaprune::remove_heads_compensated(block, mhaprune::OriginalIds{1}, moments, o);
  CHECK(block.layout().heads() == 3);
}

}  // namespace test_imatrix
