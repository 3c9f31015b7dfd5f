// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The pure parts of the `mhaprune` tool (examples/mhaprune/): the --heads parser, the heatmap SVG,
// the progress printer, the exit-code mapping and the option tree -> PrunerConfig mapping.

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../examples/mhaprune/cli_options.hpp"
#include "../examples/mhaprune/exit_codes.hpp"
#include "../examples/mhaprune/heads_spec.hpp"
#include "../examples/mhaprune/heatmap_svg.hpp"
#include "../examples/mhaprune/progress.hpp"
#include "mhaprune/error.hpp"

namespace test_cli_tool {

using mhaprune_cli::HeadsSpec;
using mhaprune_cli::parse_heads_spec;
using mhaprune_cli::usage_error;

std::string usage_message(const std::string& spec) {
  try {
    parse_heads_spec(spec);
  } catch (const usage_error& e) {
    return e.what();
  }
  return "(no error)";
}

mhaprune::PruneReport two_block_report() {
  mhaprune::PruneReport r;
  mhaprune::BlockReport a;
  a.name = "model.layers.0.self_attn";
  a.head_ids = {0, 1, 2, 3};
  a.scores = {0.5, 2.0, 1.0, 0.25};
  a.removed = {3};
  mhaprune::BlockReport b;
  b.name = "model.layers.1.<odd & name>";
  b.head_ids = {0, 2, 3};  // head 1 went in an earlier round
  b.scores = {4.0, 0.0, 1.5};
  b.removed = {2};
  r.blocks = {a, b};
  return r;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// Minimal XML well-formedness: every '<tag' is closed in order, and no bare '&' or '<' in text.
bool balanced_xml(const std::string& s) {
  std::vector<std::string> open;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '&') {
      const std::size_t semi = s.find(';', i);
      if (semi == std::string::npos || semi - i > 6) return false;
      i = semi + 1;
      continue;
    }
    if (s[i] != '<') {
      ++i;
      continue;
    }
    const std::size_t close = s.find('>', i);
    if (close == std::string::npos) return false;
    std::string tag = s.substr(i + 1, close - i - 1);
    i = close + 1;
    if (tag.empty()) return false;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return false;
      open.pop_back();
      continue;
    }
    if (tag.back() == '/') continue;
    const std::size_t space = tag.find_first_of(" \n");
    open.push_back(tag.substr(0, space));
  }
  return open.empty();
}

TEST_CASE("heads spec (--heads): layers and original ids, merged and sorted", "[cli]") {
  const HeadsSpec spec = parse_heads_spec(" 0:5,1 ; 3:2;0:7;");
  REQUIRE(spec.size() == 2);
  CHECK(spec.at(0) == std::vector<mhaprune::Index>{1, 5, 7});
  CHECK(spec.at(3) == std::vector<mhaprune::Index>{2});
  CHECK(parse_heads_spec("12:0").at(12) == std::vector<mhaprune::Index>{0});
}

TEST_CASE("heads spec (--heads): a bad spec names the offending token", "[cli]") {
  CHECK_THAT(usage_message("0:1,x"), Catch::Contains("\"x\" is not a head id"));
  CHECK_THAT(usage_message("a:1"), Catch::Contains("\"a\" is not a layer number"));
  CHECK_THAT(usage_message("0-1"), Catch::Contains("\"0-1\" has no ':'"));
  CHECK_THAT(usage_message("0:"), Catch::Contains("\"0:\" names no head ids"));
  CHECK_THAT(usage_message("0:1,,2"), Catch::Contains("\"\" is not a head id"));
  CHECK_THAT(usage_message("0:1;;1:2"), Catch::Contains("is an empty group"));
  CHECK_THAT(usage_message("0:-1"), Catch::Contains("\"-1\" is not a head id"));
  CHECK_THAT(usage_message("0:3,3"), Catch::Contains("\"3\" is named twice"));
  CHECK_THAT(usage_message("0:1;0:1"), Catch::Contains("\"1\" is named twice"));
  CHECK_THAT(usage_message(""), Catch::Contains("empty group"));
  CHECK_THAT(usage_message("0:99999999999999999999999"), Catch::Contains("is too large"));
  CHECK_THAT(usage_message("0:1 2"), Catch::Contains("\"1 2\" is not a head id"));
}

