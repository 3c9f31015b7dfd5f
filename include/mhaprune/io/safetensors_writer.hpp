// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_sink.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/convert.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/header.hpp"
#include "mhaprune/io/tensor_view.hpp"

namespace mhaprune::io {

class SafetensorsWriter;
struct ShardOptions;
struct ShardedWriteResult;
ShardedWriteResult write_sharded(const SafetensorsWriter& tensors, const std::string& directory,
                                 const ShardOptions& options);

namespace detail {

/// A tensor waiting to be written: its header entry and a function that streams its bytes.
struct PendingTensor {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t byte_size;
  /// Appends exactly `byte_size` bytes to the file.
  std::function<void(TempFile&)> emit;
};

}  // namespace detail

/// Collects tensors, then writes them as one safetensors file (`write`) or as a sharded checkpoint
/// (`write_sharded`, in sharded.hpp).
///
/// Writing is atomic and streams: the file is written under a temporary name in the destination
/// directory, tensor by tensor through a 1 MiB buffer (nothing holds the whole file), fsynced, and
/// renamed into place only when complete; on any error the temporary file is removed and the
/// final name is untouched (a previous file there survives).
///
/// The file is what the reference writer (Hugging Face's `safetensors`) makes: the header lists
/// `__metadata__` first (if any), then the tensors in data order; tensors are stored by decreasing
/// dtype (see `Dtype`), then by name, which keeps each aligned to its element size; offsets are
/// contiguous; the header is padded with spaces to a multiple of 8 bytes. The same tensors and
/// metadata always give the same bytes, whatever order they were added in.
///
/// Data is not copied when added: the writer keeps pointers to the caller's buffers (raw bytes,
/// a reader's map, Eigen objects), which must stay alive and unchanged until `write` returns.
/// An owning Eigen matrix handed over as an rvalue is kept by the writer instead (moved in).
///
///     mhaprune::io::SafetensorsWriter out;
///     for (const auto& t : in.tensors()) if (t.name != "q") out.add(t.name, in.view(t));  // copied through
///     out.add("q", q_pruned, mhaprune::io::Dtype::BF16);   // Eigen matrix, rounded once to bf16
///     out.set_metadata({{"format", "pt"}});
///     out.write("pruned/model.safetensors");
class SafetensorsWriter {
 public:
  /// Adds a tensor from raw bytes of any dtype, written unchanged (copied through): e.g. a tensor
  /// of a reader's map (see the `TensorView` overload), or an I64/U8/F8 tensor that mhaprune does
  /// not convert.
  /// @param shape outermost dimension first; `bytes` holds `product(shape) × bits(dtype) / 8` bytes.
  /// @throws io_error if the name is invalid (not UTF-8, "__metadata__") or already added, or if
  ///         `bytes` has the wrong size for `dtype` and `shape`.
  void add(std::string name, Dtype dtype, Shape shape, ByteSpan bytes) {
    check_name(name);
    const std::uint64_t size = byte_size_of(name, dtype, shape);
    if (size != bytes.size()) {
      throw io_error(mhaprune::detail::message(
          "SafetensorsWriter::add: tensor ", detail::quoted(name), ": shape ", detail::shape_string(shape),
          " of ", to_string(dtype), " needs ", size, " bytes, got ", bytes.size()));
    }
    push(std::move(name), dtype, std::move(shape), size, [bytes](detail::TempFile& out) {
      if (!bytes.empty()) out.append(bytes.data(), bytes.size());
    });
  }

  /// Adds a tensor of an open file, unchanged (same dtype, shape and bytes), under `name`.
  /// @throws io_error as the raw overload.
  void add(std::string name, const TensorView& tensor) {
    add(std::move(name), tensor.dtype(), tensor.shape(), tensor.bytes());
  }

