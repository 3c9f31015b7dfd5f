// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/gguf_block_decoder.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/checkpoint/prune_checkpoint.hpp"
#include "mhaprune/checkpoint/prune_gguf.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/checkpoint/score_blocks.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/selection/zeroed_heads.hpp"

// Slimming a masked model: the heads whose O columns are zero (trained with a head mask, or zeroed
// by hand, as Intel Neural Compressor's mask-then-`model_slim` flow leaves them) are found block by
// block and removed through the explicit-heads path of `prune_checkpoint` / `prune_gguf`.
namespace mhaprune::checkpoint {

/// What `slim_checkpoint` and `slim_gguf` do.
struct SlimOptions {
  /// Absolute, on the stored values (decoded for quantized GGUF types): |w| <= tolerance is zero.
  double tolerance = 0.0;
  /// Called after each block of each stage: "find" (reading blocks for zeroed heads), then the
  /// prune's "score" and "write". May be empty.
  std::function<void(const Progress&)> progress;
  /// Replace an existing output.
  bool overwrite = false;
  /// fsync every file and directory before the final rename.
  bool durable = true;
};

/// What a slim found and did.
struct SlimResult {
  /// Per block, in model order: the zeroed heads, which go, which stay and why, and the Q/K/V
  /// rows found zero while O is not.
  std::vector<ZeroedHeads> blocks;
  /// False when no block had a head to remove: then nothing was written (and `report` is empty).
  bool written = false;
  /// The prune's report (explicit heads) when written.
  PruneReport report;
  std::vector<std::string> output_files;  ///< GGUF: the file(s) written
  std::string architecture;               ///< GGUF: the output's `general.architecture`
  std::vector<std::string> requantized;   ///< GGUF: O tensors re-encoded

  /// Query heads removed over all blocks.
  std::size_t removed_heads() const noexcept {
    std::size_t n = 0;
    for (const ZeroedHeads& b : blocks) n += b.removable.size();
    return n;
  }
};

namespace detail {

inline void check_tolerance(double tolerance) {
  if (!(tolerance >= 0.0) || !std::isfinite(tolerance)) {
    throw config_error(mhaprune::detail::message("slim: tolerance ", tolerance,
                                                 " must be finite and >= 0 (absolute, on the "
                                                 "stored values)"));
  }
}

/// Block index → original ids to remove, for `PruneOptions::explicit_heads`; empty when none.
inline std::map<Index, std::vector<Index>> removals(const std::vector<ZeroedHeads>& blocks) {
  std::map<Index, std::vector<Index>> out;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i].anything_to_remove()) out[static_cast<Index>(i)] = blocks[i].removable;
  return out;
}

inline PruneOptions slim_prune_options(const SlimOptions& options,
                                       std::map<Index, std::vector<Index>> heads) {
  PruneOptions o;
  o.explicit_heads = std::move(heads);
  o.progress = options.progress;
  o.overwrite = options.overwrite;
  o.durable = options.durable;
  return o;
}

}  // namespace detail

/// The zeroed heads of every block of a safetensors checkpoint (see `mhaprune::find_zeroed_heads`),
/// reading one block at a time (F64 weights as double, every other dtype as float, which holds
/// F16/BF16 values exactly). Ids are original ids.
/// @throws config_error for a negative or non-finite tolerance; what reading the checkpoint throws.
inline std::vector<ZeroedHeads> find_zeroed_heads(const Checkpoint& ckpt, double tolerance,
                                                  const std::function<void(const Progress&)>& progress = {}) {
  detail::check_tolerance(tolerance);
  std::vector<ZeroedHeads> out;
  const auto& blocks = ckpt.blocks();
  for (const BlockInfo& info : blocks) {
    detail::with_loaded_block(ckpt, info, [&](auto& loaded) {
      out.push_back(mhaprune::find_zeroed_heads(loaded.block(), tolerance));
    });
    if (progress) progress(Progress{"find", out.size(), blocks.size(), info.name});
  }
  return out;
}

/// The zeroed heads of every block of a GGUF model, each block decoded to float (a quantized O's
/// head counts as zeroed when every value of its columns decodes to within `tolerance` of zero).
/// @throws config_error for a bad tolerance; unsupported_dtype_error for a type mhaprune cannot
///         decode (naming the tensor); what reading throws.
inline std::vector<ZeroedHeads> find_zeroed_heads(const GgufModel& model, double tolerance,
                                                  const std::function<void(const Progress&)>& progress = {}) {
  detail::check_tolerance(tolerance);
  std::vector<ZeroedHeads> out;
  GgufBlockDecoder decoder;
  for (const BlockInfo& info : model.blocks()) {
    out.push_back(mhaprune::find_zeroed_heads(decoder.decode(model, info), tolerance));
    if (progress) progress(Progress{"find", out.size(), model.blocks().size(), info.name});
  }
  return out;
}

/// Removes the zeroed heads of a checkpoint (safetensors, one file or shards) into the directory
/// `out_dir`: finds them (`find_zeroed_heads`), then prunes exactly the removable ones with
/// `prune_checkpoint`'s explicit-heads path (same output format, config.json, atomic directory,
/// input never modified). The slimmed model computes exactly what the masked one computes: a head
/// with zero O columns contributes nothing, V's bias included. When no block has a head that can
/// go, nothing is written and `written` is false.
/// @throws config_error for a bad tolerance; io_error for the destination (see
///         `OutputDirectory::check_destination`), checked before any block is read, also when
///         there turns out to be nothing to write; what `prune_checkpoint` throws.
inline SlimResult slim_checkpoint(const Checkpoint& ckpt, const std::string& out_dir,
                                  const SlimOptions& options = {}) {
  detail::check_tolerance(options.tolerance);
  OutputDirectory::check_destination(out_dir, ckpt.opened_as_directory() ? ckpt.directory() : ckpt.path(),
                                     options.overwrite);
  SlimResult result;
  result.blocks = find_zeroed_heads(ckpt, options.tolerance, options.progress);
  std::map<Index, std::vector<Index>> heads = detail::removals(result.blocks);
  if (heads.empty()) return result;
  result.report = prune_checkpoint(ckpt, out_dir, detail::slim_prune_options(options, std::move(heads)));
  result.written = true;
  return result;
}

/// Removes the zeroed heads of a GGUF model into `out` (a file; a split input gives a split set),
/// through `prune_gguf`'s explicit-heads path: kept rows and blocks copied as bytes, the same
/// metadata rules, and the same refusal (constraint_error) when a removed head's O columns are
/// not whole blocks of O's type, unless `gguf.requantize` re-encodes that O. Nothing is written
/// when nothing can go (the destination is then not checked either: `prune_gguf` checks it).
/// @throws config_error for a bad tolerance or options; what `find_zeroed_heads` and `prune_gguf`
///         throw (io_error for an input file or an existing output without `overwrite`).
inline SlimResult slim_gguf(const GgufModel& model, const std::string& out, const SlimOptions& options = {},
                            const GgufPruneOptions& gguf = {}) {
  SlimResult result;
  result.blocks = find_zeroed_heads(model, options.tolerance, options.progress);
  std::map<Index, std::vector<Index>> heads = detail::removals(result.blocks);
  if (heads.empty()) return result;
  GgufPruneResult pruned =
      prune_gguf(model, out, detail::slim_prune_options(options, std::move(heads)), gguf);
  result.written = true;
  result.report = std::move(pruned.report);
  result.output_files = std::move(pruned.output_files);
  result.architecture = std::move(pruned.architecture);
  result.requantized = std::move(pruned.requantized);
  return result;
}

}  // namespace mhaprune::checkpoint
