// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// ggml (de)quantization against fixtures written by tests/data/ggml_blocks/make_ggml_blocks.py, an
// independent numpy implementation of ggml's block layouts and reference arithmetic. Every float
// must match bit for bit; the only allowance is NaN == NaN for NaNs made by arithmetic (an f16
// infinity scale times a zero quant), whose payload is the FPU's default NaN, not part of ggml's
// definition. The F16/BF16/F32 fixtures are compared bit for bit, NaNs included.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "mhaprune/io/ggml_quants.hpp"

namespace test_ggml_quants {

using mhaprune::io::can_dequantize;
using mhaprune::io::can_quantize;
using mhaprune::io::dequantize_row;
using mhaprune::io::ggml_traits;
using mhaprune::io::GgmlType;
using mhaprune::io::quantize_row;

namespace {

const std::string fixture_dir = MHAPRUNE_TEST_SOURCE_DIR "/data/ggml_blocks/";

std::vector<std::byte> load(const std::string& name) {
  std::ifstream in(fixture_dir + name, std::ios::binary);
  REQUIRE(in.good());
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

std::vector<float> load_floats(const std::string& name) {
  const std::vector<std::byte> bytes = load(name);
  REQUIRE(bytes.size() % 4 == 0);
  std::vector<float> out(bytes.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = 0;
    for (int k = 0; k < 4; ++k) u |= static_cast<std::uint32_t>(bytes[4 * i + k]) << (8 * k);
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

/// Number of elements of `got` that differ from `want` (bitwise; with `nan_equal`, any two NaNs
/// count as equal). The first few differences are reported through INFO-free UNSCOPED_INFO.
std::size_t mismatches(const std::vector<float>& want, const std::vector<float>& got, bool nan_equal) {
  REQUIRE(want.size() == got.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (bits(want[i]) == bits(got[i])) continue;
    if (nan_equal && std::isnan(want[i]) && std::isnan(got[i])) continue;
    if (bad++ < 4) UNSCOPED_INFO("element " << i << ": want " << want[i] << " got " << got[i]);
  }
  return bad;
}

struct Case {
  const char* name;
  GgmlType type;
};

}  // namespace

TEST_CASE("dequantize_row decodes every fixture block bit for bit", "[io][ggml]") {
  const Case cases[] = {
      {"f32", GgmlType::F32},       {"f16", GgmlType::F16},       {"bf16", GgmlType::BF16},
      {"q4_0", GgmlType::Q4_0},     {"q4_1", GgmlType::Q4_1},     {"q5_0", GgmlType::Q5_0},
      {"q5_1", GgmlType::Q5_1},     {"q8_0", GgmlType::Q8_0},     {"q8_1", GgmlType::Q8_1},
      {"q2_K", GgmlType::Q2_K},     {"q3_K", GgmlType::Q3_K},     {"q4_K", GgmlType::Q4_K},
      {"q5_K", GgmlType::Q5_K},     {"q6_K", GgmlType::Q6_K},     {"q8_K", GgmlType::Q8_K},
      {"iq4_nl", GgmlType::IQ4_NL}, {"iq4_xs", GgmlType::IQ4_XS}, {"mxfp4", GgmlType::MXFP4},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const auto& traits = ggml_traits(c.type);
      const std::vector<std::byte> blocks = load(std::string(c.name) + ".blocks");
      const std::vector<float> want = load_floats(std::string(c.name) + ".f32");
      REQUIRE(blocks.size() % traits.type_size == 0);
      const std::size_t n_blocks = blocks.size() / traits.type_size;
      REQUIRE(n_blocks >= 5);
      REQUIRE(want.size() == n_blocks * traits.block_size);
      CHECK(can_dequantize(c.type));

      // Whole buffer at once.
      std::vector<float> got(want.size(), -1.0f);
      dequantize_row(c.type, blocks.data(), got.data(), static_cast<std::int64_t>(got.size()));
      const bool plain = !mhaprune::io::is_block_type(c.type);
      CHECK(mismatches(want, got, !plain) == 0);

      // Block by block from an odd address (GGUF data is not aligned for the decoder's sake).
      std::vector<std::byte> shifted(blocks.size() + 1);
      std::memcpy(shifted.data() + 1, blocks.data(), blocks.size());
      std::vector<float> one(want.size(), -1.0f);
      for (std::size_t b = 0; b < n_blocks; ++b)
        dequantize_row(c.type, shifted.data() + 1 + b * traits.type_size, one.data() + b * traits.block_size,
                       traits.block_size);
      CHECK(mismatches(want, one, !plain) == 0);
    }
  }
}

TEST_CASE("the fixtures exercise what they are meant to", "[io][ggml]") {
  // Guards against a generator change silently dropping the edge cases.
  const std::vector<float> q8 = load_floats("q8_0.f32");
  // Block 0 has d = +0, block 1 d = -0: all zeros of either sign.
  for (int j = 0; j < 64; ++j) CHECK(q8[static_cast<std::size_t>(j)] == 0.0f);
  // Block 7 has d = inf: NaN where the quant is 0, infinities elsewhere.
  bool saw_inf = false;
  for (int j = 0; j < 32; ++j) saw_inf |= std::isinf(q8[static_cast<std::size_t>(7 * 32 + j)]);
  CHECK(saw_inf);
  const std::vector<float> f16 = load_floats("f16.f32");
  std::size_t nan_count = 0;
  for (float v : f16) nan_count += std::isnan(v) ? 1 : 0;
  CHECK(nan_count > 20);
  // Q6_K block 0 uses scale -128; block 2 has every scale -128, so a nonzero d makes every value
  // a multiple of 128*d with both signs present.
  const std::vector<float> q6 = load_floats("q6_K.f32");
  bool neg = false;
  bool pos = false;
  for (int j = 0; j < 256; ++j) {
    neg |= q6[static_cast<std::size_t>(512 + j)] < 0;
    pos |= q6[static_cast<std::size_t>(512 + j)] > 0;
  }
  CHECK((neg && pos));
}

TEST_CASE("quantize_row encodes every fixture row byte for byte", "[io][ggml]") {
  const Case cases[] = {
      {"f16", GgmlType::F16},   {"bf16", GgmlType::BF16}, {"q4_0", GgmlType::Q4_0}, {"q4_1", GgmlType::Q4_1},
      {"q5_0", GgmlType::Q5_0}, {"q5_1", GgmlType::Q5_1}, {"q8_0", GgmlType::Q8_0}, {"q8_1", GgmlType::Q8_1},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const auto& traits = ggml_traits(c.type);
      const std::vector<float> in = load_floats(std::string("quant_") + c.name + ".f32");
      const std::vector<std::byte> want = load(std::string("quant_") + c.name + ".bin");
      REQUIRE(in.size() % traits.block_size == 0);
      REQUIRE(want.size() == in.size() / traits.block_size * traits.type_size);
      CHECK(can_quantize(c.type));
      std::vector<std::byte> got(want.size(), std::byte{0xAB});
      quantize_row(c.type, in.data(), got.data(), static_cast<std::int64_t>(in.size()));
      std::size_t bad = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        if (want[i] == got[i]) continue;
        if (bad++ < 4)
          UNSCOPED_INFO("byte " << i << " (block " << i / traits.type_size << "): want "
                                << static_cast<int>(want[i]) << " got " << static_cast<int>(got[i]));
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("F32 passes through unchanged, bits and all", "[io][ggml]") {
  const std::vector<float> in = load_floats("f32.f32");
  std::vector<std::byte> bytes(in.size() * 4);
  quantize_row(GgmlType::F32, in.data(), bytes.data(), static_cast<std::int64_t>(in.size()));
  CHECK(bytes == load("f32.blocks"));
}

TEST_CASE("round trips stay within the format's error bound", "[io][ggml]") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(32 * 64);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = normal(rng) * std::pow(10.0f, static_cast<float>(i / 32 % 9) - 4.0f);

  SECTION("Q8_0: |x - x'| <= d/2 plus the f16 rounding of d, per block") {
    std::vector<std::byte> q(x.size() / 32 * 34);
    std::vector<float> y(x.size());
    quantize_row(GgmlType::Q8_0, x.data(), q.data(), static_cast<std::int64_t>(x.size()));
    dequantize_row(GgmlType::Q8_0, q.data(), y.data(), static_cast<std::int64_t>(y.size()));
    for (std::size_t b = 0; b < x.size() / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      const float d = amax / 127.0f;
      // q*d16 - x = (q*d - x) + q*(d16 - d): |.| <= d/2 + 127 * |d16 - d|, and f16 rounds d to
      // within 2^-11 relative (normal) or 2^-25 absolute (subnormal halves, d < 2^-14).
      const float bound = (d / 2 + 127.0f * std::max(d * 0x1p-11f, 0x1p-25f)) * 1.0001f;
      for (int j = 0; j < 32; ++j) CHECK(std::fabs(x[b * 32 + j] - y[b * 32 + j]) <= bound);
    }
  }
  SECTION("F16 and BF16: relative error at most half an ulp of the format") {
    for (const auto& [type, half_ulp] :
         {std::pair{GgmlType::F16, 0x1p-11f}, std::pair{GgmlType::BF16, 0x1p-8f}}) {
      std::vector<std::byte> q(x.size() * 2);
      std::vector<float> y(x.size());
      quantize_row(type, x.data(), q.data(), static_cast<std::int64_t>(x.size()));
      dequantize_row(type, q.data(), y.data(), static_cast<std::int64_t>(y.size()));
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (type == GgmlType::F16 && std::fabs(x[i]) < 0x1p-14f) {
          CHECK(std::fabs(x[i] - y[i]) <= 0x1p-25f);  // subnormal halves: absolute half ulp 2^-25
        } else {
          CHECK(std::fabs(x[i] - y[i]) <= std::fabs(x[i]) * half_ulp);
        }
      }
    }
  }
  SECTION("every finite F16 value survives F16 -> F32 -> F16 unchanged") {
    std::vector<std::byte> h(2 * 0x7C00 * 2);
    for (std::uint32_t v = 0; v < 0x7C00; ++v)
      for (std::uint32_t s = 0; s < 2; ++s) {
        const std::uint32_t half = v | (s << 15);
        const std::size_t k = 2 * (2 * v + s);
        h[k] = static_cast<std::byte>(half & 0xFF);
        h[k + 1] = static_cast<std::byte>(half >> 8);
      }
    std::vector<float> f(h.size() / 2);
    std::vector<std::byte> back(h.size());
    dequantize_row(GgmlType::F16, h.data(), f.data(), static_cast<std::int64_t>(f.size()));
    quantize_row(GgmlType::F16, f.data(), back.data(), static_cast<std::int64_t>(f.size()));
    CHECK(back == h);
  }
}

TEST_CASE("which types are supported", "[io][ggml]") {
  for (GgmlType t :
       {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
        GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL})
    CHECK(can_dequantize(t));
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) CHECK(can_quantize(t));
  for (GgmlType t : {GgmlType::IQ2_XXS, GgmlType::IQ1_S, GgmlType::TQ1_0, GgmlType::I8, GgmlType::F64,
                     GgmlType::NVFP4, GgmlType::Q1_0})
    CHECK_FALSE(can_dequantize(t));
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::I32})
    CHECK_FALSE(can_quantize(t));
}

