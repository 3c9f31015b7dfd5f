// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The calibration statistics file: round trip, and every kind of bad content refused with a message
// naming the file, the tensor and the problem.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <mhaprune/io/stats_file.hpp>
#include <random>

#include "test_safetensors_support.hpp"

namespace test_stats_file {

using Catch::Matchers::Contains;
using mhaprune::ActivationStats;
using mhaprune::GramTracking;
using mhaprune::io::Dtype;
using mhaprune::io::SafetensorsWriter;

inline ActivationStats sample_stats(Eigen::Index channels, bool gram, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0.5, 2.0);
  ActivationStats s(channels, gram ? GramTracking::on : GramTracking::off);
  for (int b = 0; b < 3; ++b) {
    Eigen::MatrixXf x(7, channels);
    for (Eigen::Index j = 0; j < channels; ++j)
      for (Eigen::Index i = 0; i < 7; ++i) x(i, j) = static_cast<float>(n(rng));
    s.add(x);
  }
  return s;
}

/// The tensors of one block "L.o" (C = 3, with a Gram matrix), editable before writing.
struct RawStats {
  Eigen::VectorXd count = Eigen::VectorXd::Constant(1, 4.0);
  Eigen::VectorXd mean = Eigen::Vector3d(1.0, -2.0, 0.5);
  Eigen::VectorXd m2 = Eigen::Vector3d(2.0, 1.0, 3.0);
  Eigen::VectorXd sumsq;
  Eigen::MatrixXd gram;
  RawStats() {
    sumsq = m2 + 4.0 * mean.cwiseAbs2();
    gram = Eigen::MatrixXd::Identity(3, 3);
    gram.diagonal() = sumsq;
    gram(0, 1) = gram(1, 0) = 0.5;
  }
};

inline void write_raw(const std::string& path, const RawStats& r,
                      const std::function<void(SafetensorsWriter&)>& edit) {
  SafetensorsWriter out;
  out.add("L.o.input.count", r.count, Dtype::F64);
  out.add("L.o.input.mean", r.mean, Dtype::F64);
  out.add("L.o.input.m2", r.m2, Dtype::F64);
  out.add("L.o.input.sumsq", r.sumsq, Dtype::F64);
  out.add("L.o.input.gram", r.gram, Dtype::F64);
  if (edit) edit(out);
  out.write(path, mhaprune::io::WriteOptions{false});
}

TEST_CASE("stats file: round trip is exact, with and without the Gram matrix", "[io][stats]") {
  mhaprune_test::ScratchDir dir;
  std::map<std::string, ActivationStats> stats;
  stats.emplace("model.layers.0.self_attn.o_proj", sample_stats(8, true, 1));
  stats.emplace("model.layers.1.self_attn.o_proj", sample_stats(8, false, 2));
  const std::string path = dir / "stats.safetensors";
  mhaprune::io::write_stats_file(path, stats);

  mhaprune::io::SafetensorsReader raw(path);
  CHECK(raw.metadata().at("format") == "mhaprune-activation-stats");
  CHECK(raw.info("model.layers.0.self_attn.o_proj.input.count").shape == mhaprune::io::Shape{1});
  CHECK(raw.info("model.layers.0.self_attn.o_proj.input.gram").shape == mhaprune::io::Shape{8, 8});
  CHECK(raw.info("model.layers.1.self_attn.o_proj.input.sumsq").dtype == Dtype::F64);
  CHECK_FALSE(raw.contains("model.layers.1.self_attn.o_proj.input.gram"));

  const auto back = mhaprune::io::read_stats_file(path);
  REQUIRE(back.size() == 2);
  for (const auto& [key, s] : stats) {
    INFO(key);
    const ActivationStats& r = back.at(key);
    CHECK(r.count() == s.count());
    CHECK(r.channels() == s.channels());
    CHECK(r.mean() == s.mean());
    CHECK(r.m2() == s.m2());
    CHECK(r.sum_squares() == s.sum_squares());
    CHECK(r.has_gram() == s.has_gram());
    if (s.has_gram()) CHECK(r.gram() == s.gram());
  }
  // Written again, the same bytes.
  mhaprune::io::write_stats_file(dir / "again.safetensors", back);
  CHECK(mhaprune_test::read_file(dir / "again.safetensors") == mhaprune_test::read_file(path));
}

TEST_CASE("stats file: writing refuses statistics without tokens", "[io][stats]") {
  mhaprune_test::ScratchDir dir;
  std::map<std::string, ActivationStats> stats;
  stats.emplace("x", ActivationStats(4));
  CHECK_THROWS_AS(mhaprune::io::write_stats_file(dir / "s.safetensors", stats), mhaprune::io_error);
  CHECK(dir.entries().empty());
}

