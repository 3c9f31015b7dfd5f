// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The GGUF layer: writer/reader round trips (every KV type, block types, alignments, padding),
// v2, split sets, every parser check on hand-encoded broken files (built by a tiny encoder here,
// independent of the writer under test), and writer failures that must leave nothing behind.
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mhaprune/io/gguf.hpp"
#include "test_safetensors_support.hpp"

namespace test_gguf_io {

namespace {

using namespace mhaprune::io;
using mhaprune_test::Bytes;
using mhaprune_test::message_of;
using mhaprune_test::ScratchDir;
using mhaprune_test::span;

// --- A tiny independent little-endian encoder --------------------------------------------------
void put(Bytes& b, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}
void put_str(Bytes& b, const std::string& s) {
  put(b, s.size(), 8);
  for (char c : s) b.push_back(static_cast<std::byte>(c));
}
/// A KV record: key, u32 type, then `value` bytes as given.
Bytes kv(const std::string& key, std::uint32_t type, const Bytes& value) {
  Bytes b;
  put_str(b, key);
  put(b, type, 4);
  b.insert(b.end(), value.begin(), value.end());
  return b;
}
Bytes le(std::uint64_t v, int n) {
  Bytes b;
  put(b, v, n);
  return b;
}
Bytes str_value(const std::string& s) {
  Bytes b;
  put_str(b, s);
  return b;
}

struct RawTensor {
  std::string name;
  std::vector<std::uint64_t> ne;
  std::uint32_t type;
  std::uint64_t offset;
};

/// A GGUF file described field by field, so a test can break exactly one.
struct RawFile {
  std::uint32_t version = 3;
  std::vector<Bytes> kvs = {kv("general.architecture", 8, str_value("llama"))};
  // a: F32 {4, 2} = 32 bytes; b: Q8_0 {32} = 34 bytes (padded 64); c: F16 {3} = 6 bytes (padded 32).
  std::vector<RawTensor> tensors = {{"a", {4, 2}, 0, 0}, {"b", {32}, 8, 32}, {"c", {3}, 1, 96}};
  std::uint64_t align = 32;
  std::int64_t n_kv = -1, n_tensors = -1;  // -1: the real counts
  std::uint64_t data_bytes = 128;          // the padded sum of the tensors above

  Bytes bytes() const {
    Bytes b;
    for (char c : std::string("GGUF")) b.push_back(static_cast<std::byte>(c));
    put(b, version, 4);
    put(b, n_tensors >= 0 ? static_cast<std::uint64_t>(n_tensors) : tensors.size(), 8);
    put(b, n_kv >= 0 ? static_cast<std::uint64_t>(n_kv) : kvs.size(), 8);
    for (const Bytes& k : kvs) b.insert(b.end(), k.begin(), k.end());
    for (const RawTensor& t : tensors) {
      put_str(b, t.name);
      put(b, t.ne.size(), 4);
      for (std::uint64_t d : t.ne) put(b, d, 8);
      put(b, t.type, 4);
      put(b, t.offset, 8);
    }
    while (b.size() % align != 0) b.push_back(std::byte{0});
    for (std::uint64_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<std::byte>(1 + i % 200));
    return b;
  }
};

/// The corrupt_file_error message of parsing `f` as "bad.gguf"; checks it starts with the path and
/// contains every part.
void expect_corrupt(const Bytes& f, std::initializer_list<std::string> parts) {
  const std::string m = message_of<mhaprune::corrupt_file_error>([&] { parse_gguf(span(f), "bad.gguf"); });
  INFO(m);
  CHECK(m.rfind("bad.gguf: ", 0) == 0);
  for (const std::string& p : parts) CHECK(m.find(p) != std::string::npos);
}

Bytes pattern(std::size_t n, unsigned seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 7 + seed * 13 + 1) % 251);
  return b;
}