  /// Adds an Eigen matrix or vector of float, double, Eigen::half or Eigen::bfloat16, stored as
  /// `stored_as` (F64, F32, F16 or BF16; by default the dtype of its own scalar). Narrowing
  /// rounds each value once, to nearest even, as PyTorch's `.to(dtype)` does.
  ///
  /// The elements are written in row-major order of `values` as the caller sees it, whatever its
  /// storage order or strides (a block, a transpose, a `Map` are fine; expressions without storage,
  /// such as `a + b`, must be evaluated into a matrix first).
  ///
  /// @param shape the tensor's shape in the file; by default `[rows, cols]`, or `[size]` for a
  ///        compile-time vector. A given shape must have `values.size()` elements (a 4-D
  ///        convolution kernel kept as an `[out, in*kh*kw]` matrix, say).
  /// @throws unsupported_dtype_error if `stored_as` is not a floating-point dtype; io_error as the
  ///         raw overload, or if `shape` does not have `values.size()` elements.
  template <typename Derived>
  void add(std::string name, const Eigen::DenseBase<Derived>& values,
           Dtype stored_as = dtype_of_v<typename Derived::Scalar>,
           std::optional<Shape> shape = std::nullopt) {
    add_eigen(std::move(name), values.derived(), stored_as, std::move(shape), nullptr);
  }

  /// As above, for an owning matrix handed over as an rvalue: the writer keeps it (moved in) until
  /// the writer is destroyed, so `add("x", in.tensor("x").read_matrix<float>(), Dtype::BF16)` is safe.
  template <typename Derived>
  void add(std::string name, Eigen::PlainObjectBase<Derived>&& values,
           Dtype stored_as = dtype_of_v<typename Derived::Scalar>,
           std::optional<Shape> shape = std::nullopt) {
    auto owned = std::make_shared<Derived>(std::move(values.derived()));
    add_eigen(std::move(name), *owned, stored_as, std::move(shape), owned);
  }

  /// As above, for a const rvalue (`expr.eval()` returns one): the writer keeps a copy.
  template <typename Derived>
  void add(std::string name, const Eigen::PlainObjectBase<Derived>&& values,
           Dtype stored_as = dtype_of_v<typename Derived::Scalar>,
           std::optional<Shape> shape = std::nullopt) {
    auto owned = std::make_shared<Derived>(values.derived());
    add_eigen(std::move(name), *owned, stored_as, std::move(shape), owned);
  }

  /// Adds a tensor whose bytes are produced only when the file is written: `emit` is called once
  /// per `write` (or per shard, for `write_sharded`), in file order, and must append exactly
  /// `product(shape) × bits(dtype) / 8` bytes to the sink. This lets a caller compute a tensor,
  /// write it and free it before the next one is computed, so memory does not grow with the
  /// number of tensors. Whatever `emit` throws aborts the write (nothing is left behind).
  /// @throws io_error as the raw overload (name, size overflow).
  void add_streamed(std::string name, Dtype dtype, Shape shape, std::function<void(ByteSink&)> emit) {
    check_name(name);
    if (!emit) {
      throw io_error(mhaprune::detail::message("SafetensorsWriter::add_streamed: tensor ",
                                               detail::quoted(name), ": no function to produce its bytes"));
    }
    const std::uint64_t size = byte_size_of(name, dtype, shape);
    push(std::move(name), dtype, std::move(shape), size, [emit = std::move(emit)](detail::TempFile& out) {
      ByteSink sink(out);
      emit(sink);
    });
  }

  /// Replaces the `__metadata__` map (written only if not empty; keys in sorted order).
  /// @throws io_error if a key or value is not valid UTF-8.
  void set_metadata(std::map<std::string, std::string> metadata) {
    for (const auto& [key, value] : metadata) {
      check_utf8(key, "__metadata__ key");
      check_utf8(value, "__metadata__ value");
    }
    metadata_ = std::move(metadata);
  }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  std::size_t size() const noexcept { return tensors_.size(); }
  bool contains(std::string_view name) const { return names_.count(name) != 0; }
  /// Total bytes of tensor data (what a sharded index calls `total_size`).
  std::uint64_t data_size() const noexcept {
    std::uint64_t total = 0;
    for (const auto& t : tensors_) total += t.byte_size;
    return total;
  }

