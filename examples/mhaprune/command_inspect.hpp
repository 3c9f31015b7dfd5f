// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune inspect MODEL [--json [FILE]]`: what the library made of a model, as a table or JSON.
#pragma once

#include <cstdio>

#include "cli_options.hpp"
#include "exit_codes.hpp"
#include "inspect.hpp"
#include "inspect_gguf.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "model_inputs.hpp"
#include "output_paths.hpp"

namespace mhaprune_cli {

namespace detail {

/// The table on stdout, or the JSON where --json says.
template <typename Model>
int show(const Model& model, const InspectArgs& a) {
  if (a.json.empty()) {
    std::fputs(inspect_table(model).c_str(), stdout);
  } else {
    write_output(a.json, inspect_json(model).dump(2) + "\n", true);
  }
  return exit_ok;
}

}  // namespace detail

/// Runs `inspect`; returns the exit code. Throws what opening the model throws.
inline int run_inspect(const InspectArgs& a) {
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    return detail::show(mhaprune::checkpoint::GgufModel::open(a.model), a);
  }
  return detail::show(open_model(a.model, a.preset), a);
}

}  // namespace mhaprune_cli