TEST_CASE("exit codes: bad input 3, constraint 4, usage 2, anything else 1", "[cli]") {
  using namespace mhaprune_cli;
  CHECK(exit_code_for(mhaprune::corrupt_file_error("x")) == exit_bad_input);
  CHECK(exit_code_for(mhaprune::missing_tensor_error("x")) == exit_bad_input);
  CHECK(exit_code_for(mhaprune::unsupported_dtype_error("x")) == exit_bad_input);
  CHECK(exit_code_for(mhaprune::io_error("x")) == exit_bad_input);
  CHECK(exit_code_for(mhaprune::shape_error("x")) == exit_bad_input);
  CHECK(exit_code_for(mhaprune::constraint_error("x")) == exit_constraint);
  CHECK(exit_code_for(mhaprune::removal_error("x")) == exit_constraint);
  CHECK(exit_code_for(mhaprune::config_error("x")) == exit_usage);
  CHECK(exit_code_for(mhaprune::evidence_error("x")) == exit_usage);
  CHECK(exit_code_for(usage_error("x")) == exit_usage);
  CHECK(exit_code_for(std::runtime_error("x")) == exit_failure);
  CHECK(one_line("a\nb\tc \n") == "a b c");
}

TEST_CASE("heatmap: one cell per head, removed heads crossed out, legend, escaped title", "[cli]") {
  mhaprune_cli::HeatmapOptions o;
  o.title = "tiny <model> & heads";
  o.subtitle = "magnitude, 25%";
  const std::string svg = mhaprune_cli::heatmap_svg(two_block_report(), o);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(balanced_xml(svg));
  CHECK(count(svg, "tiny &lt;model&gt; &amp; heads") == 2);  // <title> and the visible title
  CHECK(svg.find("<odd") == std::string::npos);
  CHECK(count(svg, "stroke=\"#e8112d\"") == 3);              // two removed heads + the legend's sample
  CHECK(count(svg, ": score ") == 7);                        // 4 + 3 heads present
  CHECK(count(svg, ": absent") == 1);                        // layer 1 head 1
  CHECK(svg.find("fill=\"#440154\"") != std::string::npos);  // the lowest score: viridis' dark end
  CHECK(svg.find("fill=\"#fde725\"") != std::string::npos);  // the highest: its bright end
  CHECK(svg.find(">0</text>") != std::string::npos);         // legend ends: min 0 and max 4
  CHECK(svg.find(">4</text>") != std::string::npos);
  CHECK(svg.find("removed</text>") != std::string::npos);
}

TEST_CASE("heatmap: equal, non-finite and missing scores still draw", "[cli]") {
  mhaprune::PruneReport r;
  mhaprune::BlockReport b;
  b.name = "b";
  b.head_ids = {0, 1};
  b.scores = {std::nan(""), std::nan("")};
  r.blocks = {b};
  const std::string svg = mhaprune_cli::heatmap_svg(r);
  CHECK(balanced_xml(svg));
  CHECK(svg.find(">?</text>") != std::string::npos);
  CHECK(svg.find("n/a") != std::string::npos);
  CHECK(balanced_xml(mhaprune_cli::heatmap_svg(mhaprune::PruneReport{})));
}

TEST_CASE("progress: silent for the first second, then plain lines at most once a second", "[cli]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  double now = 0;
  {
    mhaprune_cli::ProgressPrinter p(f, false, false, [&] { return now; });
    p.update("score", 1, 4, "layer.0");  // t = 0: too early
    now = 1.5;
    p.update("score", 2, 4, "layer.1");  // shown
    now = 1.8;
    p.update("score", 3, 4, "layer.2");  // throttled
    now = 1.9;
    p.update("score", 4, 4, "layer.3");  // the last one is always shown
  }
  std::rewind(f);
  std::string out;
  for (int c; (c = std::fgetc(f)) != EOF;) out += static_cast<char>(c);
  std::fclose(f);
  CHECK(out == "mhaprune: score 2/4 layer.1 (1.5 s)\nmhaprune: score 4/4 layer.3 (1.9 s)\n");
}

TEST_CASE("progress: a terminal gets one rewritten line with an ETA; --quiet gets nothing", "[cli]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  double now = 0;
  {
    mhaprune_cli::ProgressPrinter p(f, true, false, [&] { return now; });
    now = 2;
    p.update("write", 1, 4, "b0");
    now = 4;
    p.update("write", 2, 4, "b1");
    mhaprune_cli::ProgressPrinter quiet(f, true, true, [&] { return now; });
    quiet.update("write", 1, 4, "b0");
  }  // the destructor ends the open line
  std::rewind(f);
  std::string out;
  for (int c; (c = std::fgetc(f)) != EOF;) out += static_cast<char>(c);
  std::fclose(f);
  CHECK(out == "\r\033[Kmhaprune: write 1/4 b0, ETA 6.0 s\r\033[Kmhaprune: write 2/4 b1, ETA 4.0 s\n");
  CHECK(mhaprune_cli::ProgressPrinter::duration(125) == "2 min 05 s");
}

