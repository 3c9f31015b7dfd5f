// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_sink.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/io/gguf_reader.hpp"
#include "mhaprune/io/gguf_value.hpp"

namespace mhaprune::io {

/// A file written completely under a temporary name next to its final path, not yet renamed into
/// place: `GgufWriter::write_pending` returns one so that a set of files (the shards of a split
/// model) appears only once every one of them has been written. `commit()` renames it; destroying
/// an uncommitted PendingFile removes the temporary file. Move-only.
///
/// Committing a set renames the files one after the other: a failure part-way (which needs the
/// directory to vanish or become read-only between the writes and the renames) can leave the first
/// shards renamed. Each file is still whole, never half-written.
class PendingFile {
 public:
  PendingFile(PendingFile&&) noexcept = default;
  PendingFile& operator=(PendingFile&&) noexcept = default;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile() = default;

  /// Renames the file into place (replacing a file of that name); with WriteOptions::durable, also
  /// syncs the directory. Committing twice does nothing.
  /// @throws io_error naming the path and the system's reason if the rename fails (the temporary
  ///         file is then removed by the destructor).
  void commit() {
    if (committed_) return;
    file_->commit(durable_);
    committed_ = true;
  }
  /// The final path.
  const std::string& path() const noexcept { return file_->final_path(); }
  /// Where the finished file is until committed.
  const std::string& temp_path() const noexcept { return file_->temp_path(); }
  bool committed() const noexcept { return committed_; }

 private:
  friend class GgufWriter;
  PendingFile(std::unique_ptr<detail::TempFile> file, bool durable) noexcept
      : file_(std::move(file)), durable_(durable) {}

  std::unique_ptr<detail::TempFile> file_;
  bool durable_ = true;
  bool committed_ = false;
};

/// Writes one GGUF file (v3 by default, or v2, which has the same layout):
///
///     "GGUF" | version | n_tensors | n_kv | KVs (in the order added) | tensor infos (in the order
///     added) | zero padding to the alignment | each tensor's data, zero-padded to the alignment
///     (the last one too)
///
/// Offsets are computed (ggml's rule: each is the padded end of the one before). The alignment is
/// the `general.alignment` KV if added (a UINT32 power of two), else 32.
///
/// Tensor data is produced by a callback while the file is written, through a ByteSink, so nothing
/// holds the whole file; each callback must write exactly its tensor's bytes, which is checked.
/// The file is written under a temporary name in the destination directory and renamed into place
/// only when complete (or left for the caller to commit: `write_pending`); on any error nothing is
/// left behind under either name.
///
///     GgufWriter out;
///     for (const GgufKv& kv : in.kvs()) out.add_kv(kv.key, kv.value);          // copied bit for bit
///     out.set_kv("llama.attention.head_count", GgufValue::uint32(24));          // replaced in place
///     out.add_tensor("blk.0.attn_q.weight", GgmlType::Q8_0, {4096, 3072},
///                    [&](ByteSink& sink) { sink.append(rows.data(), rows.size()); });
///     out.write("pruned.gguf");
///
/// Callbacks, and buffers they read, must stay valid until `write` returns.
class GgufWriter {
 public:
  /// @throws io_error for a version other than 2 or 3.
  explicit GgufWriter(std::uint32_t version = 3) : version_(version) {
    if (version != 2 && version != 3) {
      throw io_error(
          mhaprune::detail::message("GgufWriter: version ", version, " cannot be written (2 or 3)"));
    }
  }

  /// Appends a KV. `general.alignment` must be a UINT32 power of two; it sets the alignment.
  /// @throws io_error on an empty or already-added key, or a bad `general.alignment` (the writer is
  ///         then unchanged).
  void add_kv(std::string key, GgufValue value) {
    if (key.empty()) throw io_error("GgufWriter::add_kv: empty key (GGUF keys must not be empty)");
    if (kv_index_.count(key) != 0) {
      throw io_error(mhaprune::detail::message("GgufWriter::add_kv: key ", detail::quoted(key),
                                               " was already added (use set_kv to replace it)"));
    }
    check_alignment(key, value);
    kvs_.push_back(GgufKv{std::move(key), std::move(value)});
    try {
      kv_index_.emplace(kvs_.back().key, kvs_.size() - 1);
    } catch (...) {
      kvs_.pop_back();  // a failed add leaves the writer as it was
      throw;
    }
  }