TEST_CASE("stats file: corrupt content names the file, the tensor and the problem", "[io][stats]") {
  mhaprune_test::ScratchDir dir;
  const std::string path = dir / "s.safetensors";
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* what;
    std::function<void(RawStats&)> change;
    std::function<void(SafetensorsWriter&)> extra;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases{
      {"valid", nullptr, nullptr, {}},
      {"count 0", [](RawStats& r) { r.count(0) = 0; }, nullptr, {"L.o.input.count", "token count is 0"}},
      {"count 2.5", [](RawStats& r) { r.count(0) = 2.5; }, nullptr, {"L.o.input.count", "integer"}},
      {"count NaN", [&](RawStats& r) { r.count(0) = nan; }, nullptr, {"L.o.input.count"}},
      {"count [2]",
       [](RawStats& r) { r.count = Eigen::Vector2d(4, 4); },
       nullptr,
       {"L.o.input.count", "[1]"}},
      {"m2 negative", [](RawStats& r) { r.m2(1) = -1; }, nullptr, {"L.o.input.m2", "channel 1", ">= 0"}},
      {"mean NaN", [&](RawStats& r) { r.mean(2) = nan; }, nullptr, {"L.o.input.mean", "channel 2", "finite"}},
      {"sumsq short",
       [](RawStats& r) { r.sumsq.conservativeResize(2); },
       nullptr,
       {"L.o.input.sumsq", "[2]", "[3]"}},
      {"sumsq inconsistent",
       [](RawStats& r) {
         r.sumsq(0) *= 2;
         r.gram(0, 0) = r.sumsq(0);
       },
       nullptr,
       {"L.o.input.sumsq", "inconsistent"}},
      {"gram shape",
       [](RawStats& r) { r.gram = Eigen::MatrixXd::Identity(3, 2); },
       nullptr,
       {"L.o.input.gram", "[3, 2]", "[3, 3]"}},
      {"gram asymmetric", [](RawStats& r) { r.gram(2, 0) = 1.0; }, nullptr, {"L.o.input.gram", "symmetric"}},
      {"gram inf",
       [](RawStats& r) { r.gram(1, 2) = std::numeric_limits<double>::infinity(); },
       nullptr,
       {"L.o.input.gram", "finite"}},
      {"gram diagonal",
       [](RawStats& r) { r.gram(1, 1) += 1; },
       nullptr,
       {"L.o.input.gram", "diagonal entry 1"}},
      {"F32 mean",
       nullptr,
       [](SafetensorsWriter& w) {
         w.add("M.input.count", Eigen::VectorXd(Eigen::VectorXd::Constant(1, 2.0)), Dtype::F64);
         w.add("M.input.mean", Eigen::VectorXf(Eigen::VectorXf::Zero(2)), Dtype::F32);
       },
       {"M.input.mean", "F32", "F64"}},
      {"missing m2",
       nullptr,
       [](SafetensorsWriter& w) {
         w.add("M.input.count", Eigen::VectorXd(Eigen::VectorXd::Constant(1, 2.0)), Dtype::F64);
       },
       {"M.input.mean", "missing"}},
      {"missing count",
       nullptr,
       [](SafetensorsWriter& w) {
         w.add("M.input.mean", Eigen::VectorXd(Eigen::VectorXd::Zero(2)), Dtype::F64);
       },
       {"M.input.count", "missing"}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    RawStats r;
    if (c.change) c.change(r);
    write_raw(path, r, c.extra);
    if (c.expect.empty()) {
      const auto s = mhaprune::io::read_stats_file(path);
      CHECK(s.at("L.o").count() == 4);
      CHECK(s.at("L.o").gram()(0, 1) == 0.5);
      continue;
    }
    try {
      mhaprune::io::read_stats_file(path);
      FAIL("no error");
    } catch (const mhaprune::corrupt_file_error& e) {
      const std::string msg = e.what();
      CHECK_THAT(msg, Contains(path));
      for (const auto& part : c.expect) CHECK_THAT(msg, Contains(part));
    }
  }

  // A file with no statistics at all, and one that is not safetensors.
  SafetensorsWriter other;
  other.add("w", Eigen::VectorXd(Eigen::VectorXd::Zero(2)), Dtype::F64);
  other.write(path, mhaprune::io::WriteOptions{false});
  CHECK_THROWS_WITH(mhaprune::io::read_stats_file(path), Contains("no calibration statistics"));
  mhaprune_test::write_file(path, mhaprune_test::Bytes(5, std::byte{1}));
  CHECK_THROWS_AS(mhaprune::io::read_stats_file(path), mhaprune::corrupt_file_error);
  CHECK_THROWS_AS(mhaprune::io::read_stats_file(dir / "absent.safetensors"), mhaprune::io_error);
}

}  // namespace test_stats_file
