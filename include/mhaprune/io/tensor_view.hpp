// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/convert.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/header.hpp"

namespace mhaprune::io {

/// A 2-D tensor as mhaprune reads it: row-major, like the file (and PyTorch) store it.
template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// A 1-D tensor (biases, norms, ALiBi slopes).
template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// One tensor of an open file: its checked description and its bytes in the file's memory map.
/// Valid while the reader it came from lives (moving the reader is fine): it points into its map.
///
/// Reading: `read_*<T>()` copy into a new Eigen object, converting F64/F32/F16/BF16 to `T` (exact
/// when widening, round-to-nearest-even when narrowing); `map_*<T>()` give a zero-copy read-only
/// `Eigen::Map` over the file's bytes when the tensor is already stored as `T` and suitably
/// aligned (always true for files written by the reference writer or by mhaprune).
/// `T` is float, double, Eigen::half or Eigen::bfloat16.
class TensorView {
 public:
  /// `info` and `bytes` must outlive the view; `source` (the file's path) is kept for messages.
  TensorView(const TensorInfo& info, ByteSpan bytes, std::string source)
      : info_(&info), bytes_(bytes), source_(std::move(source)) {}

  const TensorInfo& info() const noexcept { return *info_; }
  const std::string& name() const noexcept { return info_->name; }
  Dtype dtype() const noexcept { return info_->dtype; }
  const Shape& shape() const noexcept { return info_->shape; }
  std::uint64_t element_count() const noexcept { return info_->element_count(); }
  /// The tensor's bytes in the map, exactly `info().byte_size()` of them; any dtype, no copy.
  ByteSpan bytes() const noexcept { return bytes_; }
  /// The file the tensor lives in, for messages.
  const std::string& source() const noexcept { return source_; }

  /// A 2-D tensor `[rows, cols]` as a row-major matrix of `T`.
  /// @throws shape_error if the tensor is not 2-D; unsupported_dtype_error if its dtype is not
  ///         F64, F32, F16 or BF16.
  template <typename T>
  RowMatrix<T> read_matrix() const {
    require_rank(2, "read_matrix");
    RowMatrix<T> out(index(shape()[0]), index(shape()[1]));
    decode_into(out.data());
    return out;
  }

  /// A 1-D tensor `[n]` as a vector of `T`.
  /// @throws shape_error if the tensor is not 1-D; unsupported_dtype_error as `read_matrix`.
  template <typename T>
  Vector<T> read_vector() const {
    require_rank(1, "read_vector");
    Vector<T> out(index(shape()[0]));
    decode_into(out.data());
    return out;
  }

  /// Every element of a tensor of any rank, in storage (row-major) order.
  /// @throws unsupported_dtype_error as `read_matrix`.
  template <typename T>
  Vector<T> read_flat() const {
    Vector<T> out(index(element_count()));
    decode_into(out.data());
    return out;
  }

  /// Decodes every element, in storage order, into `dst`, which holds `element_count()` of them.
  /// @throws unsupported_dtype_error as `read_matrix`.
  template <typename T>
  void decode_into(T* dst) const {
    // The context string is only built when it is needed, for the error.
    const std::string context =
        is_convertible(dtype()) ? std::string()
                                : mhaprune::detail::message(source(), ": tensor ", detail::quoted(name()));
    decode(dtype(), bytes_.data(), static_cast<std::size_t>(element_count()), dst, context);
  }

  /// A zero-copy read-only view of a 2-D tensor stored as `T`.
  /// @throws shape_error if the tensor is not 2-D; unsupported_dtype_error if it is not stored as
  ///         `T` (use `read_matrix` to convert); io_error if its bytes are not aligned for `T`.
  template <typename T>
  Eigen::Map<const RowMatrix<T>> map_matrix() const {
    require_rank(2, "map_matrix");
    return Eigen::Map<const RowMatrix<T>>(mapped<T>("map_matrix"), index(shape()[0]), index(shape()[1]));
  }

  /// A zero-copy read-only view of a 1-D tensor stored as `T`.
  /// @throws as `map_matrix`, for 1-D.
  template <typename T>
  Eigen::Map<const Vector<T>> map_vector() const {
    require_rank(1, "map_vector");
    return Eigen::Map<const Vector<T>>(mapped<T>("map_vector"), index(shape()[0]));
  }

  /// A zero-copy read-only view of every element of a tensor of any rank stored as `T`.
  /// @throws as `map_matrix`, without the rank check.
  template <typename T>
  Eigen::Map<const Vector<T>> map_flat() const {
    return Eigen::Map<const Vector<T>>(mapped<T>("map_flat"), index(element_count()));
  }

 private:
  void require_rank(std::size_t rank, const char* what) const {
    if (info_->rank() != rank) {
      throw shape_error(mhaprune::detail::message(
          source(), ": tensor ", detail::quoted(name()), ": ", what, " needs a ", rank,
          "-D tensor, got shape ", detail::shape_string(shape()), " (read_flat/map_flat read any rank)"));
    }
  }

  Eigen::Index index(std::uint64_t n) const {
    if (n > static_cast<std::uint64_t>(std::numeric_limits<Eigen::Index>::max())) {
      throw io_error(mhaprune::detail::message(source(), ": tensor ", detail::quoted(name()), ": extent ", n,
                                               " does not fit Eigen::Index"));
    }
    return static_cast<Eigen::Index>(n);
  }

  template <typename T>
  const T* mapped(const char* what) const {
    static_assert(detail::is_io_scalar_v<T>, "T must be float, double, Eigen::half or Eigen::bfloat16");
    if (dtype() != dtype_of_v<T>) {
      throw unsupported_dtype_error(
          mhaprune::detail::message(source(), ": tensor ", detail::quoted(name()), ": ", what,
                                    " needs dtype ", to_string(dtype_of_v<T>), ", the tensor is ",
                                    to_string(dtype()), " (read_matrix/read_vector/read_flat convert)"));
    }
    const auto address = reinterpret_cast<std::uintptr_t>(bytes_.data());
    if (element_count() != 0 && address % alignof(T) != 0) {
      throw io_error(mhaprune::detail::message(source(), ": tensor ", detail::quoted(name()), ": ", what,
                                               " needs its data aligned to ", alignof(T),
                                               " bytes, but it is not in this file (read_* copies instead)"));
    }
    return element_count() == 0 ? nullptr : reinterpret_cast<const T*>(bytes_.data());
  }

  const TensorInfo* info_;
  ByteSpan bytes_;
  std::string source_;
};

}  // namespace mhaprune::io
