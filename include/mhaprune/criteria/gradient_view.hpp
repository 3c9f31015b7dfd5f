// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <type_traits>

#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/tensor_ref.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Element type of data mhaprune reads without knowing it at compile time (gradients).
enum class Dtype : std::uint8_t { float32, float64, float16, bfloat16 };

inline const char* to_string(Dtype t) {
  switch (t) {
    case Dtype::float32:
      return "float32";
    case Dtype::float64:
      return "float64";
    case Dtype::float16:
      return "float16";
    case Dtype::bfloat16:
      return "bfloat16";
  }
  return "?";
}

/// The `Dtype` of a supported scalar type.
template <typename Scalar>
constexpr Dtype dtype_of() noexcept {
  static_assert(is_supported_scalar_v<Scalar>,
                "mhaprune: supported element types are float, double, "
                "Eigen::half and Eigen::bfloat16");
  if constexpr (std::is_same_v<Scalar, float>) {
    return Dtype::float32;
  } else if constexpr (std::is_same_v<Scalar, double>) {
    return Dtype::float64;
  } else if constexpr (std::is_same_v<Scalar, Eigen::half>) {
    return Dtype::float16;
  } else {
    return Dtype::bfloat16;
  }
}

/// A read-only, non-owning view of a 2-D gradient in the caller's memory: a LLaMA-7B block has four
/// 64 MiB weight gradients, which are never copied.
///
/// `rows` x `cols` elements of type `dtype`; each line (a row when `order` is row-major, a column
/// otherwise) is contiguous, and consecutive lines start `outer_stride` elements apart
/// (`outer_stride` >= the line length, so a block of a larger matrix can be viewed too).
/// The caller's data must stay alive and unchanged while a criterion reads it.
struct GradientView {
  const void* data = nullptr;
  Dtype dtype = Dtype::float32;
  Index rows = 0;
  Index cols = 0;
  StorageOrder order = StorageOrder::row_major;
  Index outer_stride = 0;

  /// Elements in one contiguous line.
  Index line_length() const noexcept { return order == StorageOrder::row_major ? cols : rows; }

  /// Views an Eigen object with direct access to its coefficients and unit inner stride: a
  /// `Matrix`, a `Map` (with or without outer stride), a `Block` of one, `.transpose()` of one, a
  /// `Ref`. Expressions that would need evaluating are refused at compile time, since the view would
  /// point into a temporary.
  ///
  /// @throws storage_error when the object's inner stride is not 1.
  template <typename Derived>
  static GradientView of(const Eigen::DenseBase<Derived>& g) {
    using S = typename Derived::Scalar;
    static_assert(is_supported_scalar_v<S>,
                  "mhaprune::GradientView: gradients must hold float, double, "
                  "Eigen::half or Eigen::bfloat16");
    constexpr bool direct = (Derived::Flags & Eigen::DirectAccessBit) != 0;
    static_assert(direct,
                  "mhaprune::GradientView: the gradient must be an Eigen object with direct access to "
                  "its data (Matrix, Map, Block, Ref, transpose of one), not an expression");
    if constexpr (direct) {
      const Derived& d = g.derived();
      if (d.size() > 1 && d.innerStride() != 1) {
        throw storage_error(detail::message("GradientView::of(): the gradient's inner stride is ",
                                            d.innerStride(),
                                            "; mhaprune reads gradients whose lines are contiguous"));
      }
      const StorageOrder order = Derived::IsRowMajor ? StorageOrder::row_major : StorageOrder::col_major;
      return GradientView{d.data(), dtype_of<S>(), d.rows(), d.cols(), order, d.outerStride()};
    } else {
      return GradientView{};
    }
  }

  /// Views a caller-owned buffer (see `MatrixBuffer`).
  template <typename S>
  static GradientView of(const MatrixBuffer<S>& g) noexcept {
    const Index line = g.order == StorageOrder::row_major ? g.cols : g.rows;
    return GradientView{g.data, dtype_of<S>(), g.rows, g.cols, g.order, line};
  }
};

}  // namespace mhaprune
