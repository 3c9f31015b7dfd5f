// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/header.hpp"
#include "mhaprune/io/mapped_file.hpp"
#include "mhaprune/io/tensor_view.hpp"

namespace mhaprune::io {

/// A safetensors file, memory-mapped read-only and checked whole when opened (see `parse_header`
/// for every check): afterwards any tensor can be used without further checks.
///
/// Nothing is copied: `tensor(name)` is a view into the map, `bytes()` its raw bytes (to copy a
/// tensor through unchanged, e.g. into a `SafetensorsWriter`), `map_*` a zero-copy `Eigen::Map`;
/// only `read_*` copy, to convert. Opening costs the header's pages; tensor pages are read from
/// disk when first touched.
///
///     mhaprune::io::SafetensorsReader in("model.safetensors");
///     auto q = in.tensor("model.layers.0.self_attn.q_proj.weight").read_matrix<float>();  // [out, in]
///
/// Move-only; const member functions may be called from several threads at once. Views, infos
/// and maps obtained from a reader are valid while it lives, moves included (the map and the
/// tensor list do not move in memory).
class SafetensorsReader {
 public:
  /// Maps and checks `path`.
  /// @throws io_error if the file cannot be opened or mapped; corrupt_file_error or
  ///         unsupported_dtype_error as `parse_header`.
  explicit SafetensorsReader(std::string path, const ParseOptions& options = {})
      : file_(std::move(path)), header_(parse_header(file_.bytes(), file_.path(), options)) {}

  SafetensorsReader(SafetensorsReader&&) noexcept = default;
  SafetensorsReader& operator=(SafetensorsReader&&) noexcept = default;
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::string& path() const noexcept { return file_.path(); }
  const Header& header() const noexcept { return header_; }
  /// Every tensor, sorted by name.
  const std::vector<TensorInfo>& tensors() const noexcept { return header_.tensors(); }
  /// The file's `__metadata__` (empty if none).
  const std::map<std::string, std::string>& metadata() const noexcept { return header_.metadata(); }
  /// The whole file.
  ByteSpan file_bytes() const noexcept { return file_.bytes(); }
  /// The mapped file (its open descriptor lets a writer copy a tensor by range, see
  /// `ByteSink::append_mapped`).
  const MappedFile& mapped_file() const noexcept { return file_; }

  bool contains(std::string_view name) const noexcept { return header_.contains(name); }
  /// @throws missing_tensor_error naming the file and similar names in it.
  const TensorInfo& info(std::string_view name) const { return header_.at(name); }
  /// @throws missing_tensor_error as `info`.
  TensorView tensor(std::string_view name) const { return view(header_.at(name)); }
  /// The view of a tensor of this reader's `tensors()`.
  TensorView view(const TensorInfo& info) const { return TensorView(info, bytes(info), path()); }
  /// The raw bytes of a tensor of this reader's `tensors()`; no copy.
  ByteSpan bytes(const TensorInfo& info) const { return header_.bytes(info, file_.bytes()); }
  /// Drops a tensor's pages from this process's resident memory (see `MappedFile::release`); its
  /// views stay valid and read the same bytes if touched again.
  /// A tensor of another reader is ignored.
  void release(const TensorInfo& info) const noexcept {
    const TensorInfo* own = header_.find(info.name);
    if (own == nullptr) return;
    file_.release(file_.bytes().subspan(static_cast<std::size_t>(header_.data_offset() + own->begin),
                                        static_cast<std::size_t>(own->byte_size())));
  }

 private:
  MappedFile file_;
  Header header_;
};

}  // namespace mhaprune::io
