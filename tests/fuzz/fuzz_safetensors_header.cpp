// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target: arbitrary bytes as a whole safetensors file. Parsing must either succeed with
// a header whose every promise holds (checked below, each broken promise traps) or throw an
// io_error; never crash, read out of bounds, overflow or allocate without bound. The same bytes go
// through the index parser too. See tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mhaprune/io/safetensors.hpp"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

/// Everything parse_header promises about a header it accepts.
void check_header(const mhaprune::io::Header& h, mhaprune::io::ByteSpan file, bool gaps_allowed) {
  using namespace mhaprune::io;
  require(h.data_offset() >= 8 && h.file_size() == file.size());
  std::uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : h.tensors()) {
    require(previous == nullptr || previous->name < t.name);  // sorted, unique
    previous = &t;
    require(t.begin <= t.end && t.end <= h.data_size());
    std::uint64_t elements = 1;
    for (std::uint64_t d : t.shape) require(!__builtin_mul_overflow(elements, d, &elements));
    require(elements * dtype_bits(t.dtype) / 8 == t.byte_size());
    require(h.find(t.name) == &t);
    covered += t.byte_size();
    const ByteSpan bytes = h.bytes(t, file);
    require(bytes.size() == t.byte_size());
    require(bytes.size() == 0 || (bytes.data() >= file.data() && bytes.data() + bytes.size() <= file.end()));
    // Touch every byte the conversions would read (ASan checks the bounds).
    const TensorView view(t, bytes, "fuzz");
    if (is_convertible(t.dtype) && elements <= 4096) {
      const auto values = view.read_flat<double>();
      require(static_cast<std::uint64_t>(values.size()) == elements);
      (void)view.read_flat<Eigen::bfloat16>();
    } else if (!is_convertible(t.dtype)) {
      try {
        (void)view.read_flat<float>();
        require(false);
      } catch (const mhaprune::unsupported_dtype_error&) {
      }
    }
  }
  require(covered <= h.data_size());
  if (!gaps_allowed) require(covered == h.data_size());  // contiguous cover, no overlap
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mhaprune::io;
  const ByteSpan file(data, size);
  for (const bool gaps : {false, true}) {
    ParseOptions options;
    options.allow_gaps = gaps;
    try {
      check_header(parse_header(file, "fuzz.safetensors", options), file, gaps);
    } catch (const mhaprune::io_error&) {
    }
  }
  try {
    const ShardIndex index = parse_index(file, "fuzz.index.json");
    for (const auto& [name, shard] : index.weight_map) require(!shard.empty() && shard.front() != '/');
  } catch (const mhaprune::io_error&) {
  }
  return 0;
}
