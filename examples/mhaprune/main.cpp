// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// mhaprune: remove attention heads from a Hugging Face-style safetensors checkpoint.
//
//   mhaprune inspect MODEL [--json [FILE]]
//   mhaprune score MODEL [--criterion NAME] [--stats FILE] [--json [FILE]] [--heatmap FILE.svg]
//   mhaprune prune MODEL -o OUT (--sparsity R | --heads SPEC | --config FILE) [options]
//
// The library does the work (mhaprune/checkpoint/checkpoint.hpp); this file parses options, maps
// errors to exit codes (exit_codes.hpp) and prints. See `mhaprune --help`.

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli_options.hpp"
#include "exit_codes.hpp"
#include "heads_spec.hpp"
#include "heatmap_svg.hpp"
#include "inspect.hpp"
#include "inspect_gguf.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/checkpoint/prune_gguf.hpp"
#include "mhaprune/io/imatrix.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/io/stats_file.hpp"
#include "mhaprune/pruner/report_json.hpp"
#include "progress.hpp"

namespace mhaprune_cli {
namespace {

namespace ckpt = mhaprune::checkpoint;

// --- paths ---------------------------------------------------------------------------------------

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string parent_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string base_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

/// The absolute, symlink-free form of a path that may not exist yet (its parent must).
std::optional<std::string> resolved(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf)) return std::string(buf);
  if (!::realpath(parent_of(path).c_str(), buf)) return std::nullopt;
  const std::string parent(buf);
  return (parent == "/" ? "" : parent) + "/" + base_of(path);
}

/// True when `inner` is `outer` or lies below it.
bool within(const std::string& inner, const std::string& outer) {
  return inner == outer || (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
                            (outer == "/" || inner[outer.size()] == '/'));
}

/// What the library treats as the input: the directory for a directory or index, else the file.
std::string input_of(const ckpt::Checkpoint& input) {
  return input.opened_as_directory() ? input.directory() : input.path();
}

/// The checks the library also makes, made before any work so the message is a usage message.
void check_output_directory(const std::string& out, const ckpt::Checkpoint& input, bool force) {
  const auto out_path = resolved(out);
  if (!out_path)
    throw usage_error("-o " + out + ": the parent directory " + parent_of(out) + " does not exist");
  const auto in_path = resolved(input_of(input));
  if (in_path && (within(*out_path, *in_path) || within(*in_path, *out_path))) {
    throw usage_error("-o " + out + ": refusing to write into (or over) the input checkpoint's directory " +
                      input_of(input));
  }
  if (exists(out) && !force) throw usage_error("-o " + out + ": already exists; use --force to replace it");
}

/// The output file of a GGUF prune: its directory must exist; not an input file; not existing
/// unless --force.
void check_output_file(const std::string& out, const ckpt::GgufModel& m, bool force) {
  if (!resolved(out)) throw usage_error("-o " + out + ": the directory " + parent_of(out) + " does not exist");
  for (const auto& shard : m.files().shards()) {
    const auto a = resolved(out), b = resolved(shard.path());
    if (a && b && *a == *b) throw usage_error("-o " + out + ": refusing to write over the input model");
  }
  if (exists(out) && !force) throw usage_error("-o " + out + ": already exists; use --force to replace it");
}

/// --heads names GGUF layers by their number N in `blk.N`; the library takes block indices (they
/// differ only where a layer has no attention).
std::map<mhaprune::Index, std::vector<mhaprune::Index>> gguf_blocks_of_layers(
    const std::map<mhaprune::Index, std::vector<mhaprune::Index>>& by_layer, const ckpt::GgufModel& m) {
  std::map<mhaprune::Index, std::vector<mhaprune::Index>> out;
  for (const auto& [layer, ids] : by_layer) {
    mhaprune::Index index = -1;
    for (const auto& b : m.blocks())
      if (b.layer == layer) index = b.index;
    if (index < 0) {
      throw usage_error("--heads names layer " + std::to_string(layer) + ", but " + m.path() + " has " +
                        std::to_string(m.block_count()) + " layers" +
                        (layer >= 0 && static_cast<std::uint64_t>(layer) < m.block_count() ? " and that one has no attention heads" : ""));
    }
    out[index] = ids;
  }
  return out;
}

/// A report or heatmap path: its directory must exist; it must not replace a file of the input or,
/// without --force, any existing file.
void check_side_output(const char* flag, const std::string& path, const std::string& input, bool force) {
  if (path.empty() || path == "-") return;
  const auto p = resolved(path);
  if (!p)
    throw usage_error(std::string(flag) + " " + path + ": the directory " + parent_of(path) +
                      " does not exist");
  const auto in_path = resolved(input);
  if (in_path && within(*p, *in_path))
    throw usage_error(std::string(flag) + " " + path + ": refusing to write into the input checkpoint");
  if (exists(path) && !force)
    throw usage_error(std::string(flag) + " " + path + ": already exists; use --force to replace it");
}