std::uint64_t pad(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

TEST_CASE("GGUF round trip: every KV type, block types, alignment, zero padding after every tensor") {
  const std::uint32_t align = GENERATE(0u, 32u, 64u);  // 0: no general.alignment KV (default 32)
  ScratchDir dir;
  GgufWriter w;
  std::vector<GgufKv> kvs = {
      {"general.architecture", GgufValue::string("llama")},
      {"k.u8", GgufValue::uint8(250)},
      {"k.i8", GgufValue::int8(-5)},
      {"k.u16", GgufValue::uint16(65535)},
      {"k.i16", GgufValue::int16(-300)},
      {"k.u32", GgufValue::uint32(4000000000u)},
      {"k.i32", GgufValue::int32(-7)},
      {"k.f32", GgufValue::float32(0.1f)},
      {"k.bool", GgufValue::boolean(true)},
      {"k.u64", GgufValue::uint64(18446744073709551615ull)},
      {"k.i64", GgufValue::int64(-9000000000ll)},
      {"k.f64", GgufValue::float64(-2.5)},
      {"k.str.empty", GgufValue::string("")},
      {"k.arr.i32", GgufValue::int32_array({1, -2, 3})},
      {"k.arr.u32", GgufValue::uint32_array({})},
      {"k.arr.str", GgufValue::string_array({"a", "", "tokens\nwith\tcontrol"})},
      {"k.arr.f32", GgufValue::float32_array({1.5f, -0.25f})},
  };
  if (align != 0) kvs.insert(kvs.begin() + 1, GgufKv{"general.alignment", GgufValue::uint32(align)});
  for (const GgufKv& k : kvs) w.add_kv(k.key, k.value);
  struct T {
    std::string name;
    GgmlType type;
    std::vector<std::uint64_t> ne;
    std::size_t bytes;
  };
  const std::vector<T> tensors = {{"blk.0.attn_q.weight", GgmlType::Q8_0, {64, 3}, 2 * 34 * 3},
                                  {"f32", GgmlType::F32, {3, 2}, 24},
                                  {"q4k", GgmlType::Q4_K, {256, 2}, 144 * 2},
                                  {"f16", GgmlType::F16, {5}, 10},
                                  {"i8.4d", GgmlType::I8, {7, 1, 1, 2}, 14},
                                  {"bf16.last", GgmlType::BF16, {3}, 6}};
  std::vector<Bytes> data;
  data.reserve(tensors.size());  // the streamed callbacks keep pointers to the elements
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    data.push_back(pattern(tensors[i].bytes, static_cast<unsigned>(i)));
    if (i % 2 == 0) {
      w.add_tensor(tensors[i].name, tensors[i].type, tensors[i].ne, span(data.back()));
    } else {  // streamed in two pieces
      const Bytes* d = &data.back();
      w.add_tensor(tensors[i].name, tensors[i].type, tensors[i].ne, [d](ByteSink& sink) {
        sink.append(d->data(), 3);
        sink.append(d->data() + 3, d->size() - 3);
      });
    }
  }
  const std::uint64_t a = align == 0 ? 32 : align;
  REQUIRE(w.alignment() == a);
  REQUIRE(w.tensor_byte_size("q4k") == 288);
  std::uint64_t expected_data = 0;
  for (const T& t : tensors) expected_data += pad(t.bytes, a);
  REQUIRE(w.data_size() == expected_data);
  w.write(dir / "m.gguf", WriteOptions{false});
  REQUIRE(dir.entries() == std::vector<std::string>{"m.gguf"});

  const GgufReader r(dir / "m.gguf");
  const GgufHeader& h = r.header();
  CHECK(h.version() == 3);
  CHECK(h.alignment() == a);
  CHECK(r.fd() >= 0);
  REQUIRE(r.kvs().size() == kvs.size());
  for (std::size_t i = 0; i < kvs.size(); ++i) {
    CHECK(r.kvs()[i].key == kvs[i].key);
    CHECK(r.kvs()[i].value == kvs[i].value);
  }
  CHECK(r.find("k.u8")->as_int() == 250);
  CHECK(r.find("k.i16")->as_int() == -300);
  CHECK(r.find("k.u32")->as_int() == 4000000000ll);
  CHECK(!r.find("k.u64")->as_int());  // 2^64-1 does not fit int64
  CHECK(r.find("k.u64")->to_display_string() == "18446744073709551615");
  CHECK(r.find("k.bool")->as_int() == 1);
  CHECK(r.find("k.f32")->as_double() == Approx(0.1));
  CHECK(r.find("k.f32")->to_display_string() == "0.1");
  CHECK(r.find("k.f64")->as_double() == -2.5);
  CHECK(!r.find("k.f64")->as_int());
  CHECK(r.find("general.architecture")->as_string() == "llama");
  CHECK(r.find("k.str.empty")->as_string() == "");
  CHECK(r.find("k.arr.i32")->as_int_array() == std::vector<std::int64_t>{1, -2, 3});
  CHECK(r.find("k.arr.u32")->as_int_array() == std::vector<std::int64_t>{});
  CHECK(r.find("k.arr.u32")->element_type() == GgufType::UINT32);
  CHECK(r.find("k.arr.str")->as_string_array() == std::vector<std::string>{"a", "", "tokens\nwith\tcontrol"});
  CHECK(r.find("k.arr.str")->count() == 3);
  CHECK(r.find("k.arr.str")->to_display_string(2) == "[\"a\", \"\", ... (3 items)]");
  CHECK(!r.find("k.arr.f32")->as_int_array());
  CHECK(r.find("k.arr.f32")->to_display_string() == "[1.5, -0.25]");
  CHECK(!r.find("k.arr.str")->as_string());
  CHECK(r.find("missing") == nullptr);

  // Layout, checked on the raw bytes: header padding zero, offsets packed, every tensor padded.
  const ByteSpan file = r.file_bytes();
  CHECK(h.data_offset() == pad(h.header_size(), a));
  CHECK(file.size() == h.data_offset() + expected_data);
  CHECK(h.data_size() == expected_data);
  for (std::uint64_t i = h.header_size(); i < h.data_offset(); ++i) CHECK(file.data()[i] == std::byte{0});
  std::uint64_t offset = 0;
  REQUIRE(r.tensors().size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& t = r.tensors()[i];
    CHECK(t.name == tensors[i].name);
    CHECK(t.type == tensors[i].type);
    CHECK(t.ne == tensors[i].ne);
    CHECK(t.offset == offset);
    CHECK(t.offset % a == 0);
    CHECK(t.byte_size == tensors[i].bytes);
    const ByteSpan b = r.bytes(t);
    CHECK(Bytes(b.begin(), b.end()) == data[i]);
    const std::uint64_t end = h.data_offset() + t.offset + t.byte_size;
    for (std::uint64_t j = end; j < h.data_offset() + t.offset + pad(t.byte_size, a); ++j)
      CHECK(file.data()[j] == std::byte{0});
    r.release(t);
    offset += pad(t.byte_size, a);
  }
  CHECK(r.tensor("q4k").rows() == 2);
  CHECK(r.tensor("q4k").row_bytes() == 144);
  CHECK(r.tensor("i8.4d").element_count() == 14);
  const std::string m = message_of<mhaprune::missing_tensor_error>([&] { r.tensor("blk.0.attn_k.weight"); });
  CHECK(m.find("m.gguf: no tensor \"blk.0.attn_k.weight\"") != std::string::npos);
  CHECK(m.find("\"blk.0.attn_q.weight\"") != std::string::npos);

  // Copied through a second writer, KV by KV and tensor by tensor, the file is byte-identical.
  GgufWriter copy;
  for (const GgufKv& k : r.kvs()) copy.add_kv(k.key, k.value);
  for (const GgufTensorInfo& t : r.tensors()) copy.add_tensor(t.name, t.type, t.ne, r.bytes(t));
  copy.write(dir / "copy.gguf", WriteOptions{true});
  CHECK(mhaprune_test::read_file(dir / "copy.gguf") == Bytes(file.begin(), file.end()));
}

