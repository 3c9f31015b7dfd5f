// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// A probe, not a benchmark of the suite (the CMake glob builds bench_*.cpp only): copies a file
// into a new one the way the writers copy untouched tensors, in 48 MiB pieces, either by range
// (TempFile::append_range: copy_file_range) or by write(2) from the file's map (what they did
// before), with or without the early writeback (sync_file_range every 32 MiB), then fsyncs and
// renames. Prints the copy time and the fsync time. See README.md, "prune against cp + sync".
//
//     g++ -std=c++17 -O2 -Iinclude tests/bench/writeback_probe.cpp -o /tmp/writeback_probe
//     /tmp/writeback_probe IN OUT 1 range      # 1/0: early writeback on/off; range | map

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/mapped_file.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s IN OUT EARLY(0|1) range|map\n", argv[0]);
    return 2;
  }
  const bool early = std::atoi(argv[3]) != 0;
  const std::string how = argv[4];
  const auto t0 = std::chrono::steady_clock::now();
  const mhaprune::io::MappedFile in(argv[1]);
  mhaprune::io::detail::TempFile out(argv[2]);
  out.start_writeback_early(early);
  const std::uint64_t piece = std::uint64_t{48} << 20;
  for (std::uint64_t at = 0; at < in.size(); at += piece) {
    const std::uint64_t n = std::min<std::uint64_t>(piece, in.size() - at);
    if (how == "range") {
      out.append_range(in.fd(), at, n, in.path());
    } else {
      out.append(in.data() + at, static_cast<std::size_t>(n));
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  out.commit(true);
  const auto t2 = std::chrono::steady_clock::now();
  const auto s = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::printf("%s early=%d: copy %.2f s, fsync+rename %.2f s, total %.2f s\n", how.c_str(), early ? 1 : 0,
              s(t1 - t0), s(t2 - t1), s(t2 - t0));
  return 0;
}