  /// Replaces the value of `key` where it is (keeping the KV order), or appends it if absent.
  /// @throws io_error as add_kv.
  void set_kv(std::string key, GgufValue value) {
    const auto it = kv_index_.find(key);
    if (it == kv_index_.end()) return add_kv(std::move(key), std::move(value));
    check_alignment(key, value);
    kvs_[it->second].value = std::move(value);
  }

  /// Removes `key` if present; true if it was.
  bool remove_kv(std::string_view key) {
    const auto it = kv_index_.find(std::string(key));
    if (it == kv_index_.end()) return false;
    kvs_.erase(kvs_.begin() + static_cast<std::ptrdiff_t>(it->second));
    kv_index_.clear();
    for (std::size_t i = 0; i < kvs_.size(); ++i) kv_index_.emplace(kvs_[i].key, i);
    return true;
  }

  /// The KVs added so far, in file order.
  const std::vector<GgufKv>& kvs() const noexcept { return kvs_; }
  const GgufValue* find(std::string_view key) const {
    const auto it = kv_index_.find(std::string(key));
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
  }

  /// Appends a tensor whose `rows × row_bytes` bytes `emit` appends to the sink when the file is
  /// written (in the order tensors were added).
  /// @param ne ne[0] first (the contiguous dimension), 1 to 4 entries, each below 2^63; ne[0] a
  ///        multiple of the type's block size.
  /// @throws io_error if the name is 64 bytes or longer (GGML_MAX_NAME) or already added, ne has
  ///         0 or more than 4 entries, ne[0] is not whole blocks, the size overflows, or `emit` is
  ///         empty (the writer is then unchanged).
  void add_tensor(std::string name, GgmlType type, std::vector<std::uint64_t> ne,
                  std::function<void(ByteSink&)> emit) {
    const auto fail = [&name](auto&&... parts) {
      return io_error(
          mhaprune::detail::message("GgufWriter::add_tensor: tensor ", detail::quoted(name), ": ", parts...));
    };
    if (name.size() > gguf_max_name_bytes) {
      throw fail("name is ", name.size(), " bytes long; ggml allows at most ", gguf_max_name_bytes,
                 " (GGML_MAX_NAME 64 with the NUL)");
    }
    if (tensor_index_.count(name) != 0) throw fail("was already added (duplicate tensor name)");
    if (ne.empty() || ne.size() > gguf_max_dims) throw fail(ne.size(), " dimensions; GGUF needs 1 to 4");
    const GgmlTypeTraits* traits = find_ggml_type(static_cast<std::uint32_t>(type));
    if (traits == nullptr) throw fail("unknown ggml type id ", static_cast<std::uint32_t>(type));
    std::uint64_t elements = 1;
    for (std::uint64_t d : ne) {
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          !detail::gguf_checked_mul(elements, d, elements)) {
        throw fail("shape ", detail::ne_string(ne), " overflows the element count");
      }
    }
    if (elements >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw fail("shape ", detail::ne_string(ne), " overflows the element count");
    if (ne[0] % traits->block_size != 0) {
      throw fail("ne[0] = ", ne[0], " is not a multiple of the block size ", traits->block_size, " of ",
                 traits->name);
    }
    std::uint64_t size = 0, room = 0;
    if (!detail::gguf_checked_mul(elements / traits->block_size, traits->type_size, size) ||
        !detail::pad_to(size, std::uint64_t{1} << 31, room)) {  // room for any alignment's padding
      throw fail("shape ", detail::ne_string(ne), " of ", traits->name, " overflows the byte size");
    }
    if (!emit) throw fail("no function to produce its bytes");
    tensors_.push_back(Pending{std::move(name), type, std::move(ne), size, std::move(emit)});
    try {
      tensor_index_.emplace(tensors_.back().name, tensors_.size() - 1);
    } catch (...) {
      tensors_.pop_back();  // a failed add leaves the writer as it was
      throw;
    }
  }

