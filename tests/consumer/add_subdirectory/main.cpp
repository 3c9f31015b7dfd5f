// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// What a consumer needs from the exported target: the library's include path, Eigen's (the core
// headers) and nlohmann-json's (the report), and C++17. Kept to a few light headers: the umbrella
// header is compiled by the unit tests and, alone, by the header check.
#include <iostream>
#include <mhaprune/core/remove_heads.hpp>
#include <mhaprune/pruner/report_json.hpp>
#include <mhaprune/version.hpp>

int main() {
  const mhaprune::HeadLayout layout(4, 2, 8, 32);
  const nlohmann::json report = mhaprune::PruneReport{};
  std::cout << "mhaprune version " << mhaprune::version << '\n';
  return mhaprune::version > 0 && layout.kv_heads() == 2 && report.is_object() ? 0 : 1;
}
