// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Sharded checkpoints: Hugging Face's split and names, the index, round trips through
// ShardedReader, lazy opening, stale files of earlier saves, and broken indexes.
#include <catch2/catch.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mhaprune/io/safetensors.hpp"
#include "test_safetensors_support.hpp"

namespace test_safetensors_sharded {

using namespace mhaprune::io;
using mhaprune::corrupt_file_error;
using mhaprune::io_error;
using mhaprune::missing_tensor_error;
using mhaprune_test::Bytes;
using mhaprune_test::message_of;
using mhaprune_test::read_file;
using mhaprune_test::ScratchDir;

namespace {

/// Tensors with distinct contents: name, dtype, shape.
struct Model {
  Eigen::MatrixXf q = Eigen::MatrixXf::Random(16, 8);      // 512 B as F32
  Eigen::MatrixXd k = Eigen::MatrixXd::Random(8, 8);       // 512 B as F64
  Eigen::MatrixXf v = Eigen::MatrixXf::Random(16, 8);      // 256 B as BF16
  Eigen::VectorXf bias = Eigen::VectorXf::Random(16);      // 32 B as F16
  Eigen::MatrixXf huge = Eigen::MatrixXf::Random(40, 40);  // 6400 B as F32
  std::vector<std::int64_t> ids{3, 1, 4, 1, 5, 9, 2, 6};   // 64 B as I64