/// Writes `text` to `path` through a temporary file and a rename, or to stdout for "-".
void write_text(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return;
  }
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw mhaprune::io_error(path + ": cannot be written: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw mhaprune::io_error(path + ": cannot be written: " + reason);
  }
}

// --- shared pieces -------------------------------------------------------------------------------

struct Inputs {
  std::map<std::string, mhaprune::ActivationStats> stats;
  bool have_stats = false;
};

void load_stats(const std::string& path, Inputs& in) {
  if (path.empty()) return;
  in.stats = mhaprune::io::read_stats_file(path);
  in.have_stats = true;
}

ckpt::Checkpoint open_model(const std::string& model, const std::string& preset) {
  ckpt::OpenOptions o;
  if (!preset.empty()) o.preset_file = preset;
  return ckpt::Checkpoint::open(model, o);
}

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g%%", 100.0 * x);
  return buf;
}

// --- commands ------------------------------------------------------------------------------------

/// A llama.cpp model: a `.gguf` path, or any file that starts with GGUF's magic.
bool is_gguf(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) return true;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

/// --stats or --imatrix statistics, keyed as the model's blocks expect them.
void load_gguf_stats(const std::string& stats, const std::string& imatrix, Inputs& in,
                     std::optional<mhaprune::io::Imatrix>& matrix) {
  if (!stats.empty() && !imatrix.empty()) throw usage_error("give --stats or --imatrix, not both");
  load_stats(stats, in);
  if (imatrix.empty()) return;
  matrix = mhaprune::io::read_imatrix(imatrix);
  in.stats = mhaprune::io::imatrix_to_stats(*matrix);
  in.have_stats = true;
}

int run_inspect(const InspectArgs& a) {
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    const ckpt::GgufModel m = ckpt::GgufModel::open(a.model);
    if (a.json.empty()) {
      std::fputs(inspect_table(m).c_str(), stdout);
    } else {
      write_text(a.json, inspect_json(m).dump(2) + "\n");
    }
    return exit_ok;
  }
  const ckpt::Checkpoint ck = open_model(a.model, a.preset);
  if (a.json.empty()) {
    std::fputs(inspect_table(ck).c_str(), stdout);
  } else {
    write_text(a.json, inspect_json(ck).dump(2) + "\n");
  }
  return exit_ok;
}

int run_score(const ScoreArgs& a, ProgressPrinter& progress) {
  const mhaprune::PrunerConfig config = make_config(a.config);
  Inputs in;
  ckpt::PruneOptions o;
  o.config = config;
  o.progress = [&progress](const ckpt::Progress& p) { progress.update(p.stage, p.done, p.total, p.block); };
  mhaprune::PruneReport report;
  std::string model_path, architecture;
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    std::optional<mhaprune::io::Imatrix> matrix;
    load_gguf_stats(a.stats, a.imatrix, in, matrix);
    const ckpt::GgufModel m = ckpt::GgufModel::open(a.model);
    check_side_output("--json", a.json, m.path(), true);
    check_side_output("--heatmap", a.heatmap, m.path(), true);
    if (in.have_stats) o.stats = &in.stats;
    report = ckpt::score_gguf(m, o);
    model_path = m.path();
    architecture = m.architecture();
  } else {
    if (!a.imatrix.empty()) throw usage_error("--imatrix applies to GGUF models; use --stats for checkpoints");
    load_stats(a.stats, in);
    const ckpt::Checkpoint ck = open_model(a.model, a.preset);
    check_side_output("--json", a.json, input_of(ck), true);
    check_side_output("--heatmap", a.heatmap, input_of(ck), true);
    if (in.have_stats) o.stats = &in.stats;
    report = ckpt::score_checkpoint(ck, o);
    model_path = ck.path();
    architecture = ck.architecture();
  }
  progress.finish();

  if (!a.json.empty()) write_text(a.json, nlohmann::json(report).dump(2) + "\n");
  if (!a.heatmap.empty()) {
    HeatmapOptions h;
    h.title = "mhaprune head scores: " + base_of(model_path);
    h.subtitle = "criterion " + config.criterion_type + " (" + config.criterion_reduce_type + "), " +
                 architecture;
    write_text(a.heatmap, heatmap_svg(report, h));
  }
  if (a.json != "-") {
    std::printf("%s: %s, criterion %s (%s)\n", model_path.c_str(), architecture.c_str(),
                config.criterion_type.c_str(), config.criterion_reduce_type.c_str());
    std::printf("%-6s %-40s %6s %11s %11s %11s  %s\n", "block", "name", "heads", "min", "mean", "max",
                "lowest (id:score)");
    for (std::size_t i = 0; i < report.blocks.size(); ++i) {
      const auto& b = report.blocks[i];
      std::vector<std::pair<double, mhaprune::Index>> ranked;
      double sum = 0;
      for (std::size_t k = 0; k < b.scores.size(); ++k)
        ranked.emplace_back(b.scores[k], b.head_ids[k]), sum += b.scores[k];
      std::sort(ranked.begin(), ranked.end());
      std::string lowest;
      for (std::size_t k = 0; k < ranked.size() && k < 3; ++k) {
        char cell[64];
        std::snprintf(cell, sizeof cell, "%s%ld:%.4g", k ? " " : "", static_cast<long>(ranked[k].second),
                      ranked[k].first);
        lowest += cell;
      }
      std::printf("%-6zu %-40s %6zu %11.4g %11.4g %11.4g  %s\n", i, b.name.c_str(), b.scores.size(),
                  ranked.empty() ? NAN : ranked.front().first, ranked.empty() ? NAN : sum / ranked.size(),
                  ranked.empty() ? NAN : ranked.back().first, lowest.c_str());
    }
  }
  return exit_ok;
}

