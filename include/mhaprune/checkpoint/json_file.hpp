// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "mhaprune/error.hpp"

namespace mhaprune::checkpoint {

/// The JSON document in `path`: a checkpoint's config.json, a user preset, a pruner config, ...
///
/// @param path the file to read.
/// @param what names the file in messages ("preset", "config.json", ...).
/// @throws io_error if the file cannot be opened; preset_error (a corrupt_file_error) if it is not
///         valid JSON, since every JSON file a checkpoint is read with describes the model. Both
///         messages start with `path`.
inline nlohmann::json read_json_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(mhaprune::detail::message(path, ": cannot open the ", what, " file"));
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw preset_error(mhaprune::detail::message(path, ": not valid JSON (", what, "): ", e.what()));
  }
}

}  // namespace mhaprune::checkpoint
