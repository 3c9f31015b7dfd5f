// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Broken files and misuse: each must fail with an io_error (of the right subtype) whose message
// names the file, the check that failed and the tensor; writer failures must leave no file behind.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "mhaprune/io/safetensors.hpp"
#include "test_safetensors_support.hpp"

namespace test_safetensors_errors {

using namespace mhaprune::io;
using mhaprune::corrupt_file_error;
using mhaprune::io_error;
using mhaprune::missing_tensor_error;
using mhaprune::unsupported_dtype_error;
using mhaprune_test::Bytes;
using mhaprune_test::message_of;
using mhaprune_test::raw_file;
using mhaprune_test::ScratchDir;

namespace {

/// The message of the corrupt_file_error that parsing `file` (named "broken.safetensors") throws.
std::string corrupt(const Bytes& file, const ParseOptions& options = {}) {
  const std::string msg = message_of<corrupt_file_error>(
      [&] { parse_header(mhaprune_test::span(file), "broken.safetensors", options); });
  CHECK_THAT(msg, Catch::StartsWith("broken.safetensors: "));
  return msg;
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets +
         "}";
}

}  // namespace

TEST_CASE("a valid hand-made file parses, as a check on the helpers below", "[io][errors]") {
  const Bytes file = raw_file("{" + entry("w", "F32", "[2,2]", "[0,16]") + "}", 16);
  const Header h = parse_header(mhaprune_test::span(file), "ok");
  REQUIRE(h.tensors().size() == 1);
  CHECK(h.tensors()[0].byte_size() == 16);
}

TEST_CASE("truncated files", "[io][errors]") {
  CHECK_THAT(corrupt({}), Catch::Contains("0 bytes long, too short for the 8-byte header length"));
  CHECK_THAT(corrupt(Bytes(5)), Catch::Contains("5 bytes long"));
  // Header cut short: the length says 100 bytes, 50 follow.
  CHECK_THAT(corrupt(raw_file(100, std::string(50, ' '), 0)),
             Catch::Contains("header length 100 runs past the end of the file: only 50 bytes follow"));
  // Data cut short: the header is whole, the last tensor's bytes are not.
  const std::string header =
      "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[4]", "[8,24]") + "}";
  CHECK_THAT(
      corrupt(raw_file(header, 20)),
      Catch::Contains("tensor \"b\": data_offsets [8, 24] run past the end of the data section, which has 20 "
                      "bytes (file truncated?)"));
}

TEST_CASE("absurd header lengths are refused before anything is allocated", "[io][errors]") {
  CHECK_THAT(corrupt(raw_file(std::uint64_t{1} << 63, "{}", 0)),
             Catch::Contains("header length 9223372036854775808 runs past the end of the file"));
  CHECK_THAT(corrupt(raw_file(~std::uint64_t{0}, "{}", 0)),
             Catch::Contains("header length 18446744073709551615"));
  ParseOptions small;
  small.max_header_bytes = 16;
  const Bytes file = raw_file("{" + entry("w", "U8", "[1]", "[0,1]") + "}", 1);
  CHECK_THAT(corrupt(file, small), Catch::Contains("exceeds the limit of 16 bytes"));
}