  /// Appends a tensor whose bytes are `bytes` (no copy: they must stay valid until written).
  /// @throws io_error as the callback overload, or if `bytes` does not have the tensor's size.
  void add_tensor(std::string name, GgmlType type, std::vector<std::uint64_t> ne, ByteSpan bytes) {
    std::string copy = name;
    add_tensor(std::move(name), type, std::move(ne), [bytes](ByteSink& sink) {
      if (!bytes.empty()) sink.append(bytes.data(), bytes.size());
    });
    if (tensors_.back().byte_size != bytes.size()) {
      const std::uint64_t expected = tensors_.back().byte_size;
      tensors_.pop_back();
      tensor_index_.erase(copy);
      throw io_error(mhaprune::detail::message("GgufWriter::add_tensor: tensor ", detail::quoted(copy),
                                               ": needs ", expected, " bytes, got ", bytes.size()));
    }
  }

  std::size_t tensor_count() const noexcept { return tensors_.size(); }
  bool contains_tensor(std::string_view name) const { return tensor_index_.count(std::string(name)) != 0; }

  /// Bytes of the tensor's data, without padding.
  /// @throws missing_tensor_error if no tensor of that name was added.
  std::uint64_t tensor_byte_size(std::string_view name) const {
    const auto it = tensor_index_.find(std::string(name));
    if (it == tensor_index_.end()) {
      throw missing_tensor_error(
          mhaprune::detail::message("GgufWriter: no tensor ", detail::quoted(name), " was added"));
    }
    return tensors_[it->second].byte_size;
  }

  /// The alignment the file will use: `general.alignment` if added, else 32.
  std::uint64_t alignment() const {
    const GgufValue* a = find(gguf_key_alignment);
    return a ? static_cast<std::uint64_t>(*a->as_int()) : gguf_default_alignment;
  }

  /// Size of the data section: every tensor's bytes padded to the alignment.
  std::uint64_t data_size() const {
    std::uint64_t total = 0;
    for (const GgufTensorInfo& t : tensor_infos()) total = t.offset + padded(t.byte_size);
    return total;
  }

  /// The tensor infos as the file will hold them (offsets relative to the data section).
  std::vector<GgufTensorInfo> tensor_infos() const {
    std::vector<GgufTensorInfo> out;
    out.reserve(tensors_.size());
    std::uint64_t offset = 0;
    for (const Pending& t : tensors_) {
      out.push_back(GgufTensorInfo{t.name, t.ne, t.type, offset, t.byte_size});
      offset += padded(t.byte_size);
    }
    return out;
  }

  /// Writes the file under a temporary name next to `path`, checks that every callback wrote
  /// exactly its tensor's bytes, fsyncs if `options.durable`, and renames it into place.
  /// @throws io_error naming `path` (and the tensor) if a callback wrote too few or too many bytes,
  ///         or if the file cannot be created (missing directory), written or renamed; whatever a
  ///         callback throws is passed on. Nothing is left behind under either name.
  void write(const std::string& path, const WriteOptions& options = {}) const {
    detail::TempFile file(path);
    file.start_writeback_early(options.durable);
    write_to(file);
    file.commit(options.durable);
  }

  /// The same as `write`, but leaves the finished (and, if durable, fsynced) file under its
  /// temporary name: the caller commits a set of files together. Destroying an uncommitted
  /// PendingFile removes it.
  PendingFile write_pending(const std::string& path, const WriteOptions& options = {}) const {
    auto file = std::make_unique<detail::TempFile>(path);
    file->start_writeback_early(options.durable);
    write_to(*file);
    file->finish(options.durable);
    return PendingFile(std::move(file), options.durable);
  }

