// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// checkpoint::OutputDirectory: a file written inside the directory while it is built under its
// temporary name is named in error messages under the directory's FINAL name (the one the user
// asked for; the temporary is gone when the message is read), followed by the temporary file's
// own path and the system's reason; the registration ends with the OutputDirectory.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/detail/temporary_directories.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "support/message_of.hpp"

namespace test_checkpoint_output_directory_errors_ns {

namespace fs = std::filesystem;
namespace io = mhaprune::io;
using mhaprune::checkpoint::OutputDirectory;

/// A fresh directory of this test's own holding an input file `in.bin` (OutputDirectory checks
/// the output against an input).
fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mhaprune-output-directory-errors-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "in.bin") << "input";
  return dir;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

/// A file-size limit of `bytes` for the process, SIGXFSZ ignored (write fails with EFBIG instead),
/// for a scope; both put back after.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = old_;
    limit.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  struct rlimit old_ {};
  void (*old_handler_)(int) = nullptr;
};

TEST_CASE("checkpoint output_directory: a write that fails inside it names the file under the final name",
          "[checkpoint][output_directory]") {
  const fs::path dir = scratch("write-fails");
  const std::string final_dir = (dir / "pruned").string();
  const std::vector<std::byte> big(std::size_t{3} << 20, std::byte{5});  // past the 1 MiB limit
  io::SafetensorsWriter w;
  w.add("big", io::Dtype::U8, {big.size()}, io::ByteSpan(big));
  std::string message, temp_dir;
  {
    OutputDirectory out(final_dir, (dir / "in.bin").string(), false);
    temp_dir = out.path();
    REQUIRE(temp_dir != final_dir);
    const FileSizeLimit limit(rlim_t{1} << 20);
    message = mhaprune_test::exact_message<mhaprune::io_error>(
        [&] { w.write(out.path() + "/model.safetensors", io::WriteOptions{false}); });
  }
  // "<final>/model.safetensors: cannot write temporary file <temp dir>/.model.safetensors.tmp-...:
  // File too large": the final name first, then the temporary file's own path, then the reason.
  CHECK_THAT(message,
             Catch::Matchers::StartsWith(final_dir + "/model.safetensors: cannot write temporary file " +
                                         temp_dir + "/.model.safetensors.tmp-"));
  CHECK_THAT(message, Catch::Matchers::EndsWith(": File too large"));
  // The destructor removed the temporary directory; nothing under the final name.
  CHECK(entries(dir) == std::vector<std::string>{"in.bin"});
}

TEST_CASE(
    "checkpoint output_directory: a file that cannot be created or renamed inside it is named under "
    "the final name",
    "[checkpoint][output_directory]") {
  const fs::path dir = scratch("create-rename");
  const std::string final_dir = (dir / "pruned").string();
  OutputDirectory out(final_dir, (dir / "in.bin").string(), false);

  // A subdirectory that does not exist: the temporary file cannot be created.
  CHECK(mhaprune_test::exact_message<mhaprune::io_error>([&] {
          io::detail::TempFile f(out.path() + "/missing/config.json");
        }) == final_dir + "/missing/config.json: cannot create a temporary file in " + out.path() +
                  "/missing: No such file or directory");

  // A directory where the file should go: written completely, the rename fails. The message says
  // which rename, inside the temporary directory.
  fs::create_directories(fs::path(out.path()) / "model.safetensors" / "sub");
  io::SafetensorsWriter w;
  const std::vector<std::byte> four(4, std::byte{1});
  w.add("t", io::Dtype::U8, {4}, io::ByteSpan(four));
  const std::string message = mhaprune_test::exact_message<mhaprune::io_error>(
      [&] { w.write(out.path() + "/model.safetensors", io::WriteOptions{false}); });
  CHECK_THAT(message, Catch::Matchers::StartsWith(final_dir + "/model.safetensors: cannot rename " +
                                                  out.path() + "/.model.safetensors.tmp-"));
  CHECK_THAT(message, Catch::Matchers::Contains(" to " + out.path() + "/model.safetensors: "));
  CHECK(entries(out.path()) == std::vector<std::string>{"model.safetensors"});  // the temporary file is gone
}

TEST_CASE("checkpoint output_directory: the final name is shown for paths inside it, only while it lives",
          "[checkpoint][output_directory]") {
  const fs::path dir = scratch("registration");
  const std::string final_dir = (dir / "pruned").string();
  std::string temp_dir;
  {
    OutputDirectory out(final_dir + "/", (dir / "in.bin").string(), false);  // trailing slash ignored
    temp_dir = out.path();
    CHECK(io::detail::final_name_of(temp_dir) == final_dir);
    CHECK(io::detail::final_name_of(temp_dir + "/a/b.bin") == final_dir + "/a/b.bin");
    // A name that only starts with the temporary's text is another file.
    CHECK(io::detail::final_name_of(temp_dir + "x/b.bin") == temp_dir + "x/b.bin");
    CHECK(io::detail::final_name_of((dir / "other.bin").string()) == (dir / "other.bin").string());
    io::detail::TempFile f(temp_dir + "/config.json");
    CHECK(f.final_path() == temp_dir + "/config.json");  // where it is written
    CHECK(f.shown_path() == final_dir + "/config.json");
    f.commit(false);
    out.commit(false);
  }
  CHECK(fs::is_regular_file(fs::path(final_dir) / "config.json"));
  CHECK(io::detail::final_name_of(temp_dir + "/config.json") == temp_dir + "/config.json");

  // Outside any output directory a file is shown as itself.
  io::detail::TempFile plain((dir / "plain.bin").string());
  CHECK(plain.shown_path() == (dir / "plain.bin").string());
}

}  // namespace test_checkpoint_output_directory_errors_ns
