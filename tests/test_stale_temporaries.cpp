// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// io::detail::remove_stale_temporaries: the temporaries a killed writer left next to an output
// (files of TempFile, directories of OutputDirectory) go when their pid no longer runs; a running
// writer's temporaries, other names' temporaries and every look-alike stay. Also: TempFile and
// OutputDirectory call it, so re-running an interrupted command cleans up after the first run.

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/io/detail/stale_temporaries.hpp"
#include "mhaprune/io/detail/temp_file.hpp"

namespace test_stale_temporaries_ns {

namespace fs = std::filesystem;
namespace iod = mhaprune::io::detail;

/// A fresh, empty directory of this test's own.
fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mhaprune-stale-temporaries-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// The pid of a process that has exited and been reaped: kill(pid, 0) fails with ESRCH.
long dead_pid() {
  const ::pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(::kill(child, 0) == -1);
  return static_cast<long>(child);
}

/// A temporary's name as TempFile and OutputDirectory write it.
std::string temp_name(const std::string& base, long pid, unsigned n = 0,
                      const std::string& clock = "1f3a9c") {
  return "." + base + ".tmp-" + std::to_string(pid) + "-" + std::to_string(n) + "-" + clock;
}

void write(const fs::path& p, const std::string& text = "partial") {
  std::ofstream(p, std::ios::binary) << text;
}

/// A directory temporary with files, a subdirectory, and a symbolic link to `outside` inside.
void make_dir_temporary(const fs::path& dir, const fs::path& outside) {
  fs::create_directories(dir / "sub");
  write(dir / "model.safetensors");
  write(dir / ".model.safetensors.tmp-1-0-1");
  write(dir / "sub" / "x");
  fs::create_symlink(outside, dir / "link");
}

/// Every name in `dir`, hidden ones included.
std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

/// Restores the working directory at the end of a scope.
class InDirectory {
 public:
  explicit InDirectory(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(old_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  fs::path old_;
};

TEST_CASE("stale temporaries: the name must be exactly .<name>.tmp-<pid>-<n>-<hex clock>", "[io][stale]") {
  CHECK(iod::stale_temporary_owner(".out.tmp-123-0-1f3a", "out") == 123);
  CHECK(iod::stale_temporary_owner(".out.tmp-123-45-0", "out") == 123);
  CHECK(iod::stale_temporary_owner(".m.gguf.tmp-7-2-abcdef0123456789", "m.gguf") == 7);
  for (const char* not_one : {"out",
                              ".out",
                              ".out.tmp-",
                              ".out.tmp-123",
                              ".out.tmp-123-0",
                              ".out.tmp-123-0-",
                              ".out.tmp-123--1f",
                              ".out.tmp--123-0-1f",
                              ".out.tmp-0-0-1f",
                              ".out.tmp-0123-0-1f",
                              ".out.tmp-123-00-1f",
                              ".out.tmp-123-0-01f",
                              ".out.tmp-123-0-1F",
                              ".out.tmp-123-0-1g",
                              ".out.tmp-123-0-1f.old",
                              ".out.tmp-123-0-1f-2",
                              ".out.tmp-123-0-1f ",
                              ".out.tmp- 123-0-1f",
                              ".out.tmp-+123-0-1f",
                              "out.tmp-123-0-1f",
                              "..out.tmp-123-0-1f",
                              ".outx.tmp-123-0-1f",
                              ".ou.tmp-123-0-1f",
                              ".out.tmp-99999999999-0-1f",
                              ".out.tmp-2147483648-0-1f",
                              ".out.tmp-123-0-11111111111111111"}) {
    INFO(not_one);
    CHECK(iod::stale_temporary_owner(not_one, "out") == 0);
  }
  // A final name that itself contains ".tmp-": each name's temporaries are told apart.
  CHECK(iod::stale_temporary_owner(".a.tmp-1-2-3.tmp-5-0-9", "a") == 0);
  CHECK(iod::stale_temporary_owner(".a.tmp-1-2-3.tmp-5-0-9", "a.tmp-1-2-3") == 5);
}

TEST_CASE("stale temporaries: a dead writer's file and directory temporaries are removed", "[io][stale]") {
  const fs::path dir = scratch("dead");
  const fs::path outside = scratch("dead-outside") / "keep.txt";
  write(outside, "not part of any temporary");
  const long dead = dead_pid();
  write(dir / temp_name("model.gguf", dead, 0));
  write(dir / temp_name("model.gguf", dead, 7, "0"));
  make_dir_temporary(dir / temp_name("pruned", dead, 3), outside);
  write(dir / "model.gguf", "the finished output");
  fs::create_directory(dir / "pruned");

  iod::remove_stale_temporaries((dir / "model.gguf").string());
  CHECK(names_in(dir) == std::set<std::string>{"model.gguf", "pruned", temp_name("pruned", dead, 3)});
  iod::remove_stale_temporaries((dir / "pruned").string());
  CHECK(names_in(dir) == std::set<std::string>{"model.gguf", "pruned"});
  // The symbolic link inside the removed directory was removed, not followed.
  CHECK(fs::exists(outside));
  fs::remove_all(dir.parent_path());
}

TEST_CASE("stale temporaries: a running writer's temporaries stay", "[io][stale]") {
  const fs::path dir = scratch("live");
  const long self = static_cast<long>(::getpid());
  const long parent = static_cast<long>(::getppid());
  const fs::path outside = scratch("live-outside") / "keep.txt";
  write(outside);
  const std::set<std::string> before{temp_name("model.gguf", self, 0), temp_name("model.gguf", parent, 1),
                                     temp_name("pruned", self, 2)};
  write(dir / temp_name("model.gguf", self, 0));
  write(dir / temp_name("model.gguf", parent, 1));
  make_dir_temporary(dir / temp_name("pruned", self, 2), outside);
  iod::remove_stale_temporaries((dir / "model.gguf").string());
  iod::remove_stale_temporaries((dir / "pruned").string());
  CHECK(names_in(dir) == before);
  CHECK(names_in(dir / temp_name("pruned", self, 2)) ==
        std::set<std::string>{"model.safetensors", ".model.safetensors.tmp-1-0-1", "sub", "link"});
  fs::remove_all(dir.parent_path());
}

TEST_CASE("stale temporaries: look-alikes stay", "[io][stale]") {
  const fs::path dir = scratch("look-alikes");
  const long dead = dead_pid();
  const std::string d = std::to_string(dead);
  const fs::path target = dir / "target";
  write(target);
  std::set<std::string> keep{"target", "out"};
  for (const std::string& name :
       {temp_name("other", dead), temp_name("out", dead) + ".old", "." + d, "out.tmp-" + d + "-0-1f",
        ".out.tmp-" + d + "-0", ".out.tmp-" + d + "-0-1F", ".out.tmp-0" + d + "-0-1f",
        ".out.tmp-" + d + "-0-1f-2", ".outx.tmp-" + d + "-0-1f", ".ou.tmp-" + d + "-0-1f",
        ".out.tmp-" + d + "-0-1f.tmp-" + d + "-0-1f"}) {
    write(dir / name);
    keep.insert(name);
  }
  fs::create_directory(dir / (temp_name("out", dead, 1) + ".old"));  // an interrupted --force's old output
  keep.insert(temp_name("out", dead, 1) + ".old");
  // A symbolic link named exactly as a dead writer's temporary: never made by a writer, so it stays.
  fs::create_symlink(target, dir / temp_name("out", dead, 2));
  keep.insert(temp_name("out", dead, 2));
  write(dir / "out");

  iod::remove_stale_temporaries((dir / "out").string());
  CHECK(names_in(dir) == keep);
  CHECK(fs::exists(target));
  // Nothing to do for names no writer uses, and no failure for a missing directory.
  iod::remove_stale_temporaries((dir / "").string());
  iod::remove_stale_temporaries((dir / ".").string());
  iod::remove_stale_temporaries((dir / "missing" / "out").string());
  iod::remove_stale_temporaries("");
  CHECK(names_in(dir) == keep);
  fs::remove_all(dir.parent_path());
}

TEST_CASE("stale temporaries: relative paths and trailing slashes", "[io][stale]") {
  const fs::path dir = scratch("relative");
  const long dead = dead_pid();
  fs::create_directories(dir / "sub");
  write(dir / temp_name("here.gguf", dead));
  fs::create_directory(dir / temp_name("here", dead));
  fs::create_directory(dir / "sub" / temp_name("there", dead, 4));
  write(dir / "sub" / temp_name("there", dead, 5));
  {
    InDirectory in(dir);
    iod::remove_stale_temporaries("here.gguf");
    iod::remove_stale_temporaries("here/");
    iod::remove_stale_temporaries("sub/there//");
  }
  CHECK(names_in(dir) == std::set<std::string>{"sub"});
  CHECK(names_in(dir / "sub").empty());
  fs::remove_all(dir.parent_path());
}

TEST_CASE("stale temporaries: TempFile and OutputDirectory remove a killed run's leftovers", "[io][stale]") {
  const fs::path dir = scratch("writers");
  const long dead = dead_pid();
  const fs::path outside = scratch("writers-outside") / "keep.txt";
  write(outside);
  const std::string live_file = temp_name("model.gguf", static_cast<long>(::getpid()), 99);
  write(dir / temp_name("model.gguf", dead));
  write(dir / live_file);
  make_dir_temporary(dir / temp_name("pruned", dead), outside);
  const fs::path input = scratch("writers-input");
  {
    iod::TempFile f((dir / "model.gguf").string());
    f.append("GGUF", 4);
    f.commit(false);
  }
  CHECK(names_in(dir) == std::set<std::string>{"model.gguf", live_file, temp_name("pruned", dead)});
  {
    mhaprune::checkpoint::OutputDirectory out((dir / "pruned/").string(), input.string(), false);
    write(fs::path(out.path()) / "config.json", "{}");
    out.commit(false);
  }
  CHECK(names_in(dir) == std::set<std::string>{"model.gguf", live_file, "pruned"});
  CHECK(names_in(dir / "pruned") == std::set<std::string>{"config.json"});
  CHECK(fs::exists(outside));
  fs::remove_all(dir.parent_path());
}

}  // namespace test_stale_temporaries_ns
