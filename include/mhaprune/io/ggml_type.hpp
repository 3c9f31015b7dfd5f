// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mhaprune/error.hpp"

namespace mhaprune::io {

/// The tensor types of ggml (the `ggml_type` ids stored in GGUF tensor infos), spelt as ggml
/// spells them. Ids ggml removed (4, 5: Q4_2/Q4_3; 31-33, 36-38: repacked layouts, never stored
/// in files any more) are not listed, so a file naming them is rejected.
///
/// A block type stores `block_size` consecutive elements of a row in `type_size` bytes; a row of
/// `ne[0]` elements is `ne[0] / block_size` whole blocks and blocks never span rows. That is all
/// head removal needs: rows and whole blocks are copied as bytes, never decoded.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
};

/// What ggml's `type_traits` table says of one type.
struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;    ///< ggml's name, e.g. "q8_0", "bf16"
  std::uint32_t block_size;  ///< elements per block (1 for plain types)
  std::uint32_t type_size;   ///< bytes per block
};

namespace detail {
// From ggml's src/ggml.c type_traits and src/ggml-common.h block structs.
inline constexpr std::array<GgmlTypeTraits, 35> ggml_type_table{{
    {GgmlType::F32, "f32", 1, 4},          {GgmlType::F16, "f16", 1, 2},
    {GgmlType::Q4_0, "q4_0", 32, 18},      {GgmlType::Q4_1, "q4_1", 32, 20},
    {GgmlType::Q5_0, "q5_0", 32, 22},      {GgmlType::Q5_1, "q5_1", 32, 24},
    {GgmlType::Q8_0, "q8_0", 32, 34},      {GgmlType::Q8_1, "q8_1", 32, 36},
    {GgmlType::Q2_K, "q2_K", 256, 84},     {GgmlType::Q3_K, "q3_K", 256, 110},
    {GgmlType::Q4_K, "q4_K", 256, 144},    {GgmlType::Q5_K, "q5_K", 256, 176},
    {GgmlType::Q6_K, "q6_K", 256, 210},    {GgmlType::Q8_K, "q8_K", 256, 292},
    {GgmlType::IQ2_XXS, "iq2_xxs", 256, 66}, {GgmlType::IQ2_XS, "iq2_xs", 256, 74},
    {GgmlType::IQ3_XXS, "iq3_xxs", 256, 98}, {GgmlType::IQ1_S, "iq1_s", 256, 50},
    {GgmlType::IQ4_NL, "iq4_nl", 32, 18},  {GgmlType::IQ3_S, "iq3_s", 256, 110},
    {GgmlType::IQ2_S, "iq2_s", 256, 82},   {GgmlType::IQ4_XS, "iq4_xs", 256, 136},
    {GgmlType::I8, "i8", 1, 1},            {GgmlType::I16, "i16", 1, 2},
    {GgmlType::I32, "i32", 1, 4},          {GgmlType::I64, "i64", 1, 8},
    {GgmlType::F64, "f64", 1, 8},          {GgmlType::IQ1_M, "iq1_m", 256, 56},
    {GgmlType::BF16, "bf16", 1, 2},        {GgmlType::TQ1_0, "tq1_0", 256, 54},
    {GgmlType::TQ2_0, "tq2_0", 256, 66},   {GgmlType::MXFP4, "mxfp4", 32, 17},
    {GgmlType::NVFP4, "nvfp4", 64, 36},    {GgmlType::Q1_0, "q1_0", 128, 18},
    {GgmlType::Q2_0, "q2_0", 64, 18},
}};

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace detail

/// The traits of the type with ggml id `id`, or nullptr when ggml defines no such type (today).
inline const GgmlTypeTraits* find_ggml_type(std::uint32_t id) noexcept {
  for (const GgmlTypeTraits& t : detail::ggml_type_table)
    if (static_cast<std::uint32_t>(t.type) == id) return &t;
  return nullptr;
}

/// The traits of a type of the enum (always found).
inline const GgmlTypeTraits& ggml_traits(GgmlType type) noexcept {
  return *find_ggml_type(static_cast<std::uint32_t>(type));
}

/// ggml's name of the type ("q8_0"); for an id ggml does not define, "type <id>".
inline std::string to_string(GgmlType type) {
  const GgmlTypeTraits* t = find_ggml_type(static_cast<std::uint32_t>(type));
  return t ? std::string(t->name) : mhaprune::detail::message("type ", static_cast<std::uint32_t>(type));
}

/// The type named `name`, in any letter case ("Q8_0", "q4_k", "BF16"); nullopt for another name.
inline std::optional<GgmlType> parse_ggml_type(std::string_view name) {
  for (const GgmlTypeTraits& t : detail::ggml_type_table) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i)
      same = detail::lower(t.name[i]) == detail::lower(name[i]);
    if (same) return t.type;
  }
  return std::nullopt;
}

/// True for the types whose rows are blocks of several elements (everything quantized).
inline bool is_block_type(GgmlType type) noexcept { return ggml_traits(type).block_size > 1; }

/// Bytes of a row of `ne0` elements, or nullopt when `ne0` is not a whole number of blocks.
inline std::optional<std::uint64_t> row_bytes(GgmlType type, std::uint64_t ne0) noexcept {
  const GgmlTypeTraits& t = ggml_traits(type);
  if (ne0 % t.block_size != 0) return std::nullopt;
  return ne0 / t.block_size * t.type_size;
}

}  // namespace mhaprune::io
