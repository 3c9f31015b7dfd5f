// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/error.hpp"

namespace mhaprune {

/// Any failure to read or write a checkpoint. Thrown as is for system failures (a file that cannot
/// be opened, mapped, written or renamed: the message has the path and the system's reason), and
/// through the subtypes below for everything about a file's content. Every message starts with the
/// path of the file concerned.
class io_error : public error {
 public:
  using error::error;
};

/// The bytes break the safetensors format (or the index format of a sharded checkpoint): truncated
/// file, bad JSON, offsets outside the data, a shape that disagrees with the byte count, ... The
/// message names the check that failed and, when there is one, the tensor.
class corrupt_file_error : public io_error {
 public:
  using io_error::io_error;
};

/// The file may be valid, but it holds a dtype this code cannot handle for what was asked: a dtype
/// name unknown to this version (its element size is unknown, so the file cannot even be checked),
/// or a known dtype that cannot be converted to or from floating point (I64, U8, F8_E4M3, ...) when
/// a conversion was asked for. Such tensors are still listed and copied through untouched.
class unsupported_dtype_error : public io_error {
 public:
  using io_error::io_error;
};

/// A tensor name that the file or checkpoint does not hold; the message lists similar names it does.
class missing_tensor_error : public io_error {
 public:
  using io_error::io_error;
};

}  // namespace mhaprune
