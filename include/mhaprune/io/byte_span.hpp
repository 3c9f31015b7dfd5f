// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mhaprune::io {

/// A read-only view of bytes someone else owns (a memory map, a vector, a tensor's storage): the
/// C++17 stand-in for `std::span<const std::byte>`. It never owns or copies.
class ByteSpan {
 public:
  constexpr ByteSpan() noexcept = default;
  ByteSpan(const void* data, std::size_t size) noexcept
      : data_(static_cast<const std::byte*>(data)), size_(size) {}
  /// Views a whole vector; the vector must outlive the span and keep its size.
  template <typename T>
  explicit ByteSpan(const std::vector<T>& v) noexcept : ByteSpan(v.data(), v.size() * sizeof(T)) {}

  constexpr const std::byte* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr const std::byte* begin() const noexcept { return data_; }
  constexpr const std::byte* end() const noexcept { return data_ + size_; }
  /// `count` bytes from `offset`; the caller has checked that they lie inside the span.
  ByteSpan subspan(std::size_t offset, std::size_t count) const noexcept { return {data_ + offset, count}; }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace mhaprune::io
