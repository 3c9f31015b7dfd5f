// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mhaprune {

/// The one base of every exception mhaprune throws. Catch this to catch them all.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A head configuration that cannot exist (zero heads, `H % H_kv != 0`, ...).
class layout_error : public error {
 public:
  using error::error;
};

/// A tensor whose shape disagrees with the block's head layout, or with the shape it had when bound.
class shape_error : public error {
 public:
  using error::error;
};

/// A buffer that cannot hold what it claims (too small, null, wrong storage).
class storage_error : public error {
 public:
  using error::error;
};

/// A head id that is out of range, repeated, or already removed.
class head_id_error : public error {
 public:
  using error::error;
};

/// A removal that would leave a block that no kernel can run (no heads, ragged GQA groups).
class removal_error : public error {
 public:
  using error::error;
};

/// A pruning target that the guards or the layout cannot meet, when the caller asked for it exactly.
class constraint_error : public error {
 public:
  using error::error;
};

// --- criteria ---

/// A criterion was asked to score or update a block without the evidence it needs: no gradient for one
/// of the block's weight tensors, no gate gradients, no activation statistics, or (for the criteria
/// that accumulate over steps) no accumulated state for the block yet. Mis-shaped evidence is a
/// `shape_error` instead.
class evidence_error : public error {
 public:
  using error::error;
};

/// A criterion configuration that cannot be used: an unknown criterion or reduction name, a name
/// registered twice, a role weight or momentum coefficient that is negative or not finite.
class config_error : public error {
 public:
  using error::error;
};

// --- calibration and compensation ---

/// Calibration data that cannot be used: a NaN or infinity in a batch, statistics read before any
/// sample was added, a sample variance asked of one sample, or stored moments that cannot be real.
class calibration_error : public error {
 public:
  using error::error;
};

/// A compensation that cannot be computed from what it was given: statistics that are missing, have
/// no tokens, have a channel count other than the block's current H*d, lack the Gram matrix a method
/// needs, or hold values that are not finite; options out of range; a factorisation that fails (a
/// damping of 0 on a singular matrix); or a result that does not fit the block's element type. The
/// block is unchanged when it is thrown.
class compensation_error : public error {
 public:
  using error::error;
};

// --- files ---

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

namespace detail {

/// Builds an error message from streamable parts, so call sites read like the message they make.
template <typename... Parts>
std::string message(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// "[rows, cols]", the way every shape appears in mhaprune's messages.
inline std::string shape_string(std::ptrdiff_t rows, std::ptrdiff_t cols) {
  return message('[', rows, ", ", cols, ']');
}

}  // namespace detail
}  // namespace mhaprune

namespace mhaprune::checkpoint {

/// A checkpoint whose config.json or tensors do not fit its architecture preset (head counts that
/// do not divide the width, tensors missing or shaped otherwise, an unknown architecture, a bad
/// user preset or `mhaprune` section). A `corrupt_file_error`, so callers treat it as bad input.
class preset_error : public corrupt_file_error {
 public:
  using corrupt_file_error::corrupt_file_error;
};

}  // namespace mhaprune::checkpoint
