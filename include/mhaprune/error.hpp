// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mhaprune {

/// The one base of every exception mhaprune throws. Catch this to catch them all.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A head configuration that cannot exist (zero heads, `H % H_kv != 0`, ...).
class layout_error : public error {
 public:
  using error::error;
};

/// A tensor whose shape disagrees with the block's head layout, or with the shape it had when bound.
class shape_error : public error {
 public:
  using error::error;
};

/// A buffer that cannot hold what it claims (too small, null, wrong storage).
class storage_error : public error {
 public:
  using error::error;
};

/// A head id that is out of range, repeated, or already removed.
class head_id_error : public error {
 public:
  using error::error;
};

/// A removal that would leave a block that no kernel can run (no heads, ragged GQA groups).
class removal_error : public error {
 public:
  using error::error;
};

namespace detail {

/// Builds an error message from streamable parts, so call sites read like the message they make.
template <typename... Parts>
std::string message(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// "[rows, cols]", the way every shape appears in mhaprune's messages.
inline std::string shape_string(std::ptrdiff_t rows, std::ptrdiff_t cols) {
  return message('[', rows, ", ", cols, ']');
}

}  // namespace detail
}  // namespace mhaprune
