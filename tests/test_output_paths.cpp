// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// checkpoint::resolved_path and path_within, what the tool and OutputDirectory decide "is the output
// inside the input?" with: symbolic links and trailing slashes resolved, components compared whole.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/error.hpp"

namespace test_output_paths {

namespace fs = std::filesystem;
using mhaprune::checkpoint::path_within;
using mhaprune::checkpoint::resolved_path;

TEST_CASE("resolved_path follows links, keeps a last component that does not exist", "[checkpoint][paths]") {
  const fs::path dir = fs::temp_directory_path() / ("mhaprune-output-paths-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "real" / "model");
  fs::create_directory_symlink(dir / "real", dir / "link");
  const std::string real = fs::canonical(dir / "real").string();

  CHECK(resolved_path((dir / "link" / "model").string()) == real + "/model");
  CHECK(resolved_path((dir / "link" / "model").string() + "//") == real + "/model");
  CHECK(resolved_path((dir / "link" / "new-output").string()) == real + "/new-output");
  CHECK(resolved_path("/") == "/");

  const std::string missing = (dir / "absent" / "out").string();
  CHECK_THROWS_AS(resolved_path(missing), mhaprune::io_error);
  CHECK_THROWS_WITH(resolved_path(missing), Catch::Contains(missing));
  fs::remove_all(dir);
}

TEST_CASE("path_within compares whole components", "[checkpoint][paths]") {
  CHECK(path_within("/a/b", "/a/b"));
  CHECK(path_within("/a/b/c", "/a/b"));
  CHECK(path_within("/a", "/"));
  CHECK_FALSE(path_within("/a/bc", "/a/b"));  // a sibling sharing a prefix is not inside
  CHECK_FALSE(path_within("/a", "/a/b"));
  CHECK_FALSE(path_within("/x/b", "/a/b"));
}

}  // namespace test_output_paths