int run_prune(const PruneArgs& a, ProgressPrinter& progress) {
  const bool have_heads = a.heads_option->count() > 0, have_sparsity = a.sparsity_option->count() > 0;
  if (!have_heads && !have_sparsity && a.config.config_file.empty())
    throw usage_error("prune needs --sparsity R, --heads SPEC or --config FILE (with target_sparsity)");
  const mhaprune::PrunerConfig config = make_config(a.config);
  ckpt::PruneOptions o;
  o.config = config;
  if (have_heads) o.explicit_heads = parse_heads_spec(a.heads);
  o.compensation.method = mhaprune::parse_compensation(a.compensate);
  o.compensation.lambda = a.compensate_lambda;
  o.overwrite = a.force;
  o.durable = !a.no_sync;

  o.progress = [&progress](const ckpt::Progress& p) { progress.update(p.stage, p.done, p.total, p.block); };
  Inputs in;
  mhaprune::PruneReport report;
  nlohmann::json report_json;
  std::string model_path, architecture;
  std::uint64_t model_before = 0;
  long original_heads = 0;
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    std::optional<mhaprune::io::Imatrix> matrix;
    load_gguf_stats(a.stats, a.imatrix, in, matrix);
    if (!a.imatrix_out.empty() && !matrix) throw usage_error("--imatrix-out needs --imatrix");
    if (in.have_stats) o.stats = &in.stats;
    const ckpt::GgufModel m = ckpt::GgufModel::open(a.model);
    check_output_file(a.output, m, a.force);
    check_side_output("--report", a.report, m.path(), a.force);
    check_side_output("--heatmap", a.heatmap, m.path(), a.force);
    check_side_output("--imatrix-out", a.imatrix_out, m.path(), a.force);
    if (o.explicit_heads) o.explicit_heads = gguf_blocks_of_layers(*o.explicit_heads, m);
    ckpt::GgufPruneOptions g;
    if (!a.requantize.empty()) g.requantize = mhaprune::io::parse_ggml_type(a.requantize);
    if (matrix) g.imatrix = &*matrix;
    g.imatrix_out = a.imatrix_out;
    ckpt::GgufPruneResult result = ckpt::prune_gguf(m, a.output, o, g);
    report = std::move(result.report);
    report_json = report;
    report_json["output_files"] = result.output_files;
    report_json["architecture"] = result.architecture;
    report_json["requantized"] = result.requantized;
    model_path = m.path();
    architecture = m.architecture() == result.architecture ? m.architecture()
                                                             : m.architecture() + " -> " + result.architecture;
    model_before = m.parameter_count();
    for (const auto& b : m.blocks()) original_heads += static_cast<long>(b.original_heads);
    for (const std::string& t : result.requantized)
      std::printf("re-encoded %s as %s (its removed heads are not whole blocks)\n", t.c_str(), a.requantize.c_str());
  } else {
    if (!a.imatrix.empty() || !a.imatrix_out.empty() || !a.requantize.empty())
      throw usage_error("--imatrix, --imatrix-out and --requantize apply to GGUF models");
    load_stats(a.stats, in);
    if (in.have_stats) o.stats = &in.stats;
    const ckpt::Checkpoint ck = open_model(a.model, a.preset);
    check_output_directory(a.output, ck, a.force);
    check_side_output("--report", a.report, input_of(ck), a.force);
    check_side_output("--heatmap", a.heatmap, input_of(ck), a.force);
    report = ckpt::prune_checkpoint(ck, a.output, o);
    report_json = report;
    model_path = ck.path();
    architecture = ck.architecture();
    model_before = ck.parameter_count();
    for (const auto& b : ck.blocks()) original_heads += static_cast<long>(b.original_heads);
  }
  progress.finish();

  if (!a.report.empty()) write_text(a.report, report_json.dump(2) + "\n");
  const std::string how = have_heads ? std::string("explicit heads")
                                     : config.criterion_type + ", " + config.pruning_scope + ", target " +
                                           percent(config.target_sparsity);
  if (!a.heatmap.empty()) {
    HeatmapOptions h;
    h.title = "mhaprune: heads removed from " + base_of(model_path);
    h.subtitle = how + " (" + config.criterion_reduce_type + "); crossed out = removed";
    write_text(a.heatmap, heatmap_svg(report, h));
  }

  const mhaprune::BlockCost before = report.total(false), after = report.total(true);
  const std::uint64_t model_after =
      model_before - static_cast<std::uint64_t>(before.parameters - after.parameters);
  std::printf("pruned %s -> %s (%s; %s)\n", model_path.c_str(), a.output.c_str(), architecture.c_str(),
              how.c_str());
  std::printf("heads       %ld -> %ld (%ld removed)\n", static_cast<long>(before.heads),
              static_cast<long>(after.heads), static_cast<long>(before.heads - after.heads));
  std::printf("kv heads    %ld -> %ld\n", static_cast<long>(before.kv_heads),
              static_cast<long>(after.kv_heads));
  if (!have_heads && before.heads == after.heads && original_heads > static_cast<long>(before.heads)) {
    // Re-pruning at or below the fraction an earlier round removed is not an error, but looks like one.
    std::printf(
        "note: nothing removed: --sparsity counts the original model's %ld heads, and an earlier "
        "pruning already removed %ld of them\n",
        original_heads, original_heads - static_cast<long>(before.heads));
  }
  std::printf(
      "parameters  %s -> %s (-%s; attention %s -> %s)\n", grouped(model_before).c_str(),
      grouped(model_after).c_str(),
      percent(model_before ? 1.0 - static_cast<double>(model_after) / static_cast<double>(model_before) : 0.0)
          .c_str(),
      grouped(static_cast<std::uint64_t>(before.parameters)).c_str(),
      grouped(static_cast<std::uint64_t>(after.parameters)).c_str());
  std::printf("%-6s %-40s %-9s %-9s %s\n", "block", "name", "heads", "kv_heads", "removed (original ids)");
  for (std::size_t i = 0; i < report.blocks.size(); ++i) {
    const auto& b = report.blocks[i];
    const std::string h = std::to_string(b.before.heads) + " -> " + std::to_string(b.after.heads);
    const std::string kv = std::to_string(b.before.kv_heads) + " -> " + std::to_string(b.after.kv_heads);
    std::printf("%-6zu %-40s %-9s %-9s %s\n", i, b.name.c_str(), h.c_str(), kv.c_str(),
                b.removed.empty() ? "-" : id_ranges(b.removed).c_str());
  }
  return exit_ok;
}

}  // namespace
}  // namespace mhaprune_cli