TEST_CASE("GGUF v2 files are read; v2 is written on request") {
  RawFile raw;
  raw.version = 2;
  const Bytes f = raw.bytes();
  const GgufHeader h = parse_gguf(span(f), "v2.gguf");
  CHECK(h.version() == 2);
  CHECK(h.tensors().size() == 3);
  CHECK(h.tensor("b").type == GgmlType::Q8_0);
  CHECK(h.tensor("b").offset == 32);
  CHECK(h.find("general.architecture")->as_string() == "llama");

  ScratchDir dir;
  GgufWriter w(2);
  w.add_kv("general.name", GgufValue::string("x"));
  const Bytes d = pattern(4, 1);
  w.add_tensor("t", GgmlType::F32, {1}, span(d));
  w.write(dir / "v2.gguf", WriteOptions{false});
  CHECK(GgufReader(dir / "v2.gguf").header().version() == 2);
  CHECK_THROWS_AS(GgufWriter(1), mhaprune::io_error);
}

TEST_CASE("GGUF split sets: written shard by shard, committed together, opened from any shard") {
  ScratchDir dir;
  const std::string prefix = dir / "model";
  CHECK(gguf_split_path(prefix, 2, 3) == prefix + "-00002-of-00003.gguf");
  CHECK(parse_gguf_split_path(prefix + "-00002-of-00003.gguf") == std::make_tuple(prefix, 2, 3));
  CHECK(!parse_gguf_split_path(prefix + ".gguf"));
  CHECK(!parse_gguf_split_path(prefix + "-00004-of-00003.gguf"));
  CHECK(!parse_gguf_split_path(prefix + "-0001-of-00003.gguf"));

  const Bytes d = pattern(64, 3);
  // Shard i holds tensors "t<i>.0" and "t<i>.1"; `tamper` changes one shard's KVs or tensors.
  const auto write_set = [&](int count, const std::function<void(int, GgufWriter&)>& tamper) {
    std::vector<PendingFile> pending;
    const std::size_t before = dir.entries().size();
    for (int no = 1; no <= count; ++no) {
      GgufWriter w;
      if (no == 1) w.add_kv("general.architecture", GgufValue::string("llama"));
      for (const GgufKv& k : gguf_split_kvs(no, count, 2 * count)) w.add_kv(k.key, k.value);
      for (int j = 0; j < 2; ++j)
        w.add_tensor("t" + std::to_string(no) + "." + std::to_string(j), GgmlType::F32, {16}, span(d));
      tamper(no, w);
      pending.push_back(w.write_pending(gguf_split_path(prefix, no, count), WriteOptions{false}));
    }
    CHECK(dir.entries().size() == before + static_cast<std::size_t>(count));  // under temporary names
    for (const auto& p : pending) CHECK((std::filesystem::exists(p.temp_path()) && !p.committed()));
    if (before == 0)
      for (const auto& p : pending) CHECK(!std::filesystem::exists(p.path()));
    for (auto& p : pending) p.commit();
    CHECK(dir.entries().size() == std::max(before, static_cast<std::size_t>(count)));
  };
  write_set(3, [](int, GgufWriter&) {});
  const GgufReader second(gguf_split_path(prefix, 2, 3));
  const GgufValue* no = second.find("split.no");
  CHECK((no->type() == GgufType::UINT16 && no->as_int() == 1));  // counted from 0, as gguf-split
  for (int from = 1; from <= 3; ++from) {
    const GgufModelFiles m = GgufModelFiles::open(gguf_split_path(prefix, from, 3));
    CHECK(m.is_split());
    CHECK(m.shards().size() == 3);
    CHECK(m.tensor_count() == 6);
    CHECK(m.find("general.architecture")->as_string() == "llama");
    CHECK(m.first().path() == gguf_split_path(prefix, 1, 3));
    std::size_t shard = 99;
    CHECK(m.tensor("t3.1", &shard).ne == std::vector<std::uint64_t>{16});
    CHECK(shard == 2);
    CHECK(m.find_tensor("nope") == nullptr);
    CHECK(Bytes(m.bytes("t2.0").begin(), m.bytes("t2.0").end()) == d);
    m.release("t2.0");
    CHECK(m.tensor_names() == std::vector<std::string>{"t1.0", "t1.1", "t2.0", "t2.1", "t3.0", "t3.1"});
    CHECK_THROWS_AS(m.tensor("nope"), mhaprune::missing_tensor_error);
  }

  // An uncommitted pending file disappears with its object.
  {
    GgufWriter w;
    (void)w.write_pending(dir / "never.gguf", WriteOptions{false});
  }
  CHECK(!std::filesystem::exists(dir / "never.gguf"));
  CHECK(dir.entries().size() == 3);

  SECTION("a missing shard") {
    std::filesystem::remove(gguf_split_path(prefix, 3, 3));
    const std::string m =
        message_of<mhaprune::io_error>([&] { GgufModelFiles::open(prefix + "-00001-of-00003.gguf"); });
    CHECK(m.find("shard 3 of 3 is missing") != std::string::npos);
  }
  SECTION("a shard of another split: split.count disagrees with the name") {
    write_set(3, [](int i, GgufWriter& w) {
      if (i == 2) w.set_kv("split.count", GgufValue::uint16(4));
    });
    const std::string m = message_of<mhaprune::corrupt_file_error>(
        [&] { GgufModelFiles::open(prefix + "-00001-of-00003.gguf"); });
    CHECK(m.find("model-00002-of-00003.gguf: key \"split.count\" is 4") != std::string::npos);
  }
  SECTION("shards swapped: split.no disagrees with the name") {
    std::filesystem::rename(gguf_split_path(prefix, 2, 3), dir / "tmp");
    std::filesystem::rename(gguf_split_path(prefix, 3, 3), gguf_split_path(prefix, 2, 3));
    std::filesystem::rename(dir / "tmp", gguf_split_path(prefix, 3, 3));
    const std::string m = message_of<mhaprune::corrupt_file_error>(
        [&] { GgufModelFiles::open(prefix + "-00003-of-00003.gguf"); });
    CHECK(m.find("model-00002-of-00003.gguf: key \"split.no\" is 2") != std::string::npos);
  }
  SECTION("split.tensors.count disagrees with the tensors found") {
    write_set(3, [](int i, GgufWriter& w) {
      if (i == 3) w.add_tensor("extra", GgmlType::F32, {1}, [](ByteSink& s) { s.append("abcd", 4); });
    });
    const std::string m = message_of<mhaprune::corrupt_file_error>(
        [&] { GgufModelFiles::open(prefix + "-00002-of-00003.gguf"); });
    CHECK(m.find("key \"split.tensors.count\" is 6 but the 3 shards hold 7 tensors") != std::string::npos);
  }
  SECTION("a tensor in two shards") {
    write_set(3, [&](int i, GgufWriter& w) {
      if (i == 3) {
        w.remove_kv("split.tensors.count");  // only shard 1 must have it
        w.add_tensor("t1.0", GgmlType::F32, {16}, span(d));
      }
    });
    const std::string m = message_of<mhaprune::corrupt_file_error>(
        [&] { GgufModelFiles::open(prefix + "-00001-of-00003.gguf"); });
    CHECK(m.find("tensor \"t1.0\" is also in shard 1") != std::string::npos);
  }
  SECTION("a split key of the wrong type, a shard opened by another name") {
    write_set(3, [](int i, GgufWriter& w) {
      if (i == 1) w.set_kv("split.no", GgufValue::uint32(0));
    });
    std::string m = message_of<mhaprune::corrupt_file_error>(
        [&] { GgufModelFiles::open(prefix + "-00001-of-00003.gguf"); });
    CHECK(m.find("key \"split.no\" has type UINT32; gguf-split writes UINT16") != std::string::npos);
    std::filesystem::copy_file(gguf_split_path(prefix, 2, 3), dir / "renamed.gguf");
    m = message_of<mhaprune::corrupt_file_error>([&] { GgufModelFiles::open(dir / "renamed.gguf"); });
    CHECK(m.find("renamed.gguf: key \"split.count\" is 3") != std::string::npos);
  }
}

