// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Copying byte ranges of a mapped input into a file being written (ByteSink::append_file_range /
// append_mapped, TempFile::append_range): the output holds exactly the input's bytes whether the
// kernel copies them (copy_file_range) or the pread/write fallback does, ranges interleave with
// buffered appends in order, and a range the input does not have (also because the file was
// truncated after it was mapped) throws io_error naming it.

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_sink.hpp"
#include "mhaprune/io/detail/copy_range.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/mapped_file.hpp"
#include "mhaprune/io/safetensors_reader.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "support/message_of.hpp"

namespace test_io_copy_range_ns {

namespace fs = std::filesystem;
namespace io = mhaprune::io;

/// A fresh, empty directory of this test's own under `root`.
fs::path scratch(const std::string& name, const fs::path& root = fs::temp_directory_path()) {
  const fs::path dir = root / ("mhaprune-copy-range-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// `size` bytes that differ from one offset to the next (a wrong offset shows).
std::vector<std::byte> pattern(std::size_t size) {
  std::vector<std::byte> out(size);
  std::uint32_t x = 2463534242u;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x & 0xFFu);
  }
  return out;
}

void write_bytes(const fs::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::byte> out(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) out[i] = static_cast<std::byte>(chars[i]);
  return out;
}

/// Sets the process-wide copy mode for a scope.
struct ModeGuard {
  explicit ModeGuard(io::detail::CopyRangeMode mode) { io::detail::copy_range_mode() = mode; }
  ~ModeGuard() { io::detail::copy_range_mode() = io::detail::CopyRangeMode::automatic; }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;
};

/// One piece of the output: a range of the input, or bytes appended from memory.
struct Piece {
  std::uint64_t offset = 0, size = 0;
  std::vector<std::byte> literal;  // used when size == 0
};

/// Writes `pieces` as one U8 tensor through ByteSink (a SafetensorsWriter's streamed tensor) and
/// returns the tensor's bytes as read back, with the bytes the pieces should make.
std::pair<std::vector<std::byte>, std::vector<std::byte>> through_sink(const io::MappedFile& in,
                                                                       const std::vector<Piece>& pieces,
                                                                       const fs::path& out_path) {
  std::vector<std::byte> expected;
  for (const Piece& p : pieces) {
    if (p.size == 0) {
      expected.insert(expected.end(), p.literal.begin(), p.literal.end());
    } else {
      expected.insert(expected.end(), in.data() + p.offset, in.data() + p.offset + p.size);
    }
  }
  io::SafetensorsWriter w;
  w.add_streamed("x", io::Dtype::U8, {expected.size()}, [&in, &pieces](io::ByteSink& sink) {
    for (const Piece& p : pieces) {
      if (p.size == 0) {
        sink.append(p.literal.data(), p.literal.size());
      } else {
        sink.append_file_range(in, p.offset, p.size);
      }
    }
  });
  w.write(out_path.string(), io::WriteOptions{false});
  const io::SafetensorsReader r(out_path.string());
  const io::ByteSpan got = r.bytes(r.info("x"));
  return {std::vector<std::byte>(got.data(), got.data() + got.size()), expected};
}

TEST_CASE("io copy_range: a whole file copied by range is the file, copied inside the kernel",
          "[io][copy_range]") {
  const fs::path dir = scratch("whole");
  const std::vector<std::byte> bytes = pattern((std::size_t{3} << 20) + 4097);
  write_bytes(dir / "in.bin", bytes);
  const io::MappedFile in((dir / "in.bin").string());
  REQUIRE(in.fd() >= 0);

  io::detail::TempFile out((dir / "out.bin").string());
  out.append_range(in.fd(), 0, bytes.size(), in.path());
  CHECK(out.written() == bytes.size());
  CHECK(out.copied_in_kernel() == bytes.size());  // same file system: copy_file_range works
  out.commit(false);
  CHECK(read_bytes(dir / "out.bin") == bytes);

  const auto [got, want] = through_sink(in, {Piece{0, bytes.size(), {}}}, dir / "sink.safetensors");
  CHECK(got == want);
  CHECK(got == bytes);
}

TEST_CASE("io copy_range: short ranges at odd offsets, small and large, interleaved with appends",
          "[io][copy_range]") {
  const fs::path dir = scratch("interleaved");
  const std::vector<std::byte> bytes = pattern(std::size_t{1} << 21);
  write_bytes(dir / "in.bin", bytes);
  const io::MappedFile in((dir / "in.bin").string());
  const std::vector<std::byte> five = pattern(5), odd = pattern(1000003);
  // Small ranges go through the buffer, large ones by copy_file_range: both in the order given.
  const std::vector<Piece> pieces = {Piece{0, 0, five},        Piece{12345, 70001, {}},
                                     Piece{3, 17, {}},         Piece{0, 0, five},
                                     Piece{1, 1, {}},          Piece{0, 0, odd},
                                     Piece{999999, 65536, {}}, Piece{bytes.size() - 7, 7, {}},
                                     Piece{7, 1048577, {}},    Piece{0, 0, five}};
  for (const auto mode : {io::detail::CopyRangeMode::automatic, io::detail::CopyRangeMode::read_write}) {
    const ModeGuard guard(mode);
    const auto [got, want] = through_sink(in, pieces, dir / "out.safetensors");
    REQUIRE(got.size() == want.size());
    CHECK(got == want);
  }
}

TEST_CASE("io copy_range: the pread/write fallback writes the same bytes and copies nothing in the kernel",
          "[io][copy_range]") {
  const fs::path dir = scratch("fallback");
  const std::vector<std::byte> bytes =
      pattern((std::size_t{5} << 20) / 2 + 333);  // 2.5 MiB: 3 fallback reads
  write_bytes(dir / "in.bin", bytes);
  const io::MappedFile in((dir / "in.bin").string());
  const ModeGuard guard(io::detail::CopyRangeMode::read_write);
  io::detail::TempFile out((dir / "out.bin").string());
  out.append(bytes.data(), 10);
  out.append_range(in.fd(), 10, bytes.size() - 10, in.path());
  CHECK(out.copied_in_kernel() == 0);
  CHECK(out.written() == bytes.size());
  out.commit(false);
  CHECK(read_bytes(dir / "out.bin") == bytes);
}

TEST_CASE("io copy_range: a source on another file system (tmpfs to the temp directory) still copies",
          "[io][copy_range]") {
  // Cross-file-system copy_file_range fails with EXDEV on most kernels: the fallback takes over.
  REQUIRE(fs::is_directory("/dev/shm"));
  const fs::path src_dir = scratch("other-fs", "/dev/shm"), dir = scratch("other-fs");
  const std::vector<std::byte> bytes = pattern((std::size_t{1} << 20) + 99);
  write_bytes(src_dir / "in.bin", bytes);
  {
    const io::MappedFile in((src_dir / "in.bin").string());
    io::detail::TempFile out((dir / "out.bin").string());
    out.append_range(in.fd(), 99, bytes.size() - 99, in.path());
    out.commit(false);
  }
  CHECK(read_bytes(dir / "out.bin") == std::vector<std::byte>(bytes.begin() + 99, bytes.end()));
  fs::remove_all(src_dir.parent_path());
}

TEST_CASE("io copy_range: a range past the end of the input throws io_error naming the input",
          "[io][copy_range]") {
  const fs::path dir = scratch("past-end");
  const std::vector<std::byte> bytes = pattern(std::size_t{1} << 17);
  write_bytes(dir / "in.bin", bytes);
  const io::MappedFile in((dir / "in.bin").string());
  const std::string in_path = in.path();

  // Checked against the map before anything is written: small and large ranges alike.
  for (const std::uint64_t size : {std::uint64_t{20}, std::uint64_t{1} << 17}) {
    io::SafetensorsWriter w;
    w.add_streamed("x", io::Dtype::U8, {size},
                   [&in, size](io::ByteSink& sink) { sink.append_file_range(in, in.size() - 10, size); });
    const std::string message = mhaprune_test::message_of<mhaprune::io_error>(
        [&] { w.write((dir / "out.safetensors").string(), io::WriteOptions{false}); });
    CHECK_THAT(message, Catch::Matchers::Contains(in_path) && Catch::Matchers::Contains("outside the file"));
    CHECK_FALSE(fs::exists(dir / "out.safetensors"));
  }

  // A span that is not in the map at all.
  const std::vector<std::byte> elsewhere = pattern(100);
  io::SafetensorsWriter w;
  w.add_streamed("x", io::Dtype::U8, {100},
                 [&in, &elsewhere](io::ByteSink& sink) { sink.append_mapped(in, io::ByteSpan(elsewhere)); });
  CHECK_THAT(mhaprune_test::message_of<mhaprune::io_error>(
                 [&] { w.write((dir / "out.safetensors").string(), io::WriteOptions{false}); }),
             Catch::Matchers::Contains(in_path) && Catch::Matchers::Contains("does not point into"));

  // Past the end at the descriptor level (as for a file truncated after it was mapped: only the
  // descriptor is read, never the map), by either path: the copy stops short and says so.
  for (const auto mode : {io::detail::CopyRangeMode::automatic, io::detail::CopyRangeMode::read_write}) {
    const ModeGuard guard(mode);
    io::detail::TempFile out((dir / "out.bin").string());
    const std::string message = mhaprune_test::message_of<mhaprune::io_error>(
        [&] { out.append_range(in.fd(), 1000, bytes.size(), in_path); });
    CHECK_THAT(message, Catch::Matchers::Contains(in_path) && Catch::Matchers::Contains("ends before byte"));
  }
  // Every failed write left nothing behind: only the input is in the directory.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"in.bin"});
}

TEST_CASE("io copy_range: an input truncated after it was mapped fails the copy naming it and the offsets",
          "[io][copy_range]") {
  // The map still has the old size, so the range passes ByteSink's check against it; the copy reads
  // the descriptor, which ends early. No page of the map is touched here: the lost pages would
  // raise SIGBUS (see MappedFile), and a range of at least ByteSink::kernel_copy_min bytes is never
  // copied from the map.
  const std::uint64_t old_size = std::uint64_t{1} << 20, new_size = 300001;
  const std::vector<std::byte> bytes = pattern(static_cast<std::size_t>(old_size));
  struct Range {
    std::uint64_t offset, size, copied_until;  // copied_until: where the copy finds the new end
  };
  // Starting before the new end (part is copied, then nothing), and starting after it.
  const Range ranges[] = {{100000, std::uint64_t{1} << 19, new_size}, {400000, 200000, 400000}};
  for (const auto mode : {io::detail::CopyRangeMode::automatic, io::detail::CopyRangeMode::read_write}) {
    for (const Range& range : ranges) {
      const bool kernel = mode == io::detail::CopyRangeMode::automatic;
      INFO((kernel ? "copy_file_range" : "pread/write")
           << ", bytes [" << range.offset << ", " << range.offset + range.size << ")");
      REQUIRE(range.size >= io::ByteSink::kernel_copy_min);
      const fs::path dir = scratch(std::string("truncated-") + (kernel ? "kernel-" : "fallback-") +
                                   std::to_string(range.offset));
      write_bytes(dir / "in.bin", bytes);
      const io::MappedFile in((dir / "in.bin").string());
      REQUIRE(in.size() == old_size);
      const ModeGuard guard(mode);
      {
        // The path under test is the one this mode takes: a range the file still has is copied in
        // the kernel, or not at all in it (the temporary is discarded, never committed).
        io::detail::TempFile probe((dir / "probe.bin").string());
        probe.append_range(in.fd(), 0, 70000, in.path());
        CHECK(probe.copied_in_kernel() == (kernel ? 70000u : 0u));
      }
      REQUIRE(::truncate((dir / "in.bin").c_str(), static_cast<off_t>(new_size)) == 0);

      io::SafetensorsWriter w;
      w.add_streamed("x", io::Dtype::U8, {range.size + 3}, [&in, &range](io::ByteSink& sink) {
        sink.append("abc", 3);  // buffered bytes before the range: flushed, then the copy fails
        sink.append_file_range(in, range.offset, range.size);
      });
      const std::string message = mhaprune_test::exact_message<mhaprune::io_error>(
          [&] { w.write((dir / "out.safetensors").string(), io::WriteOptions{false}); });
      const std::string end = std::to_string(range.offset + range.size);
      CHECK_THAT(message, Catch::Matchers::StartsWith(in.path() + ": the file ends before byte " + end));
      CHECK_THAT(message, Catch::Matchers::Contains("copying " + std::to_string(range.size) +
                                                    " bytes from offset " + std::to_string(range.offset)));
      CHECK_THAT(message,
                 Catch::Matchers::Contains("nothing after byte " + std::to_string(range.copied_until)));

      // Nothing under the final name, the temporary removed, the (truncated) input as it was left.
      CHECK_FALSE(fs::exists(dir / "out.safetensors"));
      std::vector<std::string> names;
      for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
      CHECK(names == std::vector<std::string>{"in.bin"});
      CHECK(read_bytes(dir / "in.bin") == std::vector<std::byte>(bytes.begin(), bytes.begin() + new_size));
    }
  }
}

TEST_CASE("io copy_range: a moved MappedFile keeps its descriptor; the moved-from one has none",
          "[io][copy_range]") {
  const fs::path dir = scratch("moved");
  const std::vector<std::byte> bytes = pattern(std::size_t{1} << 18);
  write_bytes(dir / "in.bin", bytes);
  io::MappedFile first((dir / "in.bin").string());
  const int fd = first.fd();
  io::MappedFile second(std::move(first));
  CHECK(first.fd() == -1);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(second.fd() == fd);
  io::MappedFile third;
  CHECK(third.fd() == -1);
  third = std::move(second);
  CHECK(third.fd() == fd);
  const auto [got, want] = through_sink(third, {Piece{0, bytes.size(), {}}}, dir / "out.safetensors");
  CHECK(got == bytes);
  CHECK(got == want);

  // A MappedFile that maps nothing copies nothing, and refuses a range it does not have.
  const io::MappedFile none;
  io::SafetensorsWriter w;
  w.add_streamed("x", io::Dtype::U8, {1}, [&none](io::ByteSink& sink) {
    sink.append_file_range(none, 0, 0);
    sink.append_file_range(none, 0, 1);
  });
  CHECK_THROWS_AS(w.write((dir / "none.safetensors").string(), io::WriteOptions{false}), mhaprune::io_error);
}

}  // namespace test_io_copy_range_ns
