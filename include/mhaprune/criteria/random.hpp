// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <random>
#include <string_view>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/evidence.hpp"

namespace mhaprune {

/// Uniform random scores in [0, 1), as a baseline for benchmarks.
///
/// Deterministic: a head's score depends only on (seed, block name, ORIGINAL head id), not on the call
/// order, the other blocks, the platform or earlier removals; a std::mt19937_64 seeded from those three
/// (FNV-1a of the name, SplitMix64 mixing) draws it, and the draw is turned into a double with 53
/// random bits (not std::uniform_real_distribution, whose output differs between standard libraries).
///
/// Also the simplest complete criterion: use me as the template for your own (see concept.hpp).
class Random {
 public:
  explicit Random(std::uint64_t seed = 0) noexcept : seed_(seed) {}

  static constexpr const char* name() noexcept { return "random"; }
  std::uint64_t seed() const noexcept { return seed_; }

  /// One score per current query head; reads no weights and no evidence. Never throws.
  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& = Evidence{}) const {
    const std::uint64_t base = mix(seed_ ^ mix(fnv1a(block.name())));
    Eigen::VectorXd s(block.layout().heads());
    for (Index h = 0; h < s.size(); ++h) {
      const auto id = static_cast<std::uint64_t>(block.head_ids()[static_cast<std::size_t>(h)]);
      std::mt19937_64 engine(mix(base + id));
      s(h) = static_cast<double>(engine() >> 11) * 0x1.0p-53;
    }
    return s;
  }

 private:
  static std::uint64_t fnv1a(std::string_view text) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : text) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
    return h;
  }
  static std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }

  std::uint64_t seed_;
};

}  // namespace mhaprune