TEST_CASE("GGUF parser: every prefix of a valid file is reported as corrupt, never read past") {
  const Bytes f = RawFile().bytes();
  REQUIRE_NOTHROW(parse_gguf(span(f), "ok.gguf"));
  ParseGgufOptions lenient;
  lenient.allow_missing_final_padding = true;
  const std::size_t last_data_end = f.size() - 128 + 96 + 6;  // tensor "c" ends 6 bytes into its slot
  for (std::size_t n = 0; n < f.size(); ++n) {
    const Bytes prefix(f.begin(),
                       f.begin() + static_cast<std::ptrdiff_t>(n));  // exact size: ASan sees overreads
    INFO("prefix of " << n << " bytes");
    CHECK_THROWS_AS(parse_gguf(span(prefix), "bad.gguf"), mhaprune::corrupt_file_error);
    if (n >= last_data_end) {
      CHECK_NOTHROW(parse_gguf(span(prefix), "short.gguf", lenient));
    } else {
      CHECK_THROWS_AS(parse_gguf(span(prefix), "bad.gguf", lenient), mhaprune::corrupt_file_error);
    }
  }
  RawFile raw;
  raw.data_bytes = 127;
  expect_corrupt(raw.bytes(), {"tensor \"c\"", "runs past the end of the file", "truncated"});
  raw.data_bytes = 90;
  expect_corrupt(raw.bytes(), {"tensor \"b\"", "runs past the end of the file"});
}

