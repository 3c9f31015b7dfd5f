// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// mhaprune: remove attention heads from a Hugging Face-style safetensors checkpoint.
//
//   mhaprune inspect MODEL [--json [FILE]]
//   mhaprune score MODEL [--criterion NAME] [--stats FILE] [--json [FILE]] [--heatmap FILE.svg]
//   mhaprune prune MODEL -o OUT (--sparsity R | --heads SPEC | --config FILE) [options]
//   mhaprune slim MODEL -o OUT [--tolerance T]   (remove the heads a masked model zeroed)
//
// The library does the work (mhaprune/checkpoint/checkpoint.hpp); each command_*.hpp runs one
// command; this file parses the options (cli_options.hpp) and maps errors to exit codes
// (exit_codes.hpp). See `mhaprune --help`.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>

#include "cli_options.hpp"
#include "command_inspect.hpp"
#include "command_prune.hpp"
#include "command_score.hpp"
#include "command_slim.hpp"
#include "exit_codes.hpp"
#include "progress.hpp"

int main(int argc, char** argv) {
  using namespace mhaprune_cli;
  // Under a file-size limit (ulimit -f) a write past it would kill the tool with SIGXFSZ, leaving its
  // temporary file behind; ignored, the write fails with EFBIG instead, and the tool removes the
  // temporary and reports an io error (exit 3) naming the file, as for a full disk.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app;
  CommandLine cl;
  define_command_line(app, cl);
  SlimArgs slim;
  CLI::App* const slim_cmd = define_slim_command(app, slim);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    const bool no_command = !cl.prune_cmd->parsed() && !cl.score_cmd->parsed() && !cl.inspect_cmd->parsed() &&
                            !slim_cmd->parsed();
    if (no_command && argc > 1 && argv[1][0] != '-') {
      std::fprintf(stderr,
                   "mhaprune: error: unknown command \"%s\"; the commands are inspect, score, prune and "
                   "slim (see mhaprune --help)\n",
                   argv[1]);
      return exit_usage;
    }
    std::fprintf(stderr, "mhaprune: error: %s (see mhaprune%s --help)\n", one_line(e.what()).c_str(),
                 cl.prune_cmd->parsed()     ? " prune"
                 : cl.score_cmd->parsed()   ? " score"
                 : cl.inspect_cmd->parsed() ? " inspect"
                 : slim_cmd->parsed()       ? " slim"
                                            : "");
    return exit_usage;
  }

  const bool quiet = (cl.prune_cmd->parsed() && cl.prune.quiet) ||
                     (cl.score_cmd->parsed() && cl.score.quiet) || (slim_cmd->parsed() && slim.quiet);
  ProgressPrinter progress(stderr, ::isatty(::fileno(stderr)) == 1, quiet);
  try {
    if (cl.inspect_cmd->parsed()) return run_inspect(cl.inspect);
    if (cl.score_cmd->parsed()) return run_score(cl.score, progress);
    if (slim_cmd->parsed()) return run_slim(slim, progress);
    return run_prune(cl.prune, progress);
  } catch (const std::exception& e) {
    progress.finish();
    std::fflush(stdout);
    std::fprintf(stderr, "mhaprune: error: %s\n", one_line(e.what()).c_str());
    return exit_code_for(e);
  }
}
