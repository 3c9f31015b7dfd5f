// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace tiny_lm {

/// Sequences of equal length, stacked: token i of sequence s is row `s * length + i` of every
/// activation matrix. A target of -1 marks a position that is not predicted.
struct TokenBatch {
  Eigen::Index sequences = 0;
  Eigen::Index length = 0;
  std::vector<int> inputs;   // [sequences * length] token ids
  std::vector<int> targets;  // [sequences * length] token to predict at that position, or -1
};

/// Sequences [first, first + count) of a batch.
inline TokenBatch slice(const TokenBatch& batch, Eigen::Index first, Eigen::Index count) {
  TokenBatch out;
  out.sequences = count;
  out.length = batch.length;
  const auto begin = static_cast<std::ptrdiff_t>(first * batch.length);
  const auto end = static_cast<std::ptrdiff_t>((first + count) * batch.length);
  out.inputs.assign(batch.inputs.begin() + begin, batch.inputs.begin() + end);
  out.targets.assign(batch.targets.begin() + begin, batch.targets.begin() + end);
  return out;
}

/// Calls `f(slice)` on consecutive slices of at most `size` sequences: small activation matrices stay
/// in cache, and the whole text never needs to be in memory at once.
template <typename F>
void for_each_slice(const TokenBatch& batch, F&& f, Eigen::Index size = 8) {
  for (Eigen::Index first = 0; first < batch.sequences; first += size)
    f(slice(batch, first, std::min(size, batch.sequences - first)));
}

/// The bundled text files: raw bytes cut every 128 bytes (see tests/data/README.md). Token = byte.
inline std::vector<std::string> read_sequences(const std::string& path, std::size_t length = 128) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty() || bytes.size() % length != 0) {
    throw std::runtime_error(path + ": expected a multiple of " + std::to_string(length) + " bytes, got " +
                             std::to_string(bytes.size()));
  }
  std::vector<std::string> out;
  for (std::size_t at = 0; at < bytes.size(); at += length) out.push_back(bytes.substr(at, length));
  return out;
}

inline int byte_token(char c) { return static_cast<int>(static_cast<unsigned char>(c)); }

}  // namespace tiny_lm
