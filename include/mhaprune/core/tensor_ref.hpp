// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <exception>
#include <new>
#include <type_traits>

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// A 2-D tensor in a buffer the caller owns, for weights that live outside Eigen (a memory map,
/// a tensor of another framework). mhaprune compacts it in place and updates `rows`/`cols`; the
/// buffer itself is never reallocated, and `capacity` (elements) is what mhaprune may touch.
template <typename T>
struct MatrixBuffer {
  /// The element type, named as Eigen names it, so that the layout adapters accept buffers too.
  using Scalar = T;
  Scalar* data = nullptr;
  Index capacity = 0;
  Index rows = 0;
  Index cols = 0;
  StorageOrder order = StorageOrder::row_major;
};

/// A non-owning handle over one of the caller's tensors: an owning `Eigen::Matrix` (row- or
/// column-major, dynamic size), an `Eigen::Map` of one without strides, or a `MatrixBuffer`.
///
/// The handle reads the object's data pointer and shape at each use, so a block notices when the
/// caller resized a matrix behind its back. `set_shape` records the shape after an in-place
/// compaction: an owning matrix is shrunk without a copy (reshape to a vector, `conservativeResize`,
/// which is a `realloc` to a smaller size, reshape back); a `Map` is re-seated on the same pointer with
/// placement new, the way Eigen documents; a `MatrixBuffer` gets its new `rows`/`cols`.
template <typename Scalar>
class TensorRef {
 public:
  /// The operations on the caller's object; one constant table per object type.
  struct Ops {
    Scalar* (*data)(void*) noexcept;
    Index (*rows)(const void*) noexcept;
    Index (*cols)(const void*) noexcept;
    Index (*capacity)(const void*) noexcept;
    void (*set_shape)(void*, Index, Index) noexcept;
    StorageOrder (*order)(const void*) noexcept;
    const char* storage;
  };

  TensorRef() = default;
  TensorRef(void* object, const Ops* ops) noexcept : object_(object), ops_(ops) {}

  bool bound() const noexcept { return object_ != nullptr; }
  Scalar* data() const noexcept { return ops_->data(object_); }
  Index rows() const noexcept { return ops_->rows(object_); }
  Index cols() const noexcept { return ops_->cols(object_); }
  Index size() const noexcept { return rows() * cols(); }
  Index extent(Axis axis) const noexcept { return axis == Axis::rows ? rows() : cols(); }
  /// Elements the buffer holds; at least `size()` for any valid object.
  Index capacity() const noexcept { return ops_->capacity(object_); }
  StorageOrder order() const noexcept { return ops_->order(object_); }
  /// "Eigen::Matrix", "Eigen::Map" or "MatrixBuffer", for messages.
  const char* storage() const noexcept { return ops_->storage; }
  /// Records the shape after compaction; the first `rows*cols` elements already hold the data.
  void set_shape(Index rows, Index cols) const noexcept { ops_->set_shape(object_, rows, cols); }
  /// The caller's object, to compare handles.
  const void* object() const noexcept { return object_; }

 private:
  void* object_ = nullptr;
  const Ops* ops_ = nullptr;
};

