// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <mhaprune/mhaprune.hpp>
#include <string>

namespace test_smoke {

TEST_CASE("version is positive and consistent", "[smoke][version]") {
  STATIC_REQUIRE(mhaprune::version > 0);
  CHECK(mhaprune::version ==
        MHAPRUNE_VERSION_MAJOR * 10000 + MHAPRUNE_VERSION_MINOR * 100 + MHAPRUNE_VERSION_PATCH);

  const std::string from_numbers = std::to_string(MHAPRUNE_VERSION_MAJOR) + "." +
                                   std::to_string(MHAPRUNE_VERSION_MINOR) + "." +
                                   std::to_string(MHAPRUNE_VERSION_PATCH);
  CHECK(std::string(MHAPRUNE_VERSION_STRING) == from_numbers);
#ifdef MHAPRUNE_TEST_CMAKE_PROJECT_VERSION
  // The version CMake parsed out of version.hpp (project(VERSION ...)).
  CHECK(std::string(MHAPRUNE_TEST_CMAKE_PROJECT_VERSION) == from_numbers);
#endif
}

}  // namespace test_smoke