TEST_CASE("GGUF parser: one broken check at a time, each named with its key or tensor") {
  RawFile raw;
  SECTION("magic, version, counts") {
    Bytes f = raw.bytes();
    f[0] = std::byte{'X'};
    expect_corrupt(f, {"bad magic \"XGUF\""});
    raw.version = 1;
    expect_corrupt(raw.bytes(), {"version 1", "no longer supported"});
    raw.version = 4;
    expect_corrupt(raw.bytes(), {"version 4 is newer"});
    raw.version = 0x03000000;
    expect_corrupt(raw.bytes(), {"byte order"});
    raw.version = 3;
    raw.n_kv = 1000000;
    expect_corrupt(raw.bytes(), {"KV count 1000000 cannot fit"});
    raw.n_kv = -1;
    raw.n_tensors = std::int64_t{1} << 40;
    expect_corrupt(raw.bytes(), {"tensor count 1099511627776 cannot fit"});
    raw.n_tensors = -1;
    ParseGgufOptions small;
    small.max_tensor_count = 2;
    const Bytes ok = raw.bytes();
    const std::string m =
        message_of<mhaprune::corrupt_file_error>([&] { parse_gguf(span(ok), "big.gguf", small); });
    CHECK(m.find("big.gguf: tensor count 3 exceeds the limit of 2") == 0);
    Bytes neg = raw.bytes();
    for (int i = 0; i < 8; ++i) neg[8 + i] = std::byte{0xFF};  // n_tensors = -1
    expect_corrupt(neg, {"tensor count -1 is negative"});
  }
  SECTION("keys and values") {
    raw.kvs.push_back(kv("general.name", 8, le(std::uint64_t{1} << 40, 8)));
    expect_corrupt(raw.bytes(), {"key \"general.name\"", "string of 1099511627776 bytes", "past the end"});
    raw.kvs.back() = kv("", 4, le(1, 4));
    expect_corrupt(raw.bytes(), {"key of KV 1 is empty"});
    raw.kvs.back() = kv("general.architecture", 4, le(1, 4));
    expect_corrupt(raw.bytes(), {"key \"general.architecture\" appears twice", "duplicate key"});
    raw.kvs.back() = kv("x.t13", 13, le(0, 4));
    expect_corrupt(raw.bytes(), {"key \"x.t13\"", "value type 13 is not a GGUF type"});
    Bytes nested = le(9, 4);  // element type ARRAY
    put(nested, 1, 8);
    raw.kvs.back() = kv("x.nested", 9, nested);
    expect_corrupt(raw.bytes(), {"key \"x.nested\"", "nested arrays"});
    Bytes big = le(4, 4);  // 2^61 UINT32 items
    put(big, std::uint64_t{1} << 61, 8);
    raw.kvs.back() = kv("x.big", 9, big);
    expect_corrupt(raw.bytes(),
                   {"key \"x.big\"", "array of 2305843009213693952 UINT32 items", "past the end"});
    Bytes strs = le(8, 4);  // 2 strings, the second one too long
    put(strs, 2, 8);
    put_str(strs, "ok");
    put(strs, 1000, 8);
    raw.kvs.back() = kv("x.strs", 9, strs);
    expect_corrupt(raw.bytes(), {"key \"x.strs\"", "array item 1 of 2", "past the end"});
  }
  SECTION("general.alignment") {
    raw.kvs.push_back(kv("general.alignment", 4, le(0, 4)));
    expect_corrupt(raw.bytes(), {"key \"general.alignment\" is 0, not a power of two"});
    raw.kvs.back() = kv("general.alignment", 4, le(3, 4));
    expect_corrupt(raw.bytes(), {"key \"general.alignment\" is 3, not a power of two"});
    raw.kvs.back() = kv("general.alignment", 10, le(32, 8));
    expect_corrupt(raw.bytes(), {"key \"general.alignment\" has type UINT64; it must be UINT32"});
    raw.kvs.back() = kv("general.alignment", 4, le(64, 4));  // valid, but offsets were for 32
    raw.align = 64;
    expect_corrupt(raw.bytes(), {"tensor \"b\"", "data offset 32 is misaligned", "alignment 64"});
  }
  SECTION("tensor infos") {
    raw.tensors[1].ne = {32, 1, 1, 1, 1};
    expect_corrupt(raw.bytes(), {"tensor \"b\": has 5 dimensions; ggml allows at most 4"});
    raw.tensors[1].ne = {std::uint64_t{1} << 62, std::uint64_t{1} << 62};
    expect_corrupt(raw.bytes(), {"tensor \"b\"", "element count overflow"});
    raw.tensors[1].ne = {~std::uint64_t{0}};
    expect_corrupt(raw.bytes(), {"tensor \"b\": ne[0] = -1 is negative"});
    raw.tensors[1].ne = {33};
    expect_corrupt(raw.bytes(),
                   {"tensor \"b\": ne[0] = 33 is not a multiple of the block size 32 of type q8_0"});
    raw.tensors[1].ne = {32};
    for (const std::uint32_t id : {4u, 99u}) {
      raw.tensors[1].type = id;
      const Bytes f = raw.bytes();
      const std::string m =
          message_of<mhaprune::unsupported_dtype_error>([&] { parse_gguf(span(f), "bad.gguf"); });
      CHECK(m.find("bad.gguf: tensor \"b\": unknown ggml type id " + std::to_string(id)) == 0);
    }
    raw.tensors[1].type = 8;
    raw.tensors[2].name = "a";
    expect_corrupt(raw.bytes(),
                   {"tensor \"a\" appears twice (tensor infos 0 and 2)", "duplicate tensor name"});
    raw.tensors[2].name = std::string(64, 'n');
    expect_corrupt(raw.bytes(), {"tensor \"" + std::string(64, 'n') +
                                 "\": name is 64 bytes long; ggml allows at most 63"});
    raw.tensors[2].name = std::string(63, 'n');
    CHECK(parse_gguf(span(raw.bytes()), "ok.gguf").tensors()[2].name.size() == 63);
  }
  SECTION("offsets: ggml's rule, each the padded end of the one before") {
    raw.tensors[2].offset = 128;
    raw.data_bytes = 160;
    expect_corrupt(raw.bytes(),
                   {"tensor \"c\": data offset 128 leaves a gap of 32 bytes after tensor \"b\""});
    raw.tensors[2].offset = 64;
    expect_corrupt(raw.bytes(), {"tensor \"c\": data offset 64 overlaps tensor \"b\""});
    raw.tensors[2].offset = 100;
    expect_corrupt(raw.bytes(), {"tensor \"c\": data offset 100 is misaligned"});
    raw.tensors[0].offset = 32;
    expect_corrupt(raw.bytes(),
                   {"tensor \"a\": data offset 32 leaves a gap of 32 bytes after the data start"});
    raw.tensors[0].offset = 0;
    raw.tensors[2].offset = 96;
    raw.tensors[2].ne = {1u << 20};  // 2 MiB of F16 in a 160-byte data section
    expect_corrupt(raw.bytes(), {"tensor \"c\": data (2097152 bytes", "runs past the end of the file"});
  }
  SECTION("what ggml accepts is accepted: zero dims, ne of 0, no tensors, trailing bytes") {
    raw.tensors = {{"scalar", {}, 0, 0}, {"empty", {0, 5}, 0, 32}, {"v", {2}, 0, 32}};
    raw.data_bytes = 64 + 10;
    const GgufHeader h = parse_gguf(span(raw.bytes()), "ok.gguf");
    CHECK(h.tensors()[0].ne == std::vector<std::uint64_t>{1});
    CHECK(h.tensors()[1].byte_size == 0);
    CHECK(h.data_size() == 64);
    raw.tensors.clear();
    raw.data_bytes = 0;
    CHECK(parse_gguf(span(raw.bytes()), "ok.gguf").tensors().empty());
  }
}