TEST_CASE("errors name the type and the check", "[io][ggml]") {
  std::vector<std::byte> src(1024);
  std::vector<float> dst(1024);
  using Catch::Contains;
  CHECK_THROWS_AS(dequantize_row(GgmlType::IQ2_XXS, src.data(), dst.data(), 256),
                  mhaprune::unsupported_dtype_error);
  CHECK_THROWS_WITH(dequantize_row(GgmlType::IQ2_XXS, src.data(), dst.data(), 256),
                    Contains("cannot decode ggml type iq2_xxs (id 16)"));
  CHECK_THROWS_AS(quantize_row(GgmlType::Q4_K, dst.data(), src.data(), 256),
                  mhaprune::unsupported_dtype_error);
  CHECK_THROWS_WITH(quantize_row(GgmlType::Q4_K, dst.data(), src.data(), 256),
                    Contains("cannot encode ggml type q4_K (id 12)"));
  CHECK_THROWS_AS(dequantize_row(static_cast<GgmlType>(4), src.data(), dst.data(), 32),
                  mhaprune::unsupported_dtype_error);
  CHECK_THROWS_WITH(dequantize_row(static_cast<GgmlType>(4), src.data(), dst.data(), 32),
                    Contains("type id 4:"));
  CHECK_THROWS_WITH(
      dequantize_row(GgmlType::Q4_K, src.data(), dst.data(), 100),
      Contains("100 elements of ggml type q4_K (id 12) are not a whole number of 256-element blocks"));
  CHECK_THROWS_WITH(
      quantize_row(GgmlType::Q8_0, dst.data(), src.data(), 33),
      Contains("33 elements of ggml type q8_0 (id 8) are not a whole number of 32-element blocks"));
  CHECK_THROWS_AS(dequantize_row(GgmlType::F16, src.data(), dst.data(), -2), mhaprune::error);
  // The size errors are not unsupported_dtype_error: the type is fine, the count is not.
  try {
    dequantize_row(GgmlType::Q8_0, src.data(), dst.data(), 31);
    FAIL("no throw");
  } catch (const mhaprune::unsupported_dtype_error&) {
    FAIL("wrong exception type");
  } catch (const mhaprune::error&) {
  }
  // n = 0 is a valid empty row and touches nothing.
  dst[0] = 42.0f;
  dequantize_row(GgmlType::Q6_K, nullptr, dst.data(), 0);
  CHECK(dst[0] == 42.0f);
}

}  // namespace test_ggml_quants
