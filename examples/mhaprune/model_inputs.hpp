// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// What a command reads: the model (a safetensors checkpoint or a llama.cpp GGUF model) and the
// calibration statistics for activation criteria and compensation.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "exit_codes.hpp"
#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/io/gradients_file.hpp"
#include "mhaprune/io/imatrix.hpp"
#include "mhaprune/io/stats_file.hpp"

namespace mhaprune_cli {

/// A llama.cpp model: a `.gguf` path, or any regular file that starts with GGUF's magic.
inline bool is_gguf(const std::string& path) {
  const std::string_view suffix = ".gguf";
  if (path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
    return true;
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

/// A safetensors checkpoint, with a user preset when `preset` is not "".
inline mhaprune::checkpoint::Checkpoint open_model(const std::string& model, const std::string& preset) {
  mhaprune::checkpoint::OpenOptions o;
  if (!preset.empty()) o.preset_file = preset;
  return mhaprune::checkpoint::Checkpoint::open(model, o);
}

/// Calibration statistics keyed as the model's blocks expect them; `have_stats` false when none
/// were given.
struct Inputs {
  std::map<std::string, mhaprune::ActivationStats> stats;
  bool have_stats = false;
  /// --grads, when given (read per block while scoring).
  std::optional<mhaprune::io::GradientsFile> grads;
};

/// Opens --grads (a gradients file, `mhaprune::io::GradientsFile`: its header and counts are
/// checked now, its values while scoring); nothing for "".
inline void load_grads(const std::string& path, Inputs& in) {
  if (!path.empty()) in.grads.emplace(path);
}

/// Reads --stats (a statistics file, `mhaprune::io::read_stats_file`) into `in`; nothing for "".
inline void load_stats(const std::string& path, Inputs& in) {
  if (path.empty()) return;
  in.stats = mhaprune::io::read_stats_file(path);
  in.have_stats = true;
}

/// Reads --stats or --imatrix (a GGUF model's) into `in`; the imatrix itself stays in `matrix`,
/// since a prune can write it back for the pruned model.
/// @throws usage_error when both are given.
inline void load_gguf_stats(const std::string& stats, const std::string& imatrix, Inputs& in,
                            std::optional<mhaprune::io::Imatrix>& matrix) {
  if (!stats.empty() && !imatrix.empty()) throw usage_error("give --stats or --imatrix, not both");
  load_stats(stats, in);
  if (imatrix.empty()) return;
  matrix = mhaprune::io::read_imatrix(imatrix);
  in.stats = mhaprune::io::imatrix_to_stats(*matrix);
  in.have_stats = true;
}

}  // namespace mhaprune_cli