TEST_CASE("byte ranges: out of range, overlapping, reversed, gaps, uncovered data", "[io][errors]") {
  SECTION("out of range") {
    CHECK_THAT(corrupt(raw_file("{" + entry("w", "U8", "[4]", "[100,104]") + "}", 8)),
               Catch::Contains("tensor \"w\": data_offsets [100, 104] run past the end of the data section"));
  }
  SECTION("overlapping") {
    const std::string header =
        "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}";
    CHECK_THAT(
        corrupt(raw_file(header, 12)),
        Catch::Contains("tensors \"a\" (data_offsets [0, 8]) and \"b\" (data_offsets [4, 12]) overlap"));
  }
  SECTION("one range inside another") {
    const std::string header =
        "{" + entry("big", "U8", "[8]", "[0,8]") + "," + entry("small", "U8", "[2]", "[2,4]") + "}";
    CHECK_THAT(corrupt(raw_file(header, 8)), Catch::Contains("overlap"));
  }
  SECTION("an empty tensor inside another one's bytes") {
    const std::string header =
        "{" + entry("big", "U8", "[8]", "[0,8]") + "," + entry("none", "U8", "[0]", "[4,4]") + "}";
    CHECK_THAT(corrupt(raw_file(header, 8)), Catch::Contains("overlap"));
  }
  SECTION("reversed") {
    CHECK_THAT(corrupt(raw_file("{" + entry("w", "U8", "[0]", "[8,0]") + "}", 8)),
               Catch::Contains("tensor \"w\": data_offsets [8, 0] end before they begin"));
  }
  SECTION("gap between tensors") {
    const std::string header =
        "{" + entry("a", "U8", "[2]", "[0,2]") + "," + entry("b", "U8", "[2]", "[3,5]") + "}";
    CHECK_THAT(
        corrupt(raw_file(header, 5)),
        Catch::Contains("tensor \"b\": data_offsets [3, 5] leave 1 unused bytes before it (after \"a\")"));
  }
  SECTION("gap at the start") {
    CHECK_THAT(corrupt(raw_file("{" + entry("a", "U8", "[2]", "[2,4]") + "}", 4)),
               Catch::Contains("at the start"));
  }
  SECTION("data after the last tensor") {
    CHECK_THAT(corrupt(raw_file("{" + entry("a", "U8", "[2]", "[0,2]") + "}", 6)),
               Catch::Contains("the data section has 6 bytes but the tensors cover only the first 2"));
    CHECK_THAT(corrupt(raw_file("{}", 3)), Catch::Contains("cover only the first 0"));
  }
  SECTION("overlaps are refused even when gaps are allowed") {
    ParseOptions lenient;
    lenient.allow_gaps = true;
    const std::string header =
        "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}";
    CHECK_THAT(corrupt(raw_file(header, 12), lenient), Catch::Contains("overlap"));
  }
}

TEST_CASE("shape and byte count must agree, without overflow", "[io][errors]") {
  CHECK_THAT(corrupt(raw_file("{" + entry("w", "F32", "[3]", "[0,8]") + "}", 8)),
             Catch::Contains("tensor \"w\": shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8"));
  CHECK_THAT(corrupt(raw_file("{" + entry("w", "BF16", "[2,3]", "[0,6]") + "}", 6)),
             Catch::Contains("shape [2, 3] of BF16 needs 12 bytes"));
  CHECK_THAT(corrupt(raw_file("{" + entry("w", "F16", "[4294967296,4294967296,2]", "[0,8]") + "}", 8)),
             Catch::Contains("tensor \"w\": shape [4294967296, 4294967296, 2] has 2^64 elements or more"));
  CHECK_THAT(corrupt(raw_file("{" + entry("w", "F64", "[4611686018427387904]", "[0,8]") + "}", 8)),
             Catch::Contains("overflows a 64-bit byte count"));
  CHECK_THAT(corrupt(raw_file("{" + entry("w", "F4", "[3]", "[0,1]") + "}", 1)),
             Catch::Contains("does not fill a whole number of bytes"));
  // Sub-byte dtypes otherwise work: 4 F4 values are 2 bytes, 4 F6 values 3.
  const Bytes f4 =
      raw_file("{" + entry("w", "F4", "[4]", "[0,2]") + "," + entry("v", "F6_E2M3", "[4]", "[2,5]") + "}", 5);
  CHECK(parse_header(mhaprune_test::span(f4), "f4").tensors().size() == 2);
}