  /// Adds in the order the split follows.
  void add_to(SafetensorsWriter& w) const {
    w.add("layers.0.q", q);
    w.add("layers.0.k", k);
    w.add("layers.0.v", v, Dtype::BF16);
    w.add("layers.0.bias", bias, Dtype::F16);
    w.add("embed", huge);
    w.add("ids", Dtype::I64, {8}, ByteSpan(ids));
    w.set_metadata({{"format", "pt"}});
  }
};

ShardOptions max_bytes(std::uint64_t n) {
  ShardOptions o;
  o.max_shard_bytes = n;
  o.write.durable = false;
  return o;
}

nlohmann::json read_json(const std::string& path) {
  const Bytes b = read_file(path);
  return nlohmann::json::parse(reinterpret_cast<const char*>(b.data()),
                               reinterpret_cast<const char*>(b.data()) + b.size());
}

void write_text(const std::string& path, const std::string& text) {
  mhaprune_test::write_file(path, Bytes(reinterpret_cast<const std::byte*>(text.data()),
                                        reinterpret_cast<const std::byte*>(text.data()) + text.size()));
}

}  // namespace

TEST_CASE("sharded write: Hugging Face's split, names and index", "[io][sharded]") {
  ScratchDir dir;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  // 1100-byte shards, in order of addition: q+k (1024); v+bias (288) starts the next shard;
  // embed (6400 > max) gets a shard of its own right away; ids (64) joins v+bias.
  const ShardedWriteResult result = write_sharded(w, dir.path(), max_bytes(1100));
  const std::vector<std::string> expected_files{"model-00001-of-00003.safetensors",
                                                "model-00002-of-00003.safetensors",
                                                "model-00003-of-00003.safetensors"};
  CHECK(result.shard_files == expected_files);
  CHECK(result.index_file == "model.safetensors.index.json");
  CHECK(result.total_size == 512 + 512 + 256 + 32 + 6400 + 64);
  CHECK(result.removed_files.empty());
  CHECK(result.weight_map.at("layers.0.q") == expected_files[0]);
  CHECK(result.weight_map.at("layers.0.k") == expected_files[0]);
  CHECK(result.weight_map.at("embed") == expected_files[1]);
  CHECK(result.weight_map.at("layers.0.v") == expected_files[2]);
  CHECK(result.weight_map.at("layers.0.bias") == expected_files[2]);
  CHECK(result.weight_map.at("ids") == expected_files[2]);

  std::vector<std::string> all = expected_files;
  all.push_back("model.safetensors.index.json");
  CHECK(dir.entries() == all);  // and no temporary file left

  const nlohmann::json index = read_json(dir / "model.safetensors.index.json");
  CHECK(index["metadata"]["total_size"] == result.total_size);
  CHECK(index["weight_map"].size() == 6);
  CHECK(index["weight_map"]["embed"] == expected_files[1]);
  // Hugging Face's json.dumps(indent=2, sort_keys=True) layout, newline-terminated.
  const Bytes raw = read_file(dir / "model.safetensors.index.json");
  const std::string text(reinterpret_cast<const char*>(raw.data()), raw.size());
  CHECK_THAT(text,
             Catch::StartsWith("{\n  \"metadata\": {\n    \"total_size\": 7776\n  },\n  \"weight_map\": {\n"
                               "    \"embed\": \"model-00002-of-00003.safetensors\",\n"));
  CHECK_THAT(text, Catch::EndsWith("}\n}\n"));

  // Each shard is a complete file with exactly its tensors and the writer's metadata.
  for (const auto& file : expected_files) {
    const SafetensorsReader shard(dir / file);
    CHECK(shard.metadata().at("format") == "pt");
    for (const auto& t : shard.tensors()) CHECK(result.weight_map.at(t.name) == file);
  }
  CHECK(SafetensorsReader(dir / expected_files[0]).tensors().size() == 2);
}

TEST_CASE("sharded round trip: every tensor reads back bit-identical, files byte-identical",
          "[io][sharded]") {
  ScratchDir a_dir, b_dir, c_dir;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  const ShardedWriteResult a = write_sharded(w, a_dir.path(), max_bytes(1100));

  const ShardedReader in(a_dir / a.index_file);
  CHECK(in.total_size() == a.total_size);
  CHECK(in.weight_map() == a.weight_map);
  CHECK(in.shard_files() == a.shard_files);
  CHECK(in.tensor("layers.0.q").read_matrix<float>() == model.q);
  CHECK(in.tensor("layers.0.k").map_matrix<double>() == model.k);
  CHECK(in.tensor("layers.0.v").read_matrix<float>().isApprox(model.v, 1e-2f));
  CHECK(in.tensor("layers.0.bias").read_vector<float>().isApprox(model.bias, 1e-3f));
  CHECK(in.tensor("embed").read_matrix<float>() == model.huge);
  CHECK(in.info("ids").dtype == Dtype::I64);
  CHECK(std::memcmp(in.tensor("ids").bytes().data(), model.ids.data(), 64) == 0);

  // Read everything back, write it again with the same split: the same files, byte for byte.
  SafetensorsWriter copy;
  for (const auto& [name, file] : in.weight_map()) copy.add(name, in.tensor(name));
  copy.set_metadata({{"format", "pt"}});
  // The split follows the order of addition: add in the original order.
  SafetensorsWriter ordered;
  for (const char* name : {"layers.0.q", "layers.0.k", "layers.0.v", "layers.0.bias", "embed", "ids"}) {
    ordered.add(name, in.tensor(name));
  }
  ordered.set_metadata({{"format", "pt"}});
  const ShardedWriteResult b = write_sharded(ordered, b_dir.path(), max_bytes(1100));
  CHECK(b.shard_files == a.shard_files);
  for (const auto& f : a.shard_files) CHECK(read_file(b_dir / f) == read_file(a_dir / f));
  CHECK(read_file(b_dir / b.index_file) == read_file(a_dir / a.index_file));

  // One big shard holding everything: the same tensors as one file.
  ShardOptions one = max_bytes(1u << 30);
  const ShardedWriteResult c = write_sharded(copy, c_dir.path(), one);
  CHECK(c.shard_files == std::vector<std::string>{"model.safetensors"});
  CHECK(c.index_file.empty());
  CHECK(c_dir.entries() == std::vector<std::string>{"model.safetensors"});
  w.write(c_dir / "direct.safetensors");
  CHECK(read_file(c_dir / "model.safetensors") == read_file(c_dir / "direct.safetensors"));
}

TEST_CASE("ShardedReader::open takes a directory, an index or a single file", "[io][sharded]") {
  ScratchDir sharded, single;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  write_sharded(w, sharded.path(), max_bytes(1100));
  write_sharded(w, single.path(), max_bytes(1u << 30));

  for (const std::string& path :
       {sharded.path(), sharded.path() + "/", sharded / "model.safetensors.index.json", single.path(),
        single / "model.safetensors"}) {
    const ShardedReader r = ShardedReader::open(path);
    CHECK(r.weight_map().size() == 6);
    CHECK(r.tensor("embed").read_matrix<float>() == model.huge);
  }
  const ShardedReader one = ShardedReader::open(single.path());
  CHECK(one.shard_files() == std::vector<std::string>{"model.safetensors"});
  CHECK(one.metadata().empty());
  CHECK_FALSE(one.total_size().has_value());
  ScratchDir empty;
  CHECK_THAT(message_of<io_error>([&] { ShardedReader::open(empty.path()); }),
             Catch::Contains("neither model.safetensors nor model.safetensors.index.json"));
}

TEST_CASE("always_index, prefix, extra index metadata", "[io][sharded]") {
  ScratchDir dir;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  ShardOptions o = max_bytes(1u << 30);
  o.always_index = true;
  o.prefix = "pruned";
  o.index_metadata = {{"total_parameters", 1234}, {"total_size", 1}};
  const ShardedWriteResult r = write_sharded(w, dir.path(), o);
  CHECK(r.shard_files == std::vector<std::string>{"pruned-00001-of-00001.safetensors"});
  const nlohmann::json index = read_json(dir / "pruned.safetensors.index.json");
  CHECK(index["metadata"]["total_parameters"] == 1234);
  CHECK(index["metadata"]["total_size"] == r.total_size);  // always the real figure
  CHECK_THROWS_AS(write_sharded(w, dir.path(), max_bytes(0)), io_error);
}

TEST_CASE("a new save removes the stale files of an earlier one with the same prefix", "[io][sharded]") {
  ScratchDir dir;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  write_text(dir / "notes.txt", "keep me");
  write_text(dir / "other-00001-of-00002.safetensors", "another prefix: keep me");

  write_sharded(w, dir.path(), max_bytes(1u << 30));  // model.safetensors
  const ShardedWriteResult three = write_sharded(w, dir.path(), max_bytes(1100));
  CHECK(three.shard_files.size() == 3);
  CHECK(three.removed_files == std::vector<std::string>{"model.safetensors"});  // it would shadow the index
  const ShardedWriteResult four = write_sharded(w, dir.path(), max_bytes(600));
  CHECK(four.shard_files.size() == 4);
  CHECK(four.removed_files == three.shard_files);
  CHECK(ShardedReader::open(dir.path()).tensor("ids").bytes().size() == 64);
  const ShardedWriteResult single = write_sharded(w, dir.path(), max_bytes(1u << 30));
  std::vector<std::string> expected_removed = four.shard_files;
  expected_removed.push_back("model.safetensors.index.json");
  std::sort(expected_removed.begin(), expected_removed.end());
  CHECK(single.removed_files == expected_removed);
  CHECK(dir.entries() ==
        std::vector<std::string>{"model.safetensors", "notes.txt", "other-00001-of-00002.safetensors"});
}

TEST_CASE("shards open lazily; eager opening checks them all at once", "[io][sharded]") {
  ScratchDir dir;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  const ShardedWriteResult r = write_sharded(w, dir.path(), max_bytes(1100));
  // Break the shard that holds "embed".
  mhaprune_test::write_file(dir / r.weight_map.at("embed"), mhaprune_test::raw_file("{}", 5));

  const ShardedReader lazy(dir / r.index_file);  // nothing opened yet: no error
  CHECK(lazy.tensor("layers.0.q").read_matrix<float>() == model.q);
  CHECK_THAT(message_of<corrupt_file_error>([&] { lazy.tensor("embed"); }),
             Catch::StartsWith(dir / r.weight_map.at("embed")));
  CHECK_THROWS_AS(lazy.open_all(), corrupt_file_error);
  CHECK_THROWS_AS(ShardedReader(dir / r.index_file, ShardedReader::OpenMode::eager), corrupt_file_error);
  CHECK_THROWS_AS(lazy.shard("model-00009-of-00009.safetensors"), io_error);
}

TEST_CASE("index errors name the index and the problem", "[io][sharded]") {
  ScratchDir dir;
  const Model model;
  SafetensorsWriter w;
  model.add_to(w);
  const ShardedWriteResult r = write_sharded(w, dir.path(), max_bytes(1100));
  const std::string index = dir / r.index_file;
  const auto broken_index = [&](const std::string& text) {
    write_text(dir / "broken.index.json", text);
    return message_of<corrupt_file_error>([&] { ShardedReader(dir / "broken.index.json"); });
  };
  CHECK_THAT(broken_index("{"), Catch::Contains("broken.index.json: index is not valid JSON"));
  CHECK_THAT(broken_index("[]"), Catch::Contains("index is array [], not a JSON object"));
  CHECK_THAT(broken_index(R"({"metadata":{}})"), Catch::Contains("index has no \"weight_map\""));
  CHECK_THAT(broken_index(R"({"weight_map":[]})"),
             Catch::Contains("\"weight_map\" is array [], not an object"));
  CHECK_THAT(broken_index(R"({"weight_map":{"a":1}})"),
             Catch::Contains("maps tensor \"a\" to number 1, not a file name"));
  CHECK_THAT(broken_index(R"({"weight_map":{"a":"../x.safetensors"}})"),
             Catch::Contains("not a file name inside"));
  CHECK_THAT(broken_index(R"({"weight_map":{"a":"/etc/passwd"}})"),
             Catch::Contains("not a file name inside"));
  CHECK_THAT(broken_index(R"({"weight_map":{"a":"sub/../../x"}})"),
             Catch::Contains("not a file name inside"));
  CHECK_THAT(broken_index(R"({"weight_map":{"a":""}})"), Catch::Contains("not a file name inside"));
  CHECK_THAT(broken_index(R"({"weight_map":{"a":"x","a":"y"}})"), Catch::Contains("has the key \"a\" twice"));
  CHECK_THAT(broken_index(R"({"metadata":3,"weight_map":{}})"), Catch::Contains("\"metadata\" is number 3"));
  CHECK_NOTHROW(ShardedReader(index));

  // A tensor the index puts in a shard that does not hold it.
  write_text(dir / "lying.index.json",
             R"({"weight_map":{"layers.0.q":")" + r.weight_map.at("ids") + R"("}})");
  const ShardedReader lying(dir / "lying.index.json");
  CHECK_THAT(message_of<corrupt_file_error>([&] { lying.tensor("layers.0.q"); }),
             Catch::Contains("the index puts tensor \"layers.0.q\" in") &&
                 Catch::Contains("which does not hold it"));
  // A shard that does not exist.
  write_text(dir / "gone.index.json", R"({"weight_map":{"x":"gone.safetensors"}})");
  const ShardedReader gone(dir / "gone.index.json");
  CHECK_THAT(message_of<io_error>([&] { gone.tensor("x"); }),
             Catch::Contains("gone.safetensors") && Catch::Contains("No such file or directory"));
  // A name the index does not have.
  const ShardedReader good(index);
  CHECK_THAT(
      message_of<missing_tensor_error>([&] { good.tensor("layers.0.o"); }),
      Catch::StartsWith(index + ": no tensor \"layers.0.o\" in the checkpoint (6 tensors, e.g. \"layers.0."));
  CHECK_FALSE(good.contains("layers.0.o"));
  CHECK(good.contains("layers.0.q"));
}

}  // namespace test_safetensors_sharded