int main(int argc, char** argv) {
  using namespace mhaprune_cli;
  CLI::App app;
  CommandLine cl;
  define_command_line(app, cl);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    const bool no_command = !cl.prune_cmd->parsed() && !cl.score_cmd->parsed() && !cl.inspect_cmd->parsed();
    if (no_command && argc > 1 && argv[1][0] != '-') {
      std::fprintf(stderr,
                   "mhaprune: error: unknown command \"%s\"; the commands are inspect, score and prune "
                   "(see mhaprune --help)\n",
                   argv[1]);
      return exit_usage;
    }
    std::fprintf(stderr, "mhaprune: error: %s (see mhaprune%s --help)\n", one_line(e.what()).c_str(),
                 cl.prune_cmd->parsed()     ? " prune"
                 : cl.score_cmd->parsed()   ? " score"
                 : cl.inspect_cmd->parsed() ? " inspect"
                                            : "");
    return exit_usage;
  }

  const bool quiet = (cl.prune_cmd->parsed() && cl.prune.quiet) || (cl.score_cmd->parsed() && cl.score.quiet);
  ProgressPrinter progress(stderr, ::isatty(::fileno(stderr)) == 1, quiet);
  try {
    if (cl.inspect_cmd->parsed()) return run_inspect(cl.inspect);
    if (cl.score_cmd->parsed()) return run_score(cl.score, progress);
    return run_prune(cl.prune, progress);
  } catch (const std::exception& e) {
    progress.finish();
    std::fflush(stdout);
    std::fprintf(stderr, "mhaprune: error: %s\n", one_line(e.what()).c_str());
    return exit_code_for(e);
  }
}
