// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// io::write_file: the content arrives whole under the final name, replaces what was there, and a
// write that cannot happen throws io_error naming the path and leaves the directory as it was.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "mhaprune/error.hpp"
#include "mhaprune/io/write_file.hpp"

namespace test_io_write_file {

namespace fs = std::filesystem;

/// A fresh, empty directory of this test's own.
fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mhaprune-write-file-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Every name in `dir`, hidden temporaries included.
std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

TEST_CASE("write_file writes the whole content and replaces an existing file", "[io][write_file]") {
  const fs::path dir = scratch("replace");
  const std::string path = (dir / "report.json").string();
  const std::string binary("a\0b\nc", 5);
  for (const bool durable : {true, false}) {
    mhaprune::io::write_file(path, binary, durable);
    CHECK(read(path) == binary);
    mhaprune::io::write_file(path, "second", durable);
    CHECK(read(path) == "second");
    CHECK(names_in(dir) == std::set<std::string>{"report.json"});  // no temporary left behind
  }
  mhaprune::io::write_file(path, "");
  CHECK(fs::file_size(path) == 0);
}

TEST_CASE("write_file refuses what it cannot write and changes nothing", "[io][write_file][errors]") {
  const fs::path dir = scratch("errors");

  SECTION("the directory does not exist") {
    const std::string path = (dir / "missing" / "report.json").string();
    CHECK_THROWS_MATCHES(mhaprune::io::write_file(path, "x"), mhaprune::io_error,
                         Catch::Matchers::Predicate<mhaprune::io_error>([&](const mhaprune::io_error& e) {
                           return std::string(e.what()).find(path) != std::string::npos;
                         }));
    CHECK(names_in(dir).empty());
  }

  SECTION("the path names a directory, which stays as it was") {
    const fs::path target = dir / "report.json";
    fs::create_directory(target);
    std::ofstream(target / "inside.txt") << "kept";
    CHECK_THROWS_AS(mhaprune::io::write_file(target.string(), "x"), mhaprune::io_error);
    CHECK(fs::is_directory(target));
    CHECK(read(target / "inside.txt") == "kept");
    CHECK(names_in(dir) == std::set<std::string>{"report.json"});  // the temporary was removed
  }

  SECTION("a path that ends with '/' is not a file name") {
    std::ofstream(dir / "keep.txt") << "old";
    CHECK_THROWS_AS(mhaprune::io::write_file((dir / "keep.txt").string() + "/", "x"), mhaprune::io_error);
    CHECK(read(dir / "keep.txt") == "old");
    CHECK(names_in(dir) == std::set<std::string>{"keep.txt"});
  }
}

}  // namespace test_io_write_file