TEST_CASE("header text: bad JSON, bad UTF-8, not an object, duplicates, nesting", "[io][errors]") {
  CHECK_THAT(corrupt(raw_file("{\"a\": {", 0)), Catch::Contains("header is not valid JSON"));
  CHECK_THAT(corrupt(raw_file("{\"a\":1} x", 0)), Catch::Contains("header is not valid JSON"));
  CHECK_THAT(corrupt(raw_file("{} /* c */", 0)), Catch::Contains("header is not valid JSON"));
  CHECK_THAT(corrupt(raw_file("{\"\xff\":1}", 0)),
             Catch::Contains("header is not valid UTF-8: byte 255 at header offset 2"));
  CHECK_THAT(corrupt(raw_file("{\"\xc0\x80\":1}", 0)), Catch::Contains("not valid UTF-8"));  // overlong NUL
  CHECK_THAT(corrupt(raw_file("{\"\xed\xa0\x80\":1}", 0)), Catch::Contains("not valid UTF-8"));  // surrogate
  CHECK_THAT(corrupt(raw_file("[1,2]", 0)),
             Catch::Contains("header is not a JSON object: it starts with '['"));
  CHECK_THAT(corrupt(raw_file(" {}", 0)), Catch::Contains("it starts with ' '"));
  CHECK_THAT(corrupt(raw_file("", 0)), Catch::Contains("header is empty"));
  CHECK_THAT(corrupt(raw_file(std::string("\0{}", 3), 0)), Catch::Contains("starts with byte 0"));
  const std::string twice =
      "{" + entry("w", "U8", "[1]", "[0,1]") + "," + entry("w", "U8", "[1]", "[1,2]") + "}";
  CHECK_THAT(corrupt(raw_file(twice, 2)), Catch::Contains("header has the key \"w\" twice"));
  CHECK_THAT(corrupt(raw_file("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\"}}", 0)),
             Catch::Contains("\"dtype\" twice"));
  const std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  CHECK_THAT(corrupt(raw_file(deep, 0)), Catch::Contains("nests deeper than 64 levels"));
}

TEST_CASE("tensor entries: missing or mistyped fields", "[io][errors]") {
  const auto one = [](const std::string& body) { return raw_file("{\"w\":" + body + "}", 4); };
  CHECK_THAT(corrupt(one("[1]")), Catch::Contains("tensor \"w\": entry is array [1], not an object"));
  CHECK_THAT(corrupt(one(R"({"shape":[4],"data_offsets":[0,4]})")),
             Catch::Contains("tensor \"w\": missing \"dtype\""));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","data_offsets":[0,4]})")),
             Catch::Contains("tensor \"w\": missing \"shape\""));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[4]})")),
             Catch::Contains("tensor \"w\": missing \"data_offsets\""));
  CHECK_THAT(corrupt(one(R"({"dtype":8,"shape":[4],"data_offsets":[0,4]})")),
             Catch::Contains("\"dtype\" is number 8, not a string"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":4,"data_offsets":[0,4]})")),
             Catch::Contains("\"shape\" is number 4, not an array"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[-4],"data_offsets":[0,4]})")),
             Catch::Contains("tensor \"w\": shape entry 0 is number -4, not a non-negative integer"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[2,2.0],"data_offsets":[0,4]})")),
             Catch::Contains("shape entry 1 is number 2.0, not a non-negative integer"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[1e20],"data_offsets":[0,4]})")),
             Catch::Contains("shape entry 0"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":["4"],"data_offsets":[0,4]})")),
             Catch::Contains("shape entry 0 is string \"4\""));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4,8]})")),
             Catch::Contains("\"data_offsets\" is array [0,4,8], not an array of two integers"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[4],"data_offsets":[-1,4]})")),
             Catch::Contains("\"data_offsets\" entry is number -1"));
  CHECK_THAT(corrupt(one(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4.5]})")),
             Catch::Contains("\"data_offsets\" entry is number 4.5"));
  // Unknown fields are ignored, as the reference reader ignores them.
  CHECK_NOTHROW(parse_header(
      mhaprune_test::span(one(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4],"x":1})")), "x"));
}

