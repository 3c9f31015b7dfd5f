// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target: arbitrary bytes as a whole GGUF file. parse_gguf must either throw an
// exception derived from mhaprune::error whose message starts with the file name, or return a
// header whose every promise holds (checked below; each broken promise traps): KVs re-decode to
// themselves, tensors are packed by ggml's rule inside the file, sizes match shapes, names are
// short and unique. Every tensor byte is read (ASan checks the bounds). An accepted file is then
// written again by GgufWriter and read back through GgufReader, which must give the same KVs,
// tensor infos and data. See tests/fuzz/README.md.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mhaprune/io/gguf.hpp"

namespace {

using namespace mhaprune::io;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

void check_value(const GgufValue& v) {
  std::size_t consumed = 0;
  const GgufValue again =
      GgufValue::decode(static_cast<std::uint32_t>(v.type()), ByteSpan(v.encoded()), consumed);
  require(again == v && consumed == v.encoded().size());
  (void)v.to_display_string(3);
  require(v.as_int().has_value() <= (detail::is_gguf_integer(v.type()) || v.type() == GgufType::BOOL));
  require(v.as_string().has_value() == (v.type() == GgufType::STRING));
  if (const auto items = v.as_string_array()) require(items->size() == v.count());
  if (const auto items = v.as_int_array()) require(items->size() == v.count());
  require(v.is_array() || v.count() == 1);
}

void check_header(const GgufHeader& h, ByteSpan file, bool lenient) {
  require(h.version() == 2 || h.version() == 3);
  const std::uint64_t a = h.alignment();
  require(a != 0 && (a & (a - 1)) == 0);
  require(h.header_size() <= h.data_offset() && h.data_offset() <= file.size());
  require(h.file_size() == file.size());
  for (const GgufKv& kv : h.kvs()) {
    require(!kv.key.empty() && h.find(kv.key) == &kv.value);
    check_value(kv.value);
  }
  std::uint64_t expected = 0;
  for (const GgufTensorInfo& t : h.tensors()) {
    require(h.data_offset() % a == 0);
    require(t.name.size() < 64 && h.find_tensor(t.name) == &t);
    require(!t.ne.empty() && t.ne.size() <= 4);
    const GgmlTypeTraits& traits = ggml_traits(t.type);
    require(t.ne[0] % traits.block_size == 0);
    std::uint64_t elements = 1, bytes = 0;
    for (std::uint64_t d : t.ne) require(!__builtin_mul_overflow(elements, d, &elements));
    require(!__builtin_mul_overflow(elements / traits.block_size, std::uint64_t{traits.type_size}, &bytes));
    require(bytes == t.byte_size && t.rows() * t.row_bytes() == bytes && t.element_count() == elements);
    require(t.offset == expected && t.offset % a == 0);
    const ByteSpan data = h.bytes(t, file);
    require(data.size() == t.byte_size);
    require(data.empty() || (data.data() >= file.data() && data.end() <= file.end()));
    unsigned sum = 0;
    for (std::byte b : data) sum += std::to_integer<unsigned>(b);
    (void)sum;
    expected += (t.byte_size + a - 1) / a * a;
  }
  require(h.data_size() == expected);
  if (!lenient) require(h.data_offset() + h.data_size() <= file.size());
}

/// A scratch directory for the write-and-read-back check, removed at exit. Its path is a plain
/// char array: an atexit handler may run after a static std::string is destroyed.
char scratch_dir[4096];
char scratch_file[4096 + 16];

const char* scratch_path() {
  if (scratch_dir[0] == '\0') {
    // Memory-backed /dev/shm when there is one: a file is written for every accepted input.
    const char* base = std::getenv("TMPDIR");
    if (base == nullptr || *base == '\0') base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::snprintf(scratch_dir, sizeof scratch_dir, "%s/mhaprune-fuzz-gguf-XXXXXX", base);
    require(::mkdtemp(scratch_dir) != nullptr);
    std::snprintf(scratch_file, sizeof scratch_file, "%s/f.gguf", scratch_dir);
    std::atexit([] {
      ::unlink(scratch_file);
      ::rmdir(scratch_dir);
    });
  }
  return scratch_file;
}

void round_trip(const GgufHeader& h, ByteSpan file) {
  GgufWriter w(h.version());
  for (const GgufKv& kv : h.kvs()) w.add_kv(kv.key, kv.value);
  for (const GgufTensorInfo& t : h.tensors()) w.add_tensor(t.name, t.type, t.ne, h.bytes(t, file));
  const std::string path = scratch_path();
  w.write(path, WriteOptions{false});
  const GgufReader r(path);
  require(r.kvs().size() == h.kvs().size() && r.tensors().size() == h.tensors().size());
  for (std::size_t i = 0; i < h.kvs().size(); ++i)
    require(r.kvs()[i].key == h.kvs()[i].key && r.kvs()[i].value == h.kvs()[i].value);
  for (std::size_t i = 0; i < h.tensors().size(); ++i) {
    const GgufTensorInfo &a = h.tensors()[i], &b = r.tensors()[i];
    require(a.name == b.name && a.ne == b.ne && a.type == b.type && a.offset == b.offset &&
            a.byte_size == b.byte_size);
    const ByteSpan x = h.bytes(a, file), y = r.bytes(b);
    require(std::equal(x.begin(), x.end(), y.begin(), y.end()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan file(data, size);
  for (const bool lenient : {false, true}) {
    ParseGgufOptions options;
    options.allow_missing_final_padding = lenient;
    try {
      const GgufHeader h = parse_gguf(file, "fuzz.gguf", options);
      check_header(h, file, lenient);
      if (!lenient && h.data_size() <= (1u << 20)) round_trip(h, file);
    } catch (const mhaprune::error& e) {
      require(std::string(e.what()).rfind("fuzz.gguf: ", 0) == 0);
    }
  }
  // The value decoder alone: the first 4 bytes are the type.
  if (size >= 4) {
    try {
      std::size_t consumed = 0;
      const auto type = static_cast<std::uint32_t>(detail::load_le(file.data(), 4));
      const GgufValue v = GgufValue::decode(type, file.subspan(4, size - 4), consumed, "fuzz.gguf: value");
      require(consumed <= size - 4);
      check_value(v);
    } catch (const mhaprune::error& e) {
      require(std::string(e.what()).rfind("fuzz.gguf: ", 0) == 0);
    }
  }
  return 0;
}
