// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Reading and writing single safetensors files: bit-identical round trips for every dtype,
// byte-identical files, the reference writer's exact bytes, zero-copy access, Eigen inputs of any
// layout, and conversions on read and write.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mhaprune/io/safetensors.hpp"
#include "test_safetensors_support.hpp"

namespace test_safetensors_roundtrip {

using namespace mhaprune::io;
using mhaprune_test::Bytes;
using mhaprune_test::read_file;
using mhaprune_test::ScratchDir;

namespace {

/// `n` random bytes, including NaN/Inf/subnormal bit patterns for the float dtypes.
Bytes random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xFF);
  return out;
}

/// A writer holding one tensor of every kind the round trip must preserve: the four float dtypes
/// as raw bytes (every bit pattern, NaN payloads included), an I64 and a U8 pass-through tensor,
/// a scalar, an empty tensor and a 3-D one.
struct Fixture {
  Bytes f64 = random_bytes(5 * 7 * 8, 1), f32 = random_bytes(6 * 4 * 4, 2), f16 = random_bytes(9 * 2, 3),
        bf16 = random_bytes(3 * 5 * 2, 4), i64 = random_bytes(4 * 8, 5), u8 = random_bytes(13, 6),
        scalar = random_bytes(4, 7), cube = random_bytes(2 * 3 * 4 * 2, 8);
  Bytes empty;

  void add_to(SafetensorsWriter& w) const {
    w.add("layer.f64", Dtype::F64, {5, 7}, mhaprune_test::span(f64));
    w.add("layer.f32", Dtype::F32, {6, 4}, mhaprune_test::span(f32));
    w.add("layer.f16", Dtype::F16, {9}, mhaprune_test::span(f16));
    w.add("layer.bf16", Dtype::BF16, {3, 5}, mhaprune_test::span(bf16));
    w.add("ids.i64", Dtype::I64, {4}, mhaprune_test::span(i64));
    w.add("mask.u8", Dtype::U8, {13}, mhaprune_test::span(u8));
    w.add("scale", Dtype::F32, {}, mhaprune_test::span(scalar));
    w.add("nothing", Dtype::BF16, {0, 16}, mhaprune_test::span(empty));
    w.add("cube", Dtype::F16, {2, 3, 4}, mhaprune_test::span(cube));
  }
};

