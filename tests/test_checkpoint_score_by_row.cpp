// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// score_blocks scores magnitude one row at a time (detail::score_by_row) instead of loading each
// block as floats: the scores must be those of the loaded block, bit for bit, in every layout the
// presets read (separate, GQA, fused [Q|K|V] stored [in, out], interleaved per head) and dtype.

#include <catch2/catch.hpp>

#include "mhaprune/checkpoint/score_blocks.hpp"
#include "test_checkpoint_support.hpp"

namespace test_checkpoint_score_by_row {

using namespace test_checkpoint_support;

/// Each block's magnitude scores from a block loaded as floats (or doubles for F64), the path that
/// every other criterion takes.
std::vector<Eigen::VectorXd> loaded_scores(const ck::Checkpoint& in, const mhaprune::Magnitude& m) {
  std::vector<Eigen::VectorXd> out;
  for (const ck::BlockInfo& info : in.blocks()) {
    if (ck::needs_double(in.reader(), info)) {
      ck::LoadedBlock<double> loaded(in.reader(), info);
      out.push_back(m.scores(loaded.block()));
    } else {
      ck::LoadedBlock<float> loaded(in.reader(), info);
      out.push_back(m.scores(loaded.block()));
    }
  }
  return out;
}

void check_same_scores(const std::string& dir) {
  const auto in = ck::Checkpoint::open(dir);
  for (const mhaprune::Reduction r : mhaprune::all_reductions) {
    INFO(in.architecture() << ", " << mhaprune::to_string(r));
    const mhaprune::Magnitude m(r, mhaprune::RoleWeights{1.0, 0.5, 2.0, 1.5});
    mhaprune::AnyCriterion criterion(m);
    const std::vector<Eigen::VectorXd> by_row = ck::score_blocks(in, criterion, ck::PruneOptions{});
    const std::vector<Eigen::VectorXd> loaded = loaded_scores(in, m);
    REQUIRE(by_row.size() == loaded.size());
    for (std::size_t b = 0; b < by_row.size(); ++b) {
      CHECK(by_row[b] == loaded[b]);
      // The row reader itself, which score_blocks takes for every dtype but F64.
      const ck::BlockInfo& info = in.blocks()[b];
      if (ck::detail::CheckpointRows::can_read(in.reader(), info)) {
        ck::detail::CheckpointRows rows(in.reader());
        CHECK(ck::detail::score_by_row(m, info, rows) == loaded[b]);
      } else {
        CHECK(ck::needs_double(in.reader(), info));
      }
    }
  }
}

TEST_CASE("checkpoint score_by_row: magnitude equals the loaded block's, bit for bit",
          "[checkpoint][by_line]") {
  for (const io::Dtype dtype : {io::Dtype::F32, io::Dtype::F16, io::Dtype::BF16, io::Dtype::F64}) {
    INFO(io::to_string(dtype));
    Spec s;
    s.dtype = dtype;
    s.head_dim = 8;
    const auto check = [&](const char* what, void (*make)(const std::string&, const Spec&)) {
      INFO(what);
      TempDir tmp;
      make(tmp.path(), s);
      check_same_scores(tmp.path());
    };
    check("BERT: separate Q/K/V", [](const std::string& d, const Spec& x) { make_bert(d, x); });
    check("GPT-2: fused [Q|K|V] stored [in, out]",
          [](const std::string& d, const Spec& x) { make_gpt2(d, x); });
    check("GPT-NeoX: fused, interleaved per head",
          [](const std::string& d, const Spec& x) { make_neox(d, x); });
    s.kv_heads = 2;
    check("LLaMA: grouped-query", [](const std::string& d, const Spec& x) { make_llama(d, x); });
  }
}

}  // namespace test_checkpoint_score_by_row