TEST_CASE("metadata must be an object of strings", "[io][errors]") {
  CHECK_THAT(corrupt(raw_file(R"({"__metadata__":[]})", 0)),
             Catch::Contains("\"__metadata__\" is array [], not an object"));
  CHECK_THAT(corrupt(raw_file(R"({"__metadata__":{"epoch":3}})", 0)),
             Catch::Contains("\"__metadata__\" entry \"epoch\" is number 3, not a string"));
  const Bytes ok = raw_file(R"({"__metadata__":{"format":"pt","b":""}})", 0);
  CHECK(parse_header(mhaprune_test::span(ok), "m").metadata().at("format") == "pt");
}

TEST_CASE("unknown dtypes are unsupported; known ones are accepted until converted", "[io][errors]") {
  const Bytes q4 = raw_file("{" + entry("w", "Q4", "[4]", "[0,2]") + "}", 2);
  const std::string msg =
      message_of<unsupported_dtype_error>([&] { parse_header(mhaprune_test::span(q4), "q4.st"); });
  CHECK_THAT(msg, Catch::StartsWith("q4.st: tensor \"w\": unknown dtype \"Q4\" (known: BOOL, F4"));

  ScratchDir dir;
  const Bytes ints = raw_file(
      "{" + entry("ids", "I64", "[2]", "[0,16]") + "," + entry("f8", "F8_E4M3", "[2]", "[16,18]") + "}", 18);
  mhaprune_test::write_file(dir / "ints.safetensors", ints);
  const SafetensorsReader r(dir / "ints.safetensors");
  CHECK(r.tensor("ids").bytes().size() == 16);  // listed and readable as bytes
  const std::string convert =
      message_of<unsupported_dtype_error>([&] { r.tensor("ids").read_flat<float>(); });
  CHECK_THAT(convert, Catch::Contains("ints.safetensors: tensor \"ids\": cannot convert dtype I64"));
  CHECK_THROWS_AS(r.tensor("f8").read_vector<double>(), unsupported_dtype_error);
  CHECK_THROWS_AS(r.tensor("f8").map_vector<float>(), unsupported_dtype_error);
}

TEST_CASE("files on disk: the path is in every message", "[io][errors]") {
  ScratchDir dir;
  const std::string missing = dir / "missing.safetensors";
  CHECK_THAT(message_of<io_error>([&] { SafetensorsReader r(missing); }),
             Catch::Contains(missing) && Catch::Contains("No such file or directory"));
  CHECK_THAT(message_of<io_error>([&] { SafetensorsReader r(dir.path()); }),
             Catch::Contains("not a regular file"));
  mhaprune_test::write_file(dir / "empty.safetensors", {});
  CHECK_THAT(message_of<corrupt_file_error>([&] { SafetensorsReader r(dir / "empty.safetensors"); }),
             Catch::StartsWith(dir / "empty.safetensors") && Catch::Contains("0 bytes long"));
  mhaprune_test::write_file(dir / "bad.safetensors",
                            raw_file("{" + entry("w", "F32", "[3]", "[0,8]") + "}", 8));
  CHECK_THAT(message_of<corrupt_file_error>([&] { SafetensorsReader r(dir / "bad.safetensors"); }),
             Catch::StartsWith(dir / "bad.safetensors: tensor \"w\": shape [3]"));

  MappedFile empty(dir / "empty.safetensors");
  CHECK(empty.size() == 0);
  CHECK(empty.bytes().empty());
  MappedFile moved = std::move(empty);
  CHECK(moved.path() == dir / "empty.safetensors");
}