TEST_CASE("GGUF writer: bad input is refused when added; a bad write leaves no file behind") {
  ScratchDir dir;
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::string("llama"));
  CHECK_THROWS_AS(w.add_kv("general.architecture", GgufValue::string("x")), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_kv("", GgufValue::uint32(1)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_kv("general.alignment", GgufValue::uint32(48)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_kv("general.alignment", GgufValue::uint64(64)), mhaprune::io_error);
  w.set_kv("general.architecture", GgufValue::string("deci"));
  CHECK(w.kvs().size() == 1);
  CHECK(w.find("general.architecture")->as_string() == "deci");

  const Bytes d = pattern(34, 0);
  w.add_tensor("q", GgmlType::Q8_0, {32}, span(d));
  CHECK_THROWS_AS(w.add_tensor("q", GgmlType::Q8_0, {32}, span(d)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}, span(d)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_tensor("r", GgmlType::Q8_0, {48}, span(d)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_tensor("r", GgmlType::Q8_0, {64}, span(d)), mhaprune::io_error);  // 34 != 68 bytes
  CHECK_THROWS_AS(w.add_tensor("r", GgmlType::F32, {1, 1, 1, 1, 1}, span(d)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_tensor("r", GgmlType::F32, {}, span(d)), mhaprune::io_error);
  CHECK_THROWS_AS(w.add_tensor("r", GgmlType::F32, {std::uint64_t{1} << 62, 4}, span(d)), mhaprune::io_error);
  CHECK(w.tensor_count() == 1);

  GgufWriter few = w;  // a copy: the same KVs and tensors, plus one whose function writes too little
  few.add_tensor("few", GgmlType::F32, {4}, [&d](ByteSink& s) { s.append(d.data(), 15); });
  std::string m = message_of<mhaprune::io_error>([&] { few.write(dir / "out.gguf", WriteOptions{false}); });
  CHECK(m.rfind(dir / "out.gguf: tensor \"few\": its data function wrote 15 bytes instead of 16", 0) == 0);
  GgufWriter many = w;
  many.add_tensor("many", GgmlType::F32, {4}, [&d](ByteSink& s) { s.append(d.data(), 17); });
  m = message_of<mhaprune::io_error>([&] { many.write(dir / "out.gguf", WriteOptions{false}); });
  CHECK(m.find("tensor \"many\": its data function wrote 17 bytes instead of 16") != std::string::npos);
  m = message_of<mhaprune::io_error>(
      [&] { (void)many.write_pending(dir / "out.gguf", WriteOptions{false}); });
  CHECK(m.find("wrote 17 bytes") != std::string::npos);
  GgufWriter throws = w;
  throws.add_tensor("throws", GgmlType::F32, {1}, [](ByteSink&) { throw std::runtime_error("source gone"); });
  CHECK_THROWS_WITH(throws.write(dir / "out.gguf", WriteOptions{false}), "source gone");
  CHECK(dir.entries().empty());  // no file, no temporary file

  m = message_of<mhaprune::io_error>([&] { w.write(dir / "no/such/dir/out.gguf"); });
  CHECK(m.rfind(dir / "no/such/dir/out.gguf: cannot create a temporary file", 0) == 0);
  CHECK(dir.entries().empty());
  w.write(dir / "ok.gguf", WriteOptions{false});
  CHECK(dir.entries() == std::vector<std::string>{"ok.gguf"});
  const Bytes before = mhaprune_test::read_file(dir / "ok.gguf");
  CHECK_THROWS_AS(few.write(dir / "ok.gguf"), mhaprune::io_error);  // the old file survives whole
  CHECK(mhaprune_test::read_file(dir / "ok.gguf") == before);
  CHECK(dir.entries() == std::vector<std::string>{"ok.gguf"});
  m = message_of<mhaprune::io_error>([&] { GgufReader(dir / "missing.gguf"); });
  CHECK(m.rfind(dir / "missing.gguf: cannot open", 0) == 0);
}

}  // namespace test_gguf_io