struct Parsed {
  CLI::App app;
  mhaprune_cli::CommandLine cl;
  Parsed() { mhaprune_cli::define_command_line(app, cl); }
  void parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(args);
  }
};

TEST_CASE("options: flags reach every PrunerConfig field they name", "[cli]") {
  Parsed p;
  p.parse({"prune",
           "m",
           "-o",
           "out",
           "--sparsity",
           "0.3",
           "--scope",
           "local",
           "--criterion",
           "random",
           "--reduce",
           "l2",
           "--min-heads",
           "2",
           "--round-to",
           "2",
           "--gqa-mode",
           "whole_groups",
           "--normalization",
           "l2",
           "--max-ratio-per-layer",
           "0.5",
           "--seed",
           "18446744073709551615",
           "--exact-target"});
  REQUIRE(p.cl.prune_cmd->parsed());
  const mhaprune::PrunerConfig c = mhaprune_cli::make_config(p.cl.prune.config);
  CHECK(c.target_sparsity == 0.3);
  CHECK(c.pruning_scope == mhaprune::PruningScope::local);
  CHECK(c.criterion_type == "random");
  CHECK(c.criterion_reduce_type == mhaprune::Reduction::l2);
  CHECK(c.min_heads == 2);
  CHECK(c.round_to == 2);
  CHECK(c.gqa_mode == mhaprune::GqaMode::whole_groups);
  CHECK(c.normalization == mhaprune::Normalization::l2);
  CHECK(c.max_sparsity_ratio_per_op == 0.5);
  CHECK(c.seed == 18446744073709551615ull);
  CHECK(c.exact_target);
}

TEST_CASE("options: --config is read first, flags given override it, the rest keep its values", "[cli]") {
  const std::string path = "/tmp/mhaprune_test_cli_config.json";
  {
    std::ofstream(path) << R"({"target_sparsity": 0.5, "pruning_scope": "local", "min_heads": 3,
                              "sparsity_decay_type": "cos", "criterion_type": "random"})";
  }
  Parsed p;
  p.parse({"prune", "m", "-o", "out", "--config", path, "--min-heads", "2"});
  const mhaprune::PrunerConfig c = mhaprune_cli::make_config(p.cl.prune.config);
  CHECK(c.target_sparsity == 0.5);
  CHECK(c.pruning_scope == mhaprune::PruningScope::local);
  CHECK(c.min_heads == 2);
  CHECK(c.sparsity_decay_type == mhaprune::Decay::cos);
  CHECK(c.criterion_type == "random");
  { std::ofstream(path) << R"({"no_such_key": 1})"; }
  CHECK_THROWS_AS(mhaprune_cli::make_config(p.cl.prune.config), mhaprune::config_error);
  { std::ofstream(path) << "{not json"; }
  CHECK_THROWS_AS(mhaprune_cli::make_config(p.cl.prune.config), usage_error);
  std::remove(path.c_str());
}

TEST_CASE("options: usage errors are CLI11 parse errors", "[cli]") {
  const std::vector<std::vector<std::string>> bad{
      {"prune", "m", "-o", "out", "--sparsity", "1.5"},
      {"prune", "m", "-o", "out", "--criterion", "nope"},
      {"prune", "m", "-o", "out", "--sparsity", "0.2", "--heads", "0:1"},
      {"prune", "m", "--sparsity", "0.2"},
      {"prune", "m", "-o", "out", "--scope", "everywhere"},
      {"prune", "m", "-o", "out", "--min-heads", "0"},
      {"frobnicate"},
      {},
  };
  for (const auto& args : bad) {
    Parsed p;
    CAPTURE(args);
    CHECK_THROWS_AS(p.parse(args), CLI::ParseError);
  }
  Parsed p;
  try {
    p.parse({"score", "m", "--criterion", "nope"});
    FAIL("no error");
  } catch (const CLI::ParseError& e) {
    CHECK_THAT(e.what(), Catch::Contains("magnitude") && Catch::Contains("nope"));
  }
}

TEST_CASE("options: --json takes an optional file, '-' (stdout) when bare", "[cli]") {
  Parsed a;
  a.parse({"inspect", "m", "--json"});
  CHECK(a.cl.inspect.json == "-");
  Parsed b;
  b.parse({"score", "m", "--json", "out.json"});
  CHECK(b.cl.score.json == "out.json");
  Parsed c;
  c.parse({"score", "m"});
  CHECK(c.cl.score.json.empty());
}

}  // namespace test_cli_tool