  /// The tensors as `write` will lay them out: file order, with their data offsets.
  std::vector<TensorInfo> layout() const { return layout_of(all()); }

  /// Writes every tensor to `path` atomically (see the class comment).
  /// @throws io_error naming `path` and the system's reason if the temporary file cannot be
  ///         created (missing or read-only directory), written (disk full) or renamed; nothing is
  ///         left behind under either name.
  void write(const std::string& path, const WriteOptions& options = {}) const {
    detail::TempFile file(path);
    file.start_writeback_early(options.durable);
    write_to(file, all(), metadata_);
    file.commit(options.durable);
  }

 private:
  friend ShardedWriteResult write_sharded(const SafetensorsWriter&, const std::string&, const ShardOptions&);

  static void check_utf8(std::string_view text, const char* what) {
    if (detail::utf8_error_offset(text) != text.size()) {
      throw io_error(mhaprune::detail::message("SafetensorsWriter: ", what, ' ', detail::quoted(text),
                                               " is not valid UTF-8"));
    }
  }

  void check_name(const std::string& name) const {
    check_utf8(name, "tensor name");
    if (name == "__metadata__") {
      throw io_error("SafetensorsWriter::add: \"__metadata__\" is reserved and cannot name a tensor");
    }
    if (contains(name)) {
      throw io_error(mhaprune::detail::message("SafetensorsWriter::add: tensor ", detail::quoted(name),
                                               " was already added"));
    }
  }

  static std::uint64_t byte_size_of(const std::string& name, Dtype dtype, const Shape& shape) {
    std::uint64_t bits = dtype_bits(dtype);
    for (std::uint64_t d : shape) {
      if (!detail::checked_mul(bits, d, bits)) {
        throw io_error(mhaprune::detail::message("SafetensorsWriter::add: tensor ", detail::quoted(name),
                                                 ": shape ", detail::shape_string(shape),
                                                 " overflows a 64-bit byte count"));
      }
    }
    if (bits % 8 != 0) {
      throw io_error(mhaprune::detail::message("SafetensorsWriter::add: tensor ", detail::quoted(name),
                                               ": shape ", detail::shape_string(shape), " of ",
                                               to_string(dtype), " does not fill a whole number of bytes"));
    }
    return bits / 8;
  }

  template <typename Derived>
  void add_eigen(std::string name, const Derived& values, Dtype stored_as, std::optional<Shape> shape,
                 std::shared_ptr<const void> keep_alive) {
    using Scalar = typename Derived::Scalar;
    static_assert(detail::is_io_scalar_v<Scalar>,
                  "SafetensorsWriter::add: the scalar must be float, double, Eigen::half or Eigen::bfloat16");
    static_assert(
        bool(Derived::Flags & Eigen::DirectAccessBit),
        "SafetensorsWriter::add: pass a matrix, vector, Map, block or transpose with storage; evaluate "
        "other expressions into a matrix first");
    check_name(name);
    if (!is_convertible(stored_as)) {
      throw unsupported_dtype_error(mhaprune::detail::message(
          "SafetensorsWriter::add: tensor ", detail::quoted(name), ": cannot store Eigen data as ",
          to_string(stored_as),
          " (only F64, F32, F16 and BF16; add raw bytes to copy other dtypes through)"));
    }
    const auto rows = static_cast<std::uint64_t>(values.rows()),
               cols = static_cast<std::uint64_t>(values.cols());
    if (!shape) {
      shape = Derived::IsVectorAtCompileTime ? Shape{rows * cols} : Shape{rows, cols};
    } else {
      std::uint64_t elements = 1;
      bool overflow = false;
      for (std::uint64_t d : *shape) overflow = overflow || !detail::checked_mul(elements, d, elements);
      if (overflow || elements != rows * cols) {
        throw io_error(mhaprune::detail::message(
            "SafetensorsWriter::add: tensor ", detail::quoted(name), ": shape ", detail::shape_string(*shape),
            " does not have the ", rows * cols, " elements of the ", rows, "x", cols, " Eigen object"));
      }
    }
    const std::uint64_t size = byte_size_of(name, stored_as, *shape);
    const detail::StridedSource<Scalar> source = detail::strided_source(values);
    push(std::move(name), stored_as, std::move(*shape), size,
         [source, stored_as, keep_alive](detail::TempFile& out) {
           detail::emit_strided(source, stored_as, out);
         });
  }

