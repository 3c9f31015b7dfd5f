// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// mhaprune::io: read and write safetensors checkpoints, single-file or sharded.
///
///  - `SafetensorsReader`: a file mapped read-only and checked whole when opened; tensors as
///    zero-copy `TensorView`s, read into Eigen (converting F16/BF16/F32/F64) or mapped without a copy.
///  - `SafetensorsWriter`: tensors from raw bytes (copied through, any dtype) or Eigen objects
///    (stored as F64/F32/F16/BF16), written atomically and streamed, as the reference writer lays
///    them out; `write_sharded` splits them into shards plus an index.
///  - `ShardedReader`: a sharded checkpoint (or a single file) read as one, shards opened lazily.
///  - `parse_header`: the one parser, over bytes in memory (the readers and the fuzz target use it).
///  - Errors: `io_error` and its subtypes `corrupt_file_error`, `unsupported_dtype_error`,
///    `missing_tensor_error`; every message starts with the file's path.
///
/// POSIX only (mmap, rename, fsync); little-endian hosts only, like the format.

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/convert.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/header.hpp"
#include "mhaprune/io/mapped_file.hpp"
#include "mhaprune/io/safetensors_reader.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "mhaprune/io/sharded.hpp"
#include "mhaprune/io/tensor_view.hpp"