TEST_CASE("a missing tensor name lists similar names", "[io][errors]") {
  ScratchDir dir;
  SafetensorsWriter w;
  const Bytes four(4);
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                           "model.layers.0.mlp.up_proj.weight", "lm_head.weight", "model.embed_tokens.weight",
                           "model.norm.weight", "model.layers.1.self_attn.q_proj.weight"}) {
    w.add(name, Dtype::U8, {4}, mhaprune_test::span(four));
  }
  w.write(dir / "m.safetensors");
  const SafetensorsReader r(dir / "m.safetensors");
  const std::string msg =
      message_of<missing_tensor_error>([&] { r.tensor("model.layers.0.self_attn.v_proj.weight"); });
  CHECK_THAT(msg,
             Catch::StartsWith(dir / "m.safetensors: no tensor \"model.layers.0.self_attn.v_proj.weight\""));
  CHECK_THAT(msg, Catch::Contains("the file has 7 tensors, e.g. \"model.layers.0.self_attn.k_proj.weight\", "
                                  "\"model.layers.0.self_attn.q_proj.weight\""));
  CHECK_THAT(msg, Catch::EndsWith(", ...)"));
  CHECK_FALSE(r.contains("nope"));
  CHECK_THROWS_AS(r.info("nope"), missing_tensor_error);
}

TEST_CASE("writer misuse is refused when the tensor is added", "[io][errors]") {
  SafetensorsWriter w;
  const Bytes eight(8);
  w.add("a", Dtype::U8, {8}, mhaprune_test::span(eight));
  CHECK_THAT(message_of<io_error>([&] { w.add("a", Dtype::U8, {8}, mhaprune_test::span(eight)); }),
             Catch::Contains("tensor \"a\" was already added"));
  CHECK_THAT(message_of<io_error>([&] { w.add("b", Dtype::F32, {3}, mhaprune_test::span(eight)); }),
             Catch::Contains("tensor \"b\": shape [3] of F32 needs 12 bytes, got 8"));
  CHECK_THAT(message_of<io_error>([&] { w.add("__metadata__", Dtype::U8, {8}, mhaprune_test::span(eight)); }),
             Catch::Contains("reserved"));
  CHECK_THAT(message_of<io_error>([&] { w.add("\xff", Dtype::U8, {8}, mhaprune_test::span(eight)); }),
             Catch::Contains("not valid UTF-8"));
  CHECK_THAT(message_of<io_error>([&] { w.add("c", Dtype::F4, {3}, mhaprune_test::span(eight)); }),
             Catch::Contains("whole number of bytes"));
  const Eigen::MatrixXf m = Eigen::MatrixXf::Zero(2, 3);
  CHECK_THAT(message_of<unsupported_dtype_error>([&] { w.add("d", m, Dtype::I64); }),
             Catch::Contains("cannot store Eigen data as I64"));
  CHECK_THAT(message_of<io_error>([&] { w.add("e", m, Dtype::F32, Shape{7}); }),
             Catch::Contains("shape [7] does not have the 6 elements of the 2x3 Eigen object"));
  CHECK_THAT(message_of<io_error>([&] {
               w.set_metadata({{"k", "\xc3"}});
             }),
             Catch::Contains("not valid UTF-8"));
  CHECK(w.size() == 1);  // nothing half-added
}