  void push(std::string name, Dtype dtype, Shape shape, std::uint64_t size,
            std::function<void(detail::TempFile&)> emit) {
    tensors_.push_back(
        detail::PendingTensor{std::move(name), dtype, std::move(shape), size, std::move(emit)});
    try {
      names_.insert(tensors_.back().name);
    } catch (...) {
      tensors_.pop_back();  // a failed add leaves the writer as it was
      throw;
    }
  }

  std::vector<const detail::PendingTensor*> all() const {
    std::vector<const detail::PendingTensor*> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(&t);
    return out;
  }

  /// File order: decreasing dtype, then name, as the reference writer.
  static void sort_for_file(std::vector<const detail::PendingTensor*>& tensors) {
    std::sort(tensors.begin(), tensors.end(),
              [](const detail::PendingTensor* a, const detail::PendingTensor* b) {
                if (a->dtype != b->dtype) return a->dtype > b->dtype;
                return a->name < b->name;
              });
  }

  static std::vector<TensorInfo> layout_of(std::vector<const detail::PendingTensor*> tensors) {
    sort_for_file(tensors);
    std::vector<TensorInfo> out;
    out.reserve(tensors.size());
    std::uint64_t offset = 0;
    for (const auto* t : tensors) {
      out.push_back(TensorInfo{t->name, t->dtype, t->shape, offset, offset + t->byte_size});
      offset += t->byte_size;
    }
    return out;
  }

  /// The JSON header of `layout`, padded with spaces to a multiple of 8 bytes. Written by hand in
  /// the reference writer's compact form (no spaces, `__metadata__` first, tensors in data order):
  /// nlohmann::ordered_json would keep that order too, but looks keys up linearly, which is
  /// quadratic in the number of tensors.
  static std::string header_text(const std::vector<TensorInfo>& layout,
                                 const std::map<std::string, std::string>& metadata) {
    const auto quote = [](const std::string& text) { return nlohmann::json(text).dump(); };
    std::string text = "{";
    if (!metadata.empty()) {
      text += "\"__metadata__\":{";
      for (const auto& [key, value] : metadata) {
        if (text.back() != '{') text += ',';
        text += quote(key) + ':' + quote(value);
      }
      text += '}';
    }
    for (const auto& t : layout) {
      if (text.size() > 1) text += ',';
      text += quote(t.name);
      text += ":{\"dtype\":\"";
      text += to_string(t.dtype);
      text += "\",\"shape\":[";
      for (std::size_t i = 0; i < t.shape.size(); ++i) {
        if (i != 0) text += ',';
        text += std::to_string(t.shape[i]);
      }
      text += "],\"data_offsets\":[" + std::to_string(t.begin) + ',' + std::to_string(t.end) + "]}";
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
  }

  static void write_to(detail::TempFile& file, std::vector<const detail::PendingTensor*> tensors,
                       const std::map<std::string, std::string>& metadata) {
    sort_for_file(tensors);
    const std::string header = header_text(layout_of(tensors), metadata);
    std::byte length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<std::byte>((header.size() >> (8 * i)) & 0xFFu);
    file.append(length, sizeof length);
    file.append(header.data(), header.size());
    for (const auto* t : tensors) {
      const std::uint64_t before = file.written();
      t->emit(file);
      if (file.written() - before != t->byte_size) {
        throw io_error(mhaprune::detail::message(
            file.final_path(), ": internal error: tensor ", detail::quoted(t->name), " produced ",
            file.written() - before, " bytes instead of ", t->byte_size));
      }
    }
  }

  std::vector<detail::PendingTensor> tensors_;
  std::set<std::string, std::less<>> names_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace mhaprune::io