namespace detail {

template <typename M>
constexpr StorageOrder order_of() {
  return (M::Flags & Eigen::RowMajorBit) ? StorageOrder::row_major : StorageOrder::col_major;
}

template <typename T>
struct is_dynamic_matrix : std::false_type {};
template <typename S, int R, int C, int O, int MR, int MC>
struct is_dynamic_matrix<Eigen::Matrix<S, R, C, O, MR, MC>>
    : std::bool_constant<(R == Eigen::Dynamic || R == 1) && (C == Eigen::Dynamic || C == 1) &&
                         !(R == 1 && C == 1) && MR == R && MC == C> {};

template <typename T>
struct is_plain_map : std::false_type {};
template <typename M, int MapOptions>
struct is_plain_map<Eigen::Map<M, MapOptions, Eigen::Stride<0, 0>>> : is_dynamic_matrix<M> {};

template <typename M>
struct OwningOps {
  using Scalar = typename M::Scalar;
  static Scalar* data(void* o) noexcept { return static_cast<M*>(o)->data(); }
  static Index rows(const void* o) noexcept { return static_cast<const M*>(o)->rows(); }
  static Index cols(const void* o) noexcept { return static_cast<const M*>(o)->cols(); }
  static Index capacity(const void* o) noexcept { return static_cast<const M*>(o)->size(); }
  static StorageOrder order(const void*) noexcept { return order_of<M>(); }
  // Eigen's conservativeResize reallocates in place only when the inner dimension is unchanged;
  // a vector-shaped detour makes that always true, so no full-size temporary is ever made. It is a
  // realloc to a smaller size, which the C library satisfies in place; if it ever failed we could
  // not restore the caller's data, so that is fatal rather than a silent half-update.
  static void set_shape(void* o, Index r, Index c) noexcept {
    M& m = *static_cast<M*>(o);
    if (m.rows() == r && m.cols() == c) return;
    try {
      if constexpr (M::IsVectorAtCompileTime) {
        m.conservativeResize(r * c);
      } else if constexpr (order_of<M>() == StorageOrder::row_major) {
        m.resize(m.size(), 1);
        m.conservativeResize(r * c, 1);
        m.resize(r, c);
      } else {
        m.resize(1, m.size());
        m.conservativeResize(1, r * c);
        m.resize(r, c);
      }
    } catch (...) {
      std::terminate();
    }
  }
  static constexpr typename TensorRef<Scalar>::Ops table{&data,      &rows,  &cols,          &capacity,
                                                         &set_shape, &order, "Eigen::Matrix"};
};

template <typename MapT>
struct MapOps {
  using Scalar = typename MapT::Scalar;
  static Scalar* data(void* o) noexcept { return static_cast<MapT*>(o)->data(); }
  static Index rows(const void* o) noexcept { return static_cast<const MapT*>(o)->rows(); }
  static Index cols(const void* o) noexcept { return static_cast<const MapT*>(o)->cols(); }
  // A Map knows only its own shape: the caller's buffer is at least that large, no more is assumed.
  static Index capacity(const void* o) noexcept { return static_cast<const MapT*>(o)->size(); }
  static StorageOrder order(const void*) noexcept { return order_of<MapT>(); }
  static void set_shape(void* o, Index r, Index c) noexcept {
    MapT* m = static_cast<MapT*>(o);
    Scalar* p = m->data();
    if constexpr (MapT::IsVectorAtCompileTime) {
      new (m) MapT(p, r * c);
    } else {
      new (m) MapT(p, r, c);
    }
  }
  static constexpr
      typename TensorRef<Scalar>::Ops table{&data, &rows, &cols, &capacity, &set_shape, &order, "Eigen::Map"};
};

template <typename Scalar>
struct BufferOps {
  using B = MatrixBuffer<Scalar>;
  static Scalar* data(void* o) noexcept { return static_cast<B*>(o)->data; }
  static Index rows(const void* o) noexcept { return static_cast<const B*>(o)->rows; }
  static Index cols(const void* o) noexcept { return static_cast<const B*>(o)->cols; }
  static Index capacity(const void* o) noexcept { return static_cast<const B*>(o)->capacity; }
  static StorageOrder order(const void* o) noexcept { return static_cast<const B*>(o)->order; }
  static void set_shape(void* o, Index r, Index c) noexcept {
    static_cast<B*>(o)->rows = r;
    static_cast<B*>(o)->cols = c;
  }
  static constexpr typename TensorRef<Scalar>::Ops table{&data,      &rows,  &cols,         &capacity,
                                                         &set_shape, &order, "MatrixBuffer"};
};

}  // namespace detail

/// True for the caller objects `bind` accepts.
template <typename T>
inline constexpr bool is_bindable_v = detail::is_dynamic_matrix<T>::value || detail::is_plain_map<T>::value;

/// Makes a handle over an owning dynamic-size `Eigen::Matrix` (or vector).
template <typename T, std::enable_if_t<detail::is_dynamic_matrix<T>::value, int> = 0>
TensorRef<typename T::Scalar> bind(T& matrix) noexcept {
  return TensorRef<typename T::Scalar>(&matrix, &detail::OwningOps<T>::table);
}

/// Makes a handle over an `Eigen::Map` without strides; the Map object must outlive the block.
template <typename T, std::enable_if_t<detail::is_plain_map<T>::value, int> = 0>
TensorRef<typename T::Scalar> bind(T& map) noexcept {
  return TensorRef<typename T::Scalar>(&map, &detail::MapOps<T>::table);
}

/// Makes a handle over a caller-owned buffer.
template <typename Scalar>
TensorRef<Scalar> bind(MatrixBuffer<Scalar>& buffer) noexcept {
  return TensorRef<Scalar>(&buffer, &detail::BufferOps<Scalar>::table);
}

}  // namespace mhaprune