bool same_bytes(ByteSpan a, const Bytes& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

/// The bytes of a file made by hand: length, header text, data.
Bytes file_bytes(const std::string& header, const Bytes& data) {
  Bytes out = mhaprune_test::raw_file(header, 0);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T>
Bytes bytes_of(const std::vector<T>& values) {
  Bytes out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace

TEST_CASE("round trip: every dtype's bytes come back unchanged, through raw bytes and through Eigen",
          "[io][roundtrip]") {
  ScratchDir dir;
  const Fixture fx;
  SafetensorsWriter first;
  fx.add_to(first);
  first.set_metadata({{"format", "pt"}, {"note", "round trip"}});
  first.write(dir / "a.safetensors");

  const SafetensorsReader a(dir / "a.safetensors");
  REQUIRE(a.tensors().size() == 9);
  CHECK(a.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "round trip"}});
  CHECK(same_bytes(a.tensor("layer.f64").bytes(), fx.f64));
  CHECK(same_bytes(a.tensor("layer.f32").bytes(), fx.f32));
  CHECK(same_bytes(a.tensor("layer.f16").bytes(), fx.f16));
  CHECK(same_bytes(a.tensor("layer.bf16").bytes(), fx.bf16));
  CHECK(same_bytes(a.tensor("ids.i64").bytes(), fx.i64));
  CHECK(same_bytes(a.tensor("mask.u8").bytes(), fx.u8));
  CHECK(same_bytes(a.tensor("scale").bytes(), fx.scalar));
  CHECK(same_bytes(a.tensor("cube").bytes(), fx.cube));
  CHECK(a.tensor("nothing").bytes().empty());
  CHECK(a.info("cube").shape == Shape{2, 3, 4});
  CHECK(a.info("scale").shape.empty());
  CHECK(a.info("scale").element_count() == 1);
  CHECK(a.info("nothing").shape == Shape{0, 16});
  CHECK(a.info("ids.i64").dtype == Dtype::I64);

  SECTION("copying every tensor through gives a byte-identical file") {
    SafetensorsWriter copy;
    for (const auto& t : a.tensors()) copy.add(t.name, a.view(t));
    copy.set_metadata(a.metadata());
    copy.write(dir / "b.safetensors");
    CHECK(read_file(dir / "b.safetensors") == read_file(dir / "a.safetensors"));
  }

  SECTION("reading the float tensors into Eigen in their own type and writing them back is bit-exact") {
    SafetensorsWriter copy;
    copy.add("layer.f64", a.tensor("layer.f64").read_matrix<double>());
    copy.add("layer.f32", a.tensor("layer.f32").read_matrix<float>());
    copy.add("layer.f16", a.tensor("layer.f16").read_vector<Eigen::half>());
    copy.add("layer.bf16", a.tensor("layer.bf16").read_matrix<Eigen::bfloat16>());
    copy.add("cube", a.tensor("cube").read_flat<Eigen::half>(), Dtype::F16, Shape{2, 3, 4});
    copy.add("scale", a.tensor("scale").read_flat<float>(), Dtype::F32, Shape{});
    copy.add("nothing", a.tensor("nothing").read_matrix<Eigen::bfloat16>());
    for (const char* raw : {"ids.i64", "mask.u8"}) copy.add(raw, a.tensor(raw));
    copy.set_metadata(a.metadata());
    copy.write(dir / "c.safetensors");
    CHECK(read_file(dir / "c.safetensors") == read_file(dir / "a.safetensors"));
  }

  SECTION("the same tensors added in another order give the same bytes") {
    SafetensorsWriter reversed;
    std::vector<TensorInfo> infos = a.tensors();
    for (auto it = infos.rbegin(); it != infos.rend(); ++it) reversed.add(it->name, a.tensor(it->name));
    reversed.set_metadata({{"note", "round trip"}, {"format", "pt"}});
    reversed.write(dir / "d.safetensors");
    reversed.write(dir / "e.safetensors");
    CHECK(read_file(dir / "d.safetensors") == read_file(dir / "a.safetensors"));
    CHECK(read_file(dir / "e.safetensors") == read_file(dir / "a.safetensors"));
  }
}

TEST_CASE("writer output is byte-identical to the reference writer's", "[io][roundtrip]") {
  ScratchDir dir;
  // Hugging Face safetensors' own unit tests (test_serialization, test_empty,
  // test_serialization_forced_alignement) pin these bytes.
  const std::vector<float> values{0, 1, 2, 3, 4, 5};
  {
    SafetensorsWriter w;
    w.add("attn.0", Dtype::F32, {1, 2, 3}, ByteSpan(values));
    w.write(dir / "one.safetensors");
    const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    REQUIRE(header.size() == 64);
    CHECK(read_file(dir / "one.safetensors") == file_bytes(header, bytes_of(values)));
  }
  {
    SafetensorsWriter w;
    w.add("attn0", Dtype::F32, {1, 1, 2, 3}, ByteSpan(values));
    w.write(dir / "aligned.safetensors");
    const std::string header =
        R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + std::string(7, ' ');
    REQUIRE(header.size() == 72);
    CHECK(read_file(dir / "aligned.safetensors") == file_bytes(header, bytes_of(values)));
  }
  {
    SafetensorsWriter w;
    w.write(dir / "empty.safetensors");
    CHECK(read_file(dir / "empty.safetensors") == file_bytes("{}      ", {}));
    w.set_metadata({{"framework", "pt"}});
    w.write(dir / "empty_meta.safetensors");
    CHECK(read_file(dir / "empty_meta.safetensors") == file_bytes(R"({"__metadata__":{"framework":"pt"}})"
                                                                  "     ",
                                                                  {}));
    const SafetensorsReader r(dir / "empty_meta.safetensors");
    CHECK(r.tensors().empty());
    CHECK(r.metadata().at("framework") == "pt");
  }
}

TEST_CASE("file layout: dtype-descending then name order, contiguous offsets, every tensor aligned",
          "[io][roundtrip]") {
  ScratchDir dir;
  SafetensorsWriter w;
  const Bytes one(1), two(2), three(3);
  const std::vector<double> d(3, 1.0);
  const std::vector<std::uint16_t> h(3, 0x3C00);
  w.add("z.u8", Dtype::U8, {3}, mhaprune_test::span(three));
  w.add("a.u8", Dtype::U8, {1}, mhaprune_test::span(one));
  w.add("b.f16", Dtype::F16, {3}, ByteSpan(h));
  w.add("c.f64", Dtype::F64, {3}, ByteSpan(d));
  w.add("m.bool", Dtype::BOOL, {2}, mhaprune_test::span(two));
  const auto layout = w.layout();
  REQUIRE(layout.size() == 5);
  CHECK(layout[0].name == "c.f64");
  CHECK(layout[1].name == "b.f16");
  CHECK(layout[2].name == "a.u8");
  CHECK(layout[3].name == "z.u8");
  CHECK(layout[4].name == "m.bool");
  std::uint64_t offset = 0;
  for (const auto& t : layout) {
    CHECK(t.begin == offset);
    offset = t.end;
  }
  CHECK(offset == w.data_size());
  w.write(dir / "x.safetensors");
  const SafetensorsReader r(dir / "x.safetensors");
  CHECK(r.header().header_length() % 8 == 0);
  CHECK(r.header().data_offset() + r.header().data_size() == r.file_bytes().size());
  for (const auto& t : r.tensors()) {
    const auto address = reinterpret_cast<std::uintptr_t>(r.bytes(t).data());
    CHECK(address % (dtype_bits(t.dtype) / 8) == 0);
  }
  CHECK(r.tensor("c.f64").map_vector<double>()(2) == 1.0);
  CHECK(static_cast<float>(r.tensor("b.f16").map_vector<Eigen::half>()(0)) == 1.0f);
}

TEST_CASE("reading is zero-copy: views and maps point into the file's memory map", "[io][roundtrip]") {
  ScratchDir dir;
  Eigen::MatrixXf m = Eigen::MatrixXf::Random(17, 9);
  SafetensorsWriter w;
  w.add("m", m);
  w.write(dir / "m.safetensors");
  SafetensorsReader r(dir / "m.safetensors");
  const TensorView v = r.tensor("m");
  const std::byte* begin = r.file_bytes().data();
  const std::byte* end = begin + r.file_bytes().size();
  CHECK(v.bytes().data() >= begin);
  CHECK(v.bytes().data() + v.bytes().size() == end);
  const auto map = v.map_matrix<float>();
  CHECK(reinterpret_cast<const std::byte*>(map.data()) == v.bytes().data());
  CHECK(map.rows() == 17);
  CHECK(map.cols() == 9);
  CHECK(map == m);  // a column-major input was stored row-major, as the caller sees it
  CHECK(v.read_matrix<float>() == m);
  // A moved reader keeps its map where it was.
  SafetensorsReader moved(std::move(r));
  CHECK(moved.tensor("m").bytes().data() == v.bytes().data());
  CHECK(v.map_matrix<float>() == m);
}

TEMPLATE_TEST_CASE("Eigen inputs of any layout are written in row-major order as the caller sees them",
                   "[io][roundtrip]", float, double, Eigen::half, Eigen::bfloat16) {
  using T = TestType;
  using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  ScratchDir dir;
  RowMajor base(6, 5);
  for (Eigen::Index i = 0; i < base.rows(); ++i) {
    for (Eigen::Index j = 0; j < base.cols(); ++j) base(i, j) = T(static_cast<float>(i * 10 + j));
  }
  const ColMajor col = base;
  SafetensorsWriter w;
  w.add("row", base);
  w.add("col", col);
  w.add("block", base.block(1, 1, 3, 2));
  w.add("col_block", col.block(2, 0, 4, 3));
  w.add("transposed", base.transpose());
  w.add("row_of_col", col.row(4));      // compile-time vector: stored 1-D
  w.add("column_of_row", base.col(3));  // strided vector
  w.add("map", Eigen::Map<const RowMajor>(base.data(), 5, 6));
  w.add("owned", RowMajor(base * T(2)));  // an rvalue: the writer keeps it
  w.add("as_f32", base, Dtype::F32);
  w.add("as_bf16", col, Dtype::BF16);
  w.add("as_4d", base, Dtype::F64, Shape{2, 3, 5, 1});
  w.write(dir / "layouts.safetensors");

  const SafetensorsReader r(dir / "layouts.safetensors");
  const auto read = [&](const char* name) { return r.tensor(name).template read_matrix<double>(); };
  const Eigen::MatrixXd expected = base.template cast<float>().template cast<double>();
  CHECK(read("row") == expected);
  CHECK(read("col") == expected);
  CHECK(read("block") == expected.block(1, 1, 3, 2));
  CHECK(read("col_block") == expected.block(2, 0, 4, 3));
  CHECK(read("transposed") == expected.transpose());
  CHECK(r.info("row_of_col").shape == Shape{5});
  CHECK(r.tensor("row_of_col").template read_vector<double>() == expected.row(4).transpose());
  CHECK(r.info("column_of_row").shape == Shape{6});
  CHECK(r.tensor("column_of_row").template read_vector<double>() == expected.col(3));
  CHECK(r.info("map").shape == Shape{5, 6});
  CHECK(r.tensor("map").template read_flat<double>() == r.tensor("row").template read_flat<double>());
  CHECK(read("owned") == 2 * expected);
  CHECK(r.info("as_f32").dtype == Dtype::F32);
  CHECK(read("as_f32") == expected);
  CHECK(r.info("as_bf16").dtype == Dtype::BF16);
  CHECK(read("as_bf16") == expected);  // small integers are exact in bf16
  CHECK(r.info("as_4d").shape == Shape{2, 3, 5, 1});
  CHECK(r.tensor("as_4d").template read_flat<double>() == r.tensor("row").template read_flat<double>());
  CHECK(r.info("row").dtype == dtype_of_v<T>);
}

TEST_CASE("float data stored as BF16 or F16 is rounded once, to nearest even", "[io][roundtrip]") {
  ScratchDir dir;
  Eigen::VectorXf v(6);
  const float tie_even_down = 1.0f + std::ldexp(1.0f, -8), tie_even_up = 1.0f + 3 * std::ldexp(1.0f, -8);
  v << tie_even_down, tie_even_up, std::numeric_limits<float>::infinity(),
      std::numeric_limits<float>::quiet_NaN(), 1e30f, -0.0f;
  Eigen::VectorXd vd = v.cast<double>();
  SafetensorsWriter w;
  w.add("bf16", v, Dtype::BF16);
  w.add("bf16_from_double", vd, Dtype::BF16);
  w.add("f16", v, Dtype::F16);
  w.write(dir / "r.safetensors");
  const SafetensorsReader r(dir / "r.safetensors");
  const auto bits = [&](const char* name) {
    std::vector<std::uint16_t> out(6);
    std::memcpy(out.data(), r.tensor(name).bytes().data(), 12);
    return out;
  };
  CHECK(bits("bf16") == std::vector<std::uint16_t>{0x3F80, 0x3F82, 0x7F80, 0x7FC0, 0x714A, 0x8000});
  CHECK(bits("bf16_from_double") == bits("bf16"));
  // Both values are exact in f16 (10 mantissa bits); 1e30 overflows it.
  CHECK(bits("f16") == std::vector<std::uint16_t>{0x3C04, 0x3C0C, 0x7C00, 0x7E00, 0x7C00, 0x8000});
  const Eigen::VectorXf back = r.tensor("bf16").read_vector<float>();
  CHECK(back(0) == 1.0f);
  CHECK(back(1) == 1.0f + std::ldexp(1.0f, -6));
  CHECK(std::isinf(back(2)));
  CHECK(std::isnan(back(3)));
  CHECK(std::signbit(back(5)));
}

TEST_CASE("reading converts F16/BF16/F32/F64 into float or double; maps need the exact dtype",
          "[io][roundtrip]") {
  ScratchDir dir;
  Eigen::MatrixXd m(2, 3);
  m << 0.5, -1.25, 3.0, 1e-3, 65504.0, -0.0;
  SafetensorsWriter w;
  for (Dtype d : {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16}) w.add(std::string(to_string(d)), m, d);
  w.write(dir / "conv.safetensors");
  const SafetensorsReader r(dir / "conv.safetensors");
  CHECK(r.tensor("F64").read_matrix<double>() == m);
  CHECK(r.tensor("F32").read_matrix<double>() == m.cast<float>().cast<double>());
  CHECK(r.tensor("F16").read_matrix<float>()(1, 1) == 65504.0f);
  CHECK(r.tensor("F16").read_matrix<float>()(1, 0) == Approx(1e-3).epsilon(1e-3));
  CHECK(r.tensor("BF16").read_matrix<float>()(0, 1) == -1.25f);
  CHECK(r.tensor("BF16").read_matrix<double>()(1, 1) == 65536.0);  // 65504 rounds up in bf16
  CHECK(std::signbit(r.tensor("BF16").read_matrix<double>()(1, 2)));

  CHECK(r.tensor("F32").map_matrix<float>()(0, 0) == 0.5f);
  CHECK_THROWS_AS(r.tensor("F32").map_matrix<double>(), mhaprune::unsupported_dtype_error);
  CHECK_THROWS_WITH(r.tensor("BF16").map_matrix<float>(),
                    Catch::Contains("BF16") && Catch::Contains("convert"));
  CHECK_THROWS_AS(r.tensor("F32").read_vector<float>(), mhaprune::shape_error);
  CHECK_THROWS_WITH(r.tensor("F32").read_vector<float>(),
                    Catch::Contains("conv.safetensors") && Catch::Contains("[2, 3]"));
  CHECK(r.tensor("F32").read_flat<float>().size() == 6);
  CHECK(r.tensor("F64").map_flat<double>()(5) == 0.0);
}

TEST_CASE("map_* refuse misaligned data that read_* still handle", "[io][roundtrip]") {
  // A header of odd length (no padding) puts the data section at an odd address.
  ScratchDir dir;
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(header.size() % 4 != 0);
  const std::vector<float> values{1.5f, -2.0f};
  mhaprune_test::write_file(dir / "odd.safetensors", file_bytes(header, bytes_of(values)));
  const SafetensorsReader r(dir / "odd.safetensors");
  CHECK(r.tensor("x").read_vector<float>() == Eigen::Vector2f(1.5f, -2.0f));
  CHECK_THROWS_WITH(r.tensor("x").map_vector<float>(), Catch::Contains("aligned"));
}

TEST_CASE("ParseOptions::allow_gaps accepts padding between and after tensors", "[io][roundtrip]") {
  const std::string header = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                             R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})";
  const Bytes file = mhaprune_test::raw_file(header, 8);
  CHECK_THROWS_AS(parse_header(mhaprune_test::span(file), "gaps"), mhaprune::corrupt_file_error);
  ParseOptions lenient;
  lenient.allow_gaps = true;
  const Header h = parse_header(mhaprune_test::span(file), "gaps", lenient);
  REQUIRE(h.tensors().size() == 2);
  const ByteSpan b = h.bytes(*h.find("b"), mhaprune_test::span(file));
  CHECK(std::to_integer<int>(b.data()[0]) == 4);  // raw_file's data bytes count 0, 1, 2, ...
  CHECK(h.data_size() == 8);
}

}  // namespace test_safetensors_roundtrip
