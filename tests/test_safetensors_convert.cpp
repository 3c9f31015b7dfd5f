// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// F16/BF16 conversions: exact widening, round-to-nearest-even narrowing (ties, subnormals,
// overflow), NaN and infinity handling, and the dtype table.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "mhaprune/io/convert.hpp"
#include "mhaprune/io/dtype.hpp"

namespace test_safetensors_convert {

using namespace mhaprune::io;

namespace {

float from_u32(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

std::uint32_t to_u32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

/// Round-to-nearest-even of `x` onto the sorted finite grid `grid`, computed in double: a
/// reference that shares no code with the bit tricks under test.
double nearest_even(double x, const std::vector<double>& grid, const std::vector<std::uint16_t>& bits,
                    std::uint16_t& out_bits) {
  auto hi = std::lower_bound(grid.begin(), grid.end(), x);
  if (hi == grid.begin()) {
    out_bits = bits.front();
    return grid.front();
  }
  if (hi == grid.end()) {
    out_bits = bits.back();
    return grid.back();
  }
  auto lo = hi - 1;
  const double dl = x - *lo, dh = *hi - x;
  std::size_t pick;
  if (dl < dh) {
    pick = static_cast<std::size_t>(lo - grid.begin());
  } else if (dh < dl) {
    pick = static_cast<std::size_t>(hi - grid.begin());
  } else {
    const auto l = static_cast<std::size_t>(lo - grid.begin());
    pick = (bits[l] & 1u) == 0 ? l : l + 1;
  }
  out_bits = bits[pick];
  return grid[pick];
}

}  // namespace

TEST_CASE("dtype table: names, sizes, convertibility, lookup", "[io][dtype]") {
  CHECK(to_string(Dtype::BF16) == "BF16");
  CHECK(dtype_bits(Dtype::F64) == 64);
  CHECK(dtype_bits(Dtype::F16) == 16);
  CHECK(dtype_bits(Dtype::BOOL) == 8);
  CHECK(dtype_bits(Dtype::F4) == 4);
  CHECK(dtype_bits(Dtype::C64) == 64);
  CHECK(is_convertible(Dtype::F32));
  CHECK(is_convertible(Dtype::BF16));
  CHECK_FALSE(is_convertible(Dtype::I64));
  CHECK_FALSE(is_convertible(Dtype::F8_E4M3));
  for (const auto& t : detail::dtype_table) CHECK(dtype_from_string(t.name) == t.dtype);
  CHECK_FALSE(dtype_from_string("Q4").has_value());
  CHECK_FALSE(dtype_from_string("f32").has_value());
  CHECK(dtype_of_v<float> == Dtype::F32);
  CHECK(dtype_of_v<double> == Dtype::F64);
  CHECK(dtype_of_v<Eigen::half> == Dtype::F16);
  CHECK(dtype_of_v<Eigen::bfloat16> == Dtype::BF16);
  // The writer's file order relies on the reference implementation's enum order.
  CHECK(Dtype::U64 > Dtype::I64);
  CHECK(Dtype::F64 > Dtype::C64);
  CHECK(Dtype::BF16 > Dtype::F16);
  CHECK(Dtype::U8 > Dtype::F6_E3M2);
}

TEST_CASE("bf16 and f16: every bit pattern widens exactly and narrows back to itself", "[io][convert]") {
  int nan_count = 0;
  for (std::uint32_t b = 0; b <= 0xFFFFu; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float bf = bf16_bits_to_float(bits);
    CHECK(to_u32(bf) == b << 16);  // bf16 is the top half of a float
    const float hf = f16_bits_to_float(bits);
    if (std::isnan(bf)) {
      ++nan_count;
      REQUIRE(float_to_bf16_bits(bf) == 0x7FC0u);
    } else {
      REQUIRE(float_to_bf16_bits(bf) == bits);
    }
    if (std::isnan(hf)) {
      REQUIRE((float_to_f16_bits(hf) & 0x7FFFu) == 0x7E00u);
      REQUIRE((float_to_f16_bits(hf) & 0x8000u) == (bits & 0x8000u));
    } else {
      REQUIRE(float_to_f16_bits(hf) == bits);
      // Widening agrees with Eigen's (independent) conversion.
      REQUIRE(static_cast<float>(Eigen::half(Eigen::half_impl::raw_uint16_to_half(bits))) == hf);
    }
  }
  CHECK(nan_count == 2 * 127);
}

TEST_CASE("f16 widening of landmark values", "[io][convert]") {
  CHECK(f16_bits_to_float(0x3C00) == 1.0f);
  CHECK(f16_bits_to_float(0xC000) == -2.0f);
  CHECK(f16_bits_to_float(0x7BFF) == 65504.0f);
  CHECK(f16_bits_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(f16_bits_to_float(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(f16_bits_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  CHECK(std::isinf(f16_bits_to_float(0x7C00)));
  CHECK(f16_bits_to_float(0xFC00) < 0);
  CHECK(std::signbit(f16_bits_to_float(0x8000)));
  CHECK(std::isnan(f16_bits_to_float(0x7E00)));
}

TEST_CASE("float to bf16 rounds to nearest, ties to even, like PyTorch", "[io][convert]") {
  // 1 + 2^-8 lies halfway between bf16 1.0 (even mantissa) and 1 + 2^-7 (odd): goes to 1.0.
  CHECK(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)) == 0x3F80u);
  // 1 + 3*2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): goes up.
  CHECK(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82u);
  // Just above a tie goes up, just below goes down.
  CHECK(float_to_bf16_bits(from_u32(0x3F808001u)) == 0x3F81u);
  CHECK(float_to_bf16_bits(from_u32(0x3F807FFFu)) == 0x3F80u);
  CHECK(float_to_bf16_bits(-1.0f - std::ldexp(1.0f, -8)) == 0xBF80u);
  // Overflow to infinity, infinities and signed zero kept.
  CHECK(float_to_bf16_bits(std::numeric_limits<float>::max()) == 0x7F80u);
  CHECK(float_to_bf16_bits(from_u32(0x7F7F7FFFu)) == 0x7F7Fu);  // just below the tie: largest finite
  CHECK(float_to_bf16_bits(std::numeric_limits<float>::infinity()) == 0x7F80u);
  CHECK(float_to_bf16_bits(-std::numeric_limits<float>::infinity()) == 0xFF80u);
  CHECK(float_to_bf16_bits(-0.0f) == 0x8000u);
  // Subnormal floats round like any other.
  CHECK(float_to_bf16_bits(from_u32(0x00008000u)) == 0x0000u);  // tie, even below
  CHECK(float_to_bf16_bits(from_u32(0x00018000u)) == 0x0002u);  // tie, even above
  // Every NaN, signalling or negative, becomes PyTorch's 0x7FC0.
  CHECK(float_to_bf16_bits(std::numeric_limits<float>::quiet_NaN()) == 0x7FC0u);
  CHECK(float_to_bf16_bits(from_u32(0x7F800001u)) == 0x7FC0u);  // would truncate to infinity
  CHECK(float_to_bf16_bits(from_u32(0xFFC00000u)) == 0x7FC0u);
}

TEST_CASE("float to bf16 and f16 agree with a nearest-even reference on many floats", "[io][convert]") {
  // The finite grids, ascending, with their bit patterns.
  auto grid_of = [](auto widen, std::uint16_t max_positive) {
    std::vector<std::pair<double, std::uint16_t>> points;
    for (std::uint32_t b = 0; b <= max_positive; ++b) {
      const auto p = static_cast<std::uint16_t>(b);
      const auto n = static_cast<std::uint16_t>(b | 0x8000u);
      points.emplace_back(widen(p), p);
      if (b != 0) points.emplace_back(widen(n), n);
    }
    std::sort(points.begin(), points.end());
    std::vector<double> values;
    std::vector<std::uint16_t> bits;
    for (const auto& [v, b] : points) {
      values.push_back(v);
      bits.push_back(b);
    }
    return std::make_pair(values, bits);
  };
  const auto [bf_grid, bf_bits] = grid_of(bf16_bits_to_float, 0x7F7F);
  const auto [hf_grid, hf_bits] = grid_of(f16_bits_to_float, 0x7BFF);

  // Every float whose low 13 bits are one of a few patterns (ties, near-ties, exact), over the
  // whole exponent range: about 2.6 million floats.
  std::uint64_t checked = 0;
  for (std::uint32_t high = 0; high < (1u << 19); ++high) {
    for (std::uint32_t low : {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu}) {
      const float f = from_u32((high << 13) | low);
      if (!std::isfinite(f)) continue;
      std::uint16_t expected = 0;
      // bf16: beyond the largest finite, ties and above go to infinity.
      const double bf_max = bf_grid.back(), bf_limit = bf_max + std::ldexp(1.0, 127 - 8);
      if (std::fabs(f) >= bf_limit) {
        expected = std::signbit(f) ? 0xFF80u : 0x7F80u;
      } else {
        nearest_even(f, bf_grid, bf_bits, expected);
        if (expected == 0x0000u || expected == 0x8000u) expected = std::signbit(f) ? 0x8000u : 0x0000u;
      }
      REQUIRE(float_to_bf16_bits(f) == expected);
      const double hf_limit = 65520.0;
      if (std::fabs(f) >= hf_limit) {
        expected = std::signbit(f) ? 0xFC00u : 0x7C00u;
      } else {
        nearest_even(f, hf_grid, hf_bits, expected);
        if (expected == 0x0000u || expected == 0x8000u) expected = std::signbit(f) ? 0x8000u : 0x0000u;
      }
      REQUIRE(float_to_f16_bits(f) == expected);
      ++checked;
    }
  }
  CHECK(checked > 2'000'000);
}

TEST_CASE("float to f16 rounds to nearest even, overflows to infinity, keeps NaN a NaN", "[io][convert]") {
  CHECK(float_to_f16_bits(1.0f) == 0x3C00u);
  CHECK(float_to_f16_bits(1.0f + std::ldexp(1.0f, -11)) == 0x3C00u);      // tie, even below
  CHECK(float_to_f16_bits(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02u);  // tie, even above
  CHECK(float_to_f16_bits(65504.0f) == 0x7BFFu);
  CHECK(float_to_f16_bits(65519.996f) == 0x7BFFu);
  CHECK(float_to_f16_bits(65520.0f) == 0x7C00u);  // the tie with 2^16 goes to infinity
  CHECK(float_to_f16_bits(-1e10f) == 0xFC00u);
  CHECK(float_to_f16_bits(std::ldexp(1.0f, -24)) == 0x0001u);
  CHECK(float_to_f16_bits(std::ldexp(1.0f, -25)) == 0x0000u);            // tie with 0: even
  CHECK(float_to_f16_bits(std::ldexp(3.0f, -25)) == 0x0002u);            // tie 1.5 ulp: even above
  CHECK(float_to_f16_bits(std::ldexp(1.0f, -25) * 1.0001f) == 0x0001u);  // past the tie
  CHECK(float_to_f16_bits(-std::ldexp(1.0f, -30)) == 0x8000u);
  CHECK(float_to_f16_bits(std::numeric_limits<float>::infinity()) == 0x7C00u);
  CHECK(float_to_f16_bits(std::numeric_limits<float>::quiet_NaN()) == 0x7E00u);
  CHECK(float_to_f16_bits(from_u32(0xFF800001u)) == 0xFE00u);
}

TEST_CASE("decode and encode convert between every pair of float dtypes", "[io][convert]") {
  const std::vector<double> values{
      0.0, -0.0, 1.0, -2.5, 0.1, 3.14159265358979, 1e-6, 60000.0, std::numeric_limits<double>::infinity()};
  for (Dtype dtype : {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16}) {
    std::vector<std::byte> stored(values.size() * dtype_bits(dtype) / 8);
    encode(values.data(), values.size(), dtype, stored.data());
    std::vector<double> back(values.size());
    decode(dtype, stored.data(), values.size(), back.data());
    std::vector<float> back_f(values.size());
    decode(dtype, stored.data(), values.size(), back_f.data());
    for (std::size_t i = 0; i < values.size(); ++i) {
      // What the value becomes when rounded once to the dtype (via float for the 16-bit ones).
      double expected = values[i];
      if (dtype == Dtype::F32) expected = static_cast<float>(values[i]);
      if (dtype == Dtype::F16) expected = f16_bits_to_float(float_to_f16_bits(static_cast<float>(values[i])));
      if (dtype == Dtype::BF16)
        expected = bf16_bits_to_float(float_to_bf16_bits(static_cast<float>(values[i])));
      CHECK(back[i] == expected);
      CHECK(std::signbit(back[i]) == std::signbit(values[i]));
      CHECK(back_f[i] == static_cast<float>(expected));
    }
  }
  // Half and bfloat16 as the Eigen element type.
  std::vector<Eigen::bfloat16> b(3);
  const float src[3] = {1.0f, 1.0f + std::ldexp(1.0f, -8), -3.0f};
  std::vector<std::byte> f32(12);
  encode(src, 3, Dtype::F32, f32.data());
  decode(Dtype::F32, f32.data(), 3, b.data());
  CHECK(static_cast<float>(b[1]) == 1.0f);  // rounded to even
  std::vector<Eigen::half> h(3);
  decode(Dtype::BF16, reinterpret_cast<const std::byte*>(b.data()), 3, h.data());
  CHECK(static_cast<float>(h[2]) == -3.0f);
}

TEST_CASE("decode and encode refuse dtypes that are not floating point", "[io][convert]") {
  std::vector<std::byte> bytes(16);
  float out[2];
  CHECK_THROWS_AS(decode(Dtype::I64, bytes.data(), 2, out, "ctx"), mhaprune::unsupported_dtype_error);
  CHECK_THROWS_WITH(decode(Dtype::U8, bytes.data(), 2, out, "file: tensor \"x\""),
                    Catch::Contains("file: tensor \"x\"") && Catch::Contains("U8"));
  CHECK_THROWS_AS(encode(out, 2, Dtype::F8_E4M3, bytes.data()), mhaprune::unsupported_dtype_error);
  CHECK_THROWS_AS(encode(out, 2, Dtype::I32, bytes.data()), mhaprune::io_error);
}

}  // namespace test_safetensors_convert