 private:
  struct Pending {
    std::string name;
    GgmlType type;
    std::vector<std::uint64_t> ne;
    std::uint64_t byte_size;
    std::function<void(ByteSink&)> emit;
  };

  static void check_alignment(const std::string& key, const GgufValue& value) {
    if (key != gguf_key_alignment) return;
    if (value.type() != GgufType::UINT32) {
      throw io_error(mhaprune::detail::message("GgufWriter: key \"general.alignment\" must be UINT32, not ",
                                               to_string(value.type())));
    }
    const auto a = static_cast<std::uint64_t>(*value.as_int());
    if (a == 0 || (a & (a - 1)) != 0) {
      throw io_error(
          mhaprune::detail::message("GgufWriter: key \"general.alignment\" is ", a, ", not a power of two"));
    }
  }

  std::uint64_t padded(std::uint64_t size) const {
    std::uint64_t out = 0;
    detail::pad_to(size, alignment(), out);  // sizes were checked to leave room for any padding
    return out;
  }

  static void put_string(std::vector<std::byte>& out, std::string_view s) {
    detail::store_le(out, s.size(), 8);
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
  }

  /// Zero bytes from `written` up to the next multiple of `align`.
  static void pad(detail::TempFile& file, std::uint64_t align) {
    static const std::vector<std::byte> zeros(4096);
    std::uint64_t n = (align - file.written() % align) % align;
    while (n > 0) {
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, zeros.size()));
      file.append(zeros.data(), chunk);
      n -= chunk;
    }
  }

  void write_to(detail::TempFile& file) const {
    const std::uint64_t align = alignment();
    const std::vector<GgufTensorInfo> infos = tensor_infos();
    std::vector<std::byte> header;
    header.reserve(4096);
    for (char c : {'G', 'G', 'U', 'F'}) header.push_back(static_cast<std::byte>(c));
    detail::store_le(header, version_, 4);
    detail::store_le(header, infos.size(), 8);
    detail::store_le(header, kvs_.size(), 8);
    for (const GgufKv& kv : kvs_) {
      put_string(header, kv.key);
      detail::store_le(header, static_cast<std::uint32_t>(kv.value.type()), 4);
      header.insert(header.end(), kv.value.encoded().begin(), kv.value.encoded().end());
    }
    for (const GgufTensorInfo& t : infos) {
      put_string(header, t.name);
      detail::store_le(header, t.ne.size(), 4);
      for (std::uint64_t d : t.ne) detail::store_le(header, d, 8);
      detail::store_le(header, static_cast<std::uint32_t>(t.type), 4);
      detail::store_le(header, t.offset, 8);
    }
    file.append(header.data(), header.size());
    pad(file, align);
    const std::uint64_t data_start = file.written();
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const Pending& t = tensors_[i];
      const std::uint64_t before = file.written();
      if (before - data_start != infos[i].offset) {
        throw io_error(mhaprune::detail::message(file.final_path(), ": internal error: tensor ",
                                                 detail::quoted(t.name), " starts at data offset ",
                                                 before - data_start, " instead of ", infos[i].offset));
      }
      ByteSink sink(file);
      t.emit(sink);
      const std::uint64_t wrote = file.written() - before;
      if (wrote != t.byte_size) {
        throw io_error(mhaprune::detail::message(file.final_path(), ": tensor ", detail::quoted(t.name),
                                                 ": its data function wrote ", wrote, " bytes instead of ",
                                                 t.byte_size, " (", to_string(t.type), ' ',
                                                 detail::ne_string(t.ne), "); nothing was written"));
      }
      pad(file, align);
    }
  }

  std::uint32_t version_;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string, std::size_t> kv_index_;
  std::vector<Pending> tensors_;
  std::unordered_map<std::string, std::size_t> tensor_index_;
};

}  // namespace mhaprune::io
