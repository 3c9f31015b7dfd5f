// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Helpers shared by the tests/test_safetensors_*.cpp files: a scratch directory, raw file bytes
// built by hand (to make broken files the writer would never produce), and exception capture.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "mhaprune/io/safetensors.hpp"
#include "support/message_of.hpp"

namespace mhaprune_test {

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/mhaprune-io-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  /// Names of the entries in the directory, sorted (hidden temporary files included).
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

using Bytes = std::vector<std::byte>;

inline Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

inline void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void append_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}

/// 8-byte little-endian `header_length`, then `header`, then `data_size` bytes 0, 1, 2, ...
inline Bytes raw_file(std::uint64_t header_length, const std::string& header, std::size_t data_size) {
  Bytes out;
  append_u64(out, header_length);
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  for (std::size_t i = 0; i < data_size; ++i) out.push_back(static_cast<std::byte>(i & 0xFF));
  return out;
}

/// A file whose header is exactly `header` (length taken from it) followed by `data_size` bytes.
inline Bytes raw_file(const std::string& header, std::size_t data_size) {
  return raw_file(header.size(), header, data_size);
}

inline mhaprune::io::ByteSpan span(const Bytes& b) { return mhaprune::io::ByteSpan(b.data(), b.size()); }

}  // namespace mhaprune_test
