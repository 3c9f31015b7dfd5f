// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/convert.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/mapped_file.hpp"

// What every streaming writer (safetensors, GGUF) shares: how a file is written (WriteOptions) and
// the handle through which a tensor's bytes are produced while the file is written (ByteSink).

namespace mhaprune::io {

/// How a file is written.
struct WriteOptions {
  /// fsync the file before renaming it into place, and its directory after, so that a completed
  /// write survives a power cut. Turn off only for scratch files: the write is still atomic.
  bool durable = true;
};

class SafetensorsWriter;
class GgufWriter;

namespace detail {

/// Where element (i, j) of a caller's Eigen object is: data[i * row_stride + j * col_stride].
template <typename Scalar>
struct StridedSource {
  const Scalar* data;
  Eigen::Index rows, cols, row_stride, col_stride;
};

/// Streams a strided 2-D source in row-major order, `stored_as` `dtype`, in chunks of at most
/// 64 Ki elements: memory stays bounded whatever the tensor's size.
template <typename Scalar>
void emit_strided(const StridedSource<Scalar>& s, Dtype dtype, TempFile& out) {
  const bool contiguous = (s.col_stride == 1 || s.cols <= 1) && (s.row_stride == s.cols || s.rows <= 1);
  const std::size_t total = static_cast<std::size_t>(s.rows) * static_cast<std::size_t>(s.cols);
  if (total == 0) return;
  if (contiguous && dtype == dtype_of_v<Scalar>) {
    out.append(s.data, total * sizeof(Scalar));  // no conversion: straight from the caller's buffer
    return;
  }
  constexpr std::size_t chunk = std::size_t{1} << 16;
  const std::size_t bytes_per_element = dtype_bits(dtype) / 8;
  std::vector<std::byte> encoded(std::min(chunk, total) * bytes_per_element);
  std::vector<Scalar> gathered(contiguous ? 0 : std::min(chunk, total));
  for (std::size_t first = 0; first < total; first += chunk) {
    const std::size_t count = std::min(chunk, total - first);
    const Scalar* src = nullptr;
    if (contiguous) {
      src = s.data + first;
    } else {
      const auto cols = static_cast<std::size_t>(s.cols);
      auto i = static_cast<Eigen::Index>(first / cols), j = static_cast<Eigen::Index>(first % cols);
      for (std::size_t k = 0; k < count; ++k) {
        gathered[k] = s.data[i * s.row_stride + j * s.col_stride];
        if (++j == s.cols) {
          j = 0;
          ++i;
        }
      }
      src = gathered.data();
    }
    encode(src, count, dtype, encoded.data());
    out.append(encoded.data(), count * bytes_per_element);
  }
}

/// Where the elements of an Eigen object with storage are, as `emit_strided` reads them.
template <typename Derived>
StridedSource<typename Derived::Scalar> strided_source(const Derived& values) {
  StridedSource<typename Derived::Scalar> source{values.data(), values.rows(), values.cols(), 0, 0};
  if constexpr (bool(Derived::IsRowMajor)) {
    source.row_stride = values.outerStride();
    source.col_stride = values.innerStride();
  } else {
    source.row_stride = values.innerStride();
    source.col_stride = values.outerStride();
  }
  return source;
}

}  // namespace detail

/// Where a streamed tensor (`SafetensorsWriter::add_streamed`, `GgufWriter::add_tensor`) writes its
/// bytes while the file is written: a thin handle on the file, valid only during the call that
/// receives it.
class ByteSink {
 public:
  /// Appends raw bytes.
  void append(const void* data, std::size_t size) { file_->append(data, size); }

  /// Appends `size` bytes of `file` from byte `offset`, unchanged: a tensor copied through, or a
  /// run of kept rows. A range of at least `kernel_copy_min` bytes is copied inside the kernel
  /// (`copy_file_range` from `file.fd()`, as `cp` does: no page of it is mapped into or copied
  /// through this process); where the file systems cannot, it is read and written through a 1 MiB
  /// buffer. A smaller range is copied from the map through the write buffer, where a system
  /// call per range would cost more than the copy. The output's bytes are the same either way.
  /// @throws io_error naming `file.path()` if the range does not lie inside the file, or if the
  ///         file is now shorter than the range (truncated after it was mapped); io_error naming
  ///         the output with the system's reason if it cannot be written.
  void append_file_range(const MappedFile& file, std::uint64_t offset, std::uint64_t size) {
    if (offset > file.size() || size > file.size() - offset) {
      throw io_error(mhaprune::detail::message(file.path(), ": bytes [", offset, ", ", offset + size,
                                               ") lie outside the file of ", file.size(), " bytes"));
    }
    if (size == 0) return;
    if (size < kernel_copy_min || file.fd() < 0) {
      file_->append(file.data() + offset, static_cast<std::size_t>(size));
    } else {
      file_->append_range(file.fd(), offset, size, file.path());
    }
  }

  /// As `append_file_range`, for bytes given as a span of `file.bytes()` (e.g. `reader.bytes(info)`).
  /// @throws io_error naming `file.path()` if `range` is not inside `file.bytes()`; as above.
  void append_mapped(const MappedFile& file, ByteSpan range) {
    if (range.empty()) return;
    const auto begin = reinterpret_cast<std::uintptr_t>(file.data()),
               at = reinterpret_cast<std::uintptr_t>(range.data());
    if (file.data() == nullptr || at < begin || at - begin > file.size()) {
      throw io_error(mhaprune::detail::message(file.path(), ": a range of ", range.size(),
                                               " bytes to copy does not point into the file's map"));
    }
    append_file_range(file, at - begin, range.size());
  }

  /// Ranges shorter than this are copied from the map by `append_file_range`.
  static constexpr std::uint64_t kernel_copy_min = std::uint64_t{64} << 10;

  /// Appends the elements of an Eigen object with storage (float, double, Eigen::half or
  /// Eigen::bfloat16) in row-major order, stored as `stored_as` (F64, F32, F16 or BF16; narrowing
  /// rounds once to nearest even), in bounded chunks.
  /// @throws unsupported_dtype_error if `stored_as` is not one of those four.
  template <typename Derived>
  void append_values(const Eigen::DenseBase<Derived>& values, Dtype stored_as) {
    static_assert(
        detail::is_io_scalar_v<typename Derived::Scalar>,
        "ByteSink::append_values: the scalar must be float, double, Eigen::half or Eigen::bfloat16");
    static_assert(bool(Derived::Flags & Eigen::DirectAccessBit),
                  "ByteSink::append_values: pass an Eigen object with storage");
    if (!is_convertible(stored_as)) {
      throw unsupported_dtype_error(mhaprune::detail::message(
          file_->shown_path(), ": cannot store Eigen data as ", to_string(stored_as)));
    }
    detail::emit_strided(detail::strided_source(values.derived()), stored_as, *file_);
  }

  /// Bytes of the whole file written so far.
  std::uint64_t written() const noexcept { return file_->written(); }

 private:
  friend class SafetensorsWriter;
  friend class GgufWriter;
  explicit ByteSink(detail::TempFile& file) noexcept : file_(&file) {}
  detail::TempFile* file_;
};

}  // namespace mhaprune::io