TEST_CASE("a failed write leaves neither a temporary nor a final file", "[io][errors]") {
  ScratchDir dir;
  const Bytes big(3u << 20);  // larger than the write buffer: written mid-stream
  SafetensorsWriter w;
  w.add("big", Dtype::U8, {big.size()}, mhaprune_test::span(big));

  SECTION("destination directory does not exist") {
    const std::string target = dir / "no/such/dir/model.safetensors";
    CHECK_THAT(message_of<io_error>([&] { w.write(target); }),
               Catch::Contains(target) && Catch::Contains("No such file or directory"));
    CHECK(dir.entries().empty());
  }
  SECTION("destination directory is not writable") {
    // /proc refuses new files even to root, unlike a chmod-ed directory.
    CHECK_THAT(message_of<io_error>([&] { w.write("/proc/mhaprune-test.safetensors"); }),
               Catch::Contains("/proc/mhaprune-test.safetensors: cannot create a temporary file in /proc"));
  }
  SECTION("the final name is a directory: the rename fails after a complete write") {
    std::filesystem::create_directory(dir / "model.safetensors");
    CHECK_THAT(message_of<io_error>([&] { w.write(dir / "model.safetensors"); }),
               Catch::Contains("cannot rename"));
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    CHECK(std::filesystem::is_directory(dir / "model.safetensors"));
  }
  SECTION("the disk fills up mid-write: an earlier file under the final name survives intact") {
    SafetensorsWriter small;
    const Bytes four(4, std::byte{7});
    small.add("old", Dtype::U8, {4}, mhaprune_test::span(four));
    small.write(dir / "model.safetensors");
    const Bytes before = mhaprune_test::read_file(dir / "model.safetensors");

    // RLIMIT_FSIZE makes write() fail with EFBIG past 1 MiB, like a full disk.
    struct rlimit old_limit;
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = old_limit;
    limit.rlim_cur = 1u << 20;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
    std::string msg;
    try {
      w.write(dir / "model.safetensors");
    } catch (const io_error& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    ::signal(SIGXFSZ, old_handler);
    CHECK_THAT(msg, Catch::Contains("cannot write temporary file") && Catch::Contains("File too large"));
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    CHECK(mhaprune_test::read_file(dir / "model.safetensors") == before);
  }
}

TEST_CASE("a successful write replaces the previous file and leaves no temporary", "[io][errors]") {
  ScratchDir dir;
  for (int round = 0; round < 3; ++round) {
    SafetensorsWriter w;
    const Bytes data(static_cast<std::size_t>(round + 1), std::byte{1});
    w.add("t", Dtype::U8, {data.size()}, mhaprune_test::span(data));
    WriteOptions options;
    options.durable = round % 2 == 0;
    w.write(dir / "model.safetensors", options);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    CHECK(SafetensorsReader(dir / "model.safetensors").info("t").byte_size() == data.size());
  }
}

#ifdef MHAPRUNE_TEST_SOURCE_DIR
TEST_CASE("the fuzz seed corpus: valid seeds parse, broken ones fail with an io_error", "[io][errors]") {
  const std::string dir = std::string(MHAPRUNE_TEST_SOURCE_DIR) + "/fuzz/corpus";
  int valid = 0, broken = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const Bytes file = mhaprune_test::read_file(e.path().string());
    INFO(name);
    if (name.rfind("valid-", 0) == 0) {
      CHECK_NOTHROW(parse_header(mhaprune_test::span(file), name));
      ++valid;
    } else if (name.rfind("broken-", 0) == 0) {
      CHECK_THAT(message_of<io_error>([&] { parse_header(mhaprune_test::span(file), name); }),
                 Catch::StartsWith(name + ": "));
      ++broken;
    }
  }
  CHECK(valid >= 5);
  CHECK(broken >= 15);
}

TEST_CASE("the writer lays files out as the corpus generator's model of the reference writer",
          "[io][errors]") {
  // tests/fuzz/make_corpus.py builds valid-* with Python's json and struct, independently of this
  // writer: the bytes must match.
  const std::string dir = std::string(MHAPRUNE_TEST_SOURCE_DIR) + "/fuzz/corpus";
  for (const char* name :
       {"valid-f32", "valid-empty", "valid-metadata", "valid-mixed", "valid-every-dtype"}) {
    INFO(name);
    const Bytes original = mhaprune_test::read_file(dir + "/" + name);
    const Header h = parse_header(mhaprune_test::span(original), name);
    SafetensorsWriter w;
    for (const auto& t : h.tensors())
      w.add(t.name, t.dtype, t.shape, h.bytes(t, mhaprune_test::span(original)));
    w.set_metadata(h.metadata());
    ScratchDir out;
    w.write(out / "copy.safetensors");
    CHECK(mhaprune_test::read_file(out / "copy.safetensors") == original);
  }
}
#endif

}  // namespace test_safetensors_errors
