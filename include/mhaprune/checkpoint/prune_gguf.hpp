// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/stat.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_plan.hpp"
#include "mhaprune/checkpoint/detail/choose_heads.hpp"
#include "mhaprune/checkpoint/detail/gguf_slice.hpp"
#include "mhaprune/checkpoint/gguf_block_decoder.hpp"
#include "mhaprune/checkpoint/gguf_metadata.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/checkpoint/score_blocks.hpp"
#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/ggml_quants.hpp"
#include "mhaprune/io/gguf_split.hpp"
#include "mhaprune/io/gguf_writer.hpp"
#include "mhaprune/io/imatrix.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/selection/block_scores.hpp"

namespace mhaprune::checkpoint {

/// What `prune_gguf` does besides the choice of heads (which `PruneOptions` holds).
struct GgufPruneOptions {
  /// Re-encode an O tensor whose removed columns are not whole blocks of its type (a 16-wide head
  /// in Q8_0, a 64-wide head in a 256-wide K-quant) as this type (F32, F16, BF16 or Q8_0) instead
  /// of failing: that tensor alone is decoded, sliced and encoded with ggml's reference rule.
  std::optional<io::GgmlType> requantize;
  /// llama-imatrix data of the input model: its `blk.N.attn_output.weight` entries are the O-input
  /// statistics `wanda_sp` (and, with `in_sum`, `fluctuation`) score with (pass them through
  /// `PruneOptions::stats`, see `io::imatrix_to_stats`), and `imatrix_out` slices them.
  const io::Imatrix* imatrix = nullptr;
  /// Where to write the pruned model's imatrix (O entries sliced as O's columns), so that
  /// `llama-quantize --imatrix` accepts it with the pruned file. Needs `imatrix`. Empty: none.
  std::string imatrix_out;
};

/// What `prune_gguf` did.
struct GgufPruneResult {
  PruneReport report;
  std::vector<std::string> output_files;  ///< the GGUF file(s) written, in split order
  std::string architecture;               ///< the output's `general.architecture`
  std::vector<std::string> requantized;   ///< tensors re-encoded (see `GgufPruneOptions::requantize`)
};

namespace detail {

/// Decides, for one block, what every tensor keeps, before anything is written.
struct GgufBlockWork {
  BlockPlan plan;
  std::vector<Index> kept, kept_kv;  ///< current positions kept, ascending
  bool neox_to_norm = false;         ///< reorder each kept Q/K head's rows for llama.cpp's NORM rope
  std::optional<io::GgmlType> o_reencoded_as;
};

/// Output row j of a head of width d comes from input row `rope_source(j, d)`: NEOX rotary pairs
/// (i, i + d/2) become NORM pairs (2i, 2i + 1), as convert_hf_to_gguf.py permutes LLaMA's Q and K.
inline std::uint64_t rope_source(std::uint64_t j, std::uint64_t d, bool neox_to_norm) {
  if (!neox_to_norm) return j;
  return j % 2 == 0 ? j / 2 : d / 2 + j / 2;
}

/// The source indices along the head axis of a tensor of `role` (rows of a weight, elements of a
/// bias), in output order.
inline std::vector<std::uint64_t> head_axis_sources(const std::string& role, const BlockInfo& info,
                                                    const GgufBlockWork& w) {
  const auto d = static_cast<std::uint64_t>(info.layout.head_dim());
  const auto H = static_cast<std::uint64_t>(info.layout.heads());
  const auto Hkv = static_cast<std::uint64_t>(info.layout.kv_heads());
  std::vector<std::uint64_t> out;
  const auto heads = [&](const std::vector<Index>& kept, std::uint64_t offset, bool rotary) {
    for (const Index p : kept)
      for (std::uint64_t j = 0; j < d; ++j)
        out.push_back(offset + static_cast<std::uint64_t>(p) * d +
                      rope_source(j, d, rotary && w.neox_to_norm));
  };
  if (role == "q" || role == "q_bias") heads(w.kept, 0, true);
  if (role == "k" || role == "k_bias") heads(w.kept_kv, 0, true);
  if (role == "v" || role == "v_bias") heads(w.kept_kv, 0, false);
  if (role == "qkv" || role == "qkv_bias") {
    heads(w.kept, 0, true);
    heads(w.kept_kv, H * d, true);
    heads(w.kept_kv, (H + Hkv) * d, false);
  }
  if (role == "o") heads(w.kept, 0, false);
  return out;
}

inline bool file_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

/// True when both paths name one existing file (through links, other spellings, hard links).
inline bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/// Output file names: one file, or for a split input `<stem>-0000k-of-0000N.gguf` (the stem is
/// `out` without `.gguf` and without a shard suffix).
inline std::vector<std::string> gguf_output_paths(const std::string& out, std::size_t shards) {
  if (shards == 1) return {out};
  std::string stem = out;
  if (const auto split = io::parse_gguf_split_path(out)) {
    stem = std::get<0>(*split);
  } else if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".gguf") == 0) {
    stem.resize(stem.size() - 5);
  }
  std::vector<std::string> paths;
  for (std::size_t k = 1; k <= shards; ++k)
    paths.push_back(io::gguf_split_path(stem, static_cast<int>(k), static_cast<int>(shards)));
  return paths;
}

inline std::string run_columns(const IndexRun& r) {
  return mhaprune::detail::message(r.begin, "..", r.begin + r.count - 1);
}

}  // namespace detail

/// Scores every block of a GGUF model with `criterion`, one block at a time (decoded to float,
/// scored, freed; magnitude decodes one row at a time instead, see `GgufBlockDecoder::score_by_row`).
/// Scores are in current head order (ascending original id).
/// @throws unsupported_dtype_error for a block whose weights cannot be decoded; evidence_error when
///         the criterion needs statistics that are missing; what the criterion throws.
inline std::vector<Eigen::VectorXd> score_gguf_blocks(const GgufModel& model, AnyCriterion& criterion,
                                                      const PruneOptions& options) {
  std::vector<Eigen::VectorXd> scores;
  GgufBlockDecoder decoder;
  for (const BlockInfo& info : model.blocks()) {
    if (const Magnitude* magnitude = criterion.target<Magnitude>()) {
      scores.push_back(decoder.score_by_row(*magnitude, model, info));
    } else {
      scores.push_back(detail::score_block(criterion, decoder.decode(model, info), info, options));
    }
    if (options.progress)
      options.progress(Progress{"score", scores.size(), model.blocks().size(), info.name});
  }
  return scores;
}

/// Scores every head of a GGUF model, removing nothing (see `score_checkpoint`).
inline PruneReport score_gguf(const GgufModel& model, const PruneOptions& options) {
  ConfiguredPruner<float> pruner = make_pruner<float>(options.config);
  const std::vector<Eigen::VectorXd> scores = score_gguf_blocks(model, pruner.criterion(), options);
  PruneReport report;
  report.target = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i)
    report.blocks.push_back(detail::block_report(model.blocks()[i], scores[i], nullptr));
  return report;
}

/// Prunes a GGUF model into `out` (a file; for a split input, a split set named after it), as a
/// file llama.cpp loads unchanged.
///
/// 1. Checks everything and decides everything: the options; the heads (explicit original ids, or
///    the configured criterion and scope, scoring one block at a time); each block's removal (all
///    checks of `plan_removal`); that every O tensor can lose its columns as whole blocks, else
///    that `requantize` can re-encode it; the metadata llama.cpp needs (below). Nothing is written
///    before all of that passed.
/// 2. Writes, under temporary names renamed into place at the end: every tensor in the input's
///    order; Q/K/V rows (fused `attn_qkv` segments, biases, per-head norms, sinks) of removed heads
///    dropped and O's columns, kept rows and blocks copied as bytes (never decoded, except an O
///    tensor that `requantize` re-encodes); every other tensor byte for byte; the KVs of
///    `pruned_gguf_kvs`.
///
/// Metadata: when every layer keeps the same counts, the architecture stays and the counts are
/// scalars. Otherwise `llama` models become `deci` (llama.cpp's architecture that builds each layer
/// at its own width) with per-layer count arrays. `qwen2` models that lose heads always become
/// `deci`, since llama.cpp's qwen2 loader sizes Q and O by the embedding width whatever the head
/// counts; their kept Q/K rows (and biases) are reordered from NEOX to deci's NORM rotary order
/// (rows move, values do not change). Other architectures cannot take per-layer counts:
/// constraint_error (keep counts uniform, e.g. local scope). The input is never modified.
///
/// @throws config_error for bad options (compensation, which would change O's values, is not
///         offered for GGUF); head_id_error / removal_error as `prune_checkpoint`; constraint_error
///         when an O tensor cannot lose its columns as whole blocks and `requantize` is not set or
///         cannot encode the kept width, or for non-uniform counts of an architecture that cannot
///         hold them; evidence_error for missing statistics; io_error for the destination (an
///         input file, or an existing file without `options.overwrite`) and any write failure.
inline GgufPruneResult prune_gguf(const GgufModel& model, const std::string& out, const PruneOptions& options,
                                  const GgufPruneOptions& gguf = {}) {
  ConfiguredPruner<float> pruner = make_pruner<float>(options.config);
  if (options.compensation.method != CompensationMethod::none) {
    throw config_error(mhaprune::detail::message(
        "compensation \"", to_string(options.compensation.method),
        "\" changes the kept heads' O values, which a GGUF file holds quantized; mhaprune copies kept "
        "blocks as they are, so prune GGUF files without compensation"));
  }
  if (gguf.requantize && !io::can_quantize(*gguf.requantize)) {
    throw config_error(mhaprune::detail::message("cannot re-encode as ", io::to_string(*gguf.requantize),
                                                 "; choose q8_0, f16, bf16 or f32"));
  }
  if (!gguf.imatrix_out.empty() && gguf.imatrix == nullptr)
    throw config_error("an imatrix output needs the input model's imatrix");

  const io::GgufModelFiles& files = model.files();
  const std::vector<std::string> outputs = detail::gguf_output_paths(out, files.shards().size());
  for (const std::string& o : outputs) {
    for (const io::GgufReader& shard : files.shards()) {
      if (detail::same_file(o, shard.path()))
        throw io_error(mhaprune::detail::message(o, ": is an input file; write the pruned model elsewhere"));
    }
    if (!options.overwrite && detail::file_exists(o))
      throw io_error(mhaprune::detail::message(o, ": already exists (set overwrite to replace it)"));
  }

  // --- choose -----------------------------------------------------------------------------------
  const auto& blocks = model.blocks();
  std::vector<Eigen::VectorXd> scores;
  if (options.explicit_heads) {
    // Explicit heads need no scores; report them when the weights can be decoded.
    try {
      scores = score_gguf_blocks(model, pruner.criterion(), options);
    } catch (const unsupported_dtype_error&) {
      scores.assign(blocks.size(), Eigen::VectorXd());
    } catch (const evidence_error&) {
      scores.assign(blocks.size(), Eigen::VectorXd());
    }
  } else {
    scores = score_gguf_blocks(model, pruner.criterion(), options);
  }
  std::vector<Eigen::VectorXd> for_selection = scores;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    if (for_selection[i].size() == 0) for_selection[i] = Eigen::VectorXd::Zero(blocks[i].layout.heads());
  const std::vector<BlockScores> summary = detail::block_scores(blocks, for_selection);
  const Selection chosen = detail::choose(blocks, pruner, summary, options);

  // --- plan every block -------------------------------------------------------------------------
  GgufMetadataPlan meta;
  meta.architecture = model.architecture();
  meta.output_architecture = model.architecture();
  meta.original_architecture =
      model.original_architecture() != model.architecture() ? model.original_architecture() : std::string();
  meta.head_dim = model.head_dim();
  meta.heads = model.layer_heads();
  meta.kv_heads = model.layer_kv_heads();
  meta.original_heads = model.original_layer_heads();
  meta.original_kv_heads = model.original_layer_kv_heads();
  meta.head_ids.assign(model.block_count(), {});
  meta.kv_head_ids.assign(model.block_count(), {});
  std::vector<detail::GgufBlockWork> work;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const BlockInfo& b = blocks[i];
    detail::GgufBlockWork w;
    w.plan = plan_block(b, chosen.at(i));
    for (std::size_t p = 0; p < b.head_ids.size(); ++p) {
      if (std::binary_search(w.plan.head_ids_after.begin(), w.plan.head_ids_after.end(), b.head_ids[p]))
        w.kept.push_back(static_cast<Index>(p));
    }
    for (std::size_t p = 0; p < b.kv_head_ids.size(); ++p) {
      if (std::binary_search(w.plan.kv_head_ids_after.begin(), w.plan.kv_head_ids_after.end(),
                             b.kv_head_ids[p]))
        w.kept_kv.push_back(static_cast<Index>(p));
    }
    const auto layer = static_cast<std::size_t>(b.layer);
    meta.heads[layer] = w.plan.after.heads();
    meta.kv_heads[layer] = w.plan.after.kv_heads();
    meta.head_ids[layer] = w.plan.head_ids_after;
    meta.kv_head_ids[layer] = w.plan.kv_head_ids_after;
    work.push_back(std::move(w));
  }

  // --- the architecture llama.cpp needs for these counts ----------------------------------------
  bool uniform = true;
  for (std::size_t l = 0; l < meta.heads.size(); ++l) {
    uniform = uniform && meta.heads[l] == meta.heads.front() && meta.kv_heads[l] == meta.kv_heads.front() &&
              meta.heads[l] > 0;
  }
  const io::GgufValue* stored_counts = files.find(model.architecture() + ".attention.head_count");
  const bool stored_as_array = stored_counts != nullptr && !stored_counts->as_int().has_value();
  const bool removes = std::any_of(
      work.begin(), work.end(), [](const detail::GgufBlockWork& w) { return !w.plan.removed.heads.empty(); });
  const std::string& arch = model.architecture();
  // llama.cpp's qwen2 loader sizes attn_q and attn_output as {n_embd, n_embd} whatever the head
  // counts say, so a qwen2 model that lost heads only loads as deci, even with uniform counts.
  const bool to_deci = !stored_as_array && ((!uniform && arch == "llama") || (removes && arch == "qwen2"));
  if (!uniform && !stored_as_array && !to_deci) {
    throw constraint_error(mhaprune::detail::message(
        model.path(), ": the layers would keep different head counts, which llama.cpp's \"", arch,
        "\" architecture cannot load (only llama and qwen2 models can become \"deci\", which builds each "
        "layer at its own width); keep the counts uniform: local scope (--scope local) or the same "
        "number of heads per layer"));
  }
  if (to_deci) {
    for (const io::GgufTensorInfo& t : files.first().tensors()) {
      if (t.name.find(".ffn_gate_inp.") != std::string::npos) {
        throw constraint_error(mhaprune::detail::message(
            model.path(),
            ": the pruned model needs llama.cpp's \"deci\" architecture (the one that takes "
            "per-layer head counts), which has no mixture of experts (tensor \"",
            t.name, "\"); keep the counts uniform (--scope local)"));
      }
    }
    if (arch == "qwen2") {
      const io::GgufValue* rot = files.find("qwen2.rope.dimension_count");
      if (rot != nullptr && rot->as_int() != std::optional<std::int64_t>(model.head_dim())) {
        throw constraint_error(mhaprune::detail::message(
            model.path(), ": qwen2.rope.dimension_count is ", rot->to_display_string(),
            ", not the head width ", model.head_dim(),
            "; the NEOX to NORM reordering \"deci\" needs covers whole heads only"));
      }
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        const GgufExtraTensors& e = model.extras(i);
        if (!e.q_norm.empty() || !e.k_norm.empty()) {
          throw constraint_error(mhaprune::detail::message(
              model.path(), ": per-head norms of block ", blocks[i].name,
              " cannot be reordered to NORM rotary order, which llama.cpp's \"deci\" architecture needs"));
        }
        work[i].neox_to_norm = true;
      }
    }
    meta.output_architecture = "deci";
    if (meta.original_architecture.empty()) meta.original_architecture = arch;
  }
  meta.per_layer_counts = !uniform || stored_as_array || to_deci;

  // --- can every tensor lose its heads as whole blocks? -----------------------------------------
  std::map<std::string, std::pair<std::size_t, std::string>> role_of;  // tensor -> (block, role)
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const BlockInfo& b = blocks[i];
    for (const auto& [role, full] : detail::roles(b.tensors))
      if (!full->empty() && role != "o_bias") role_of[*full] = {i, role};
    const GgufExtraTensors& e = model.extras(i);
    if (!e.q_norm.empty()) role_of[e.q_norm] = {i, "q_norm"};
    if (!e.k_norm.empty()) role_of[e.k_norm] = {i, "k_norm"};
    if (!e.sinks.empty()) role_of[e.sinks] = {i, "sinks"};
  }
  for (const auto& [name, where] : role_of) {
    const auto& [i, role] = where;
    const io::GgufTensorInfo& t = files.tensor(name);
    const io::GgmlTypeTraits& traits = io::ggml_traits(t.type);
    const bool one_row = t.ne.size() == 1 || t.rows() == 1;
    if (role == "o" || (one_row && role != "q_norm" && role != "k_norm" && role != "sinks")) {
      const std::vector<detail::IndexRun> runs =
          detail::index_runs(detail::head_axis_sources(role, blocks[i], work[i]));
      if (detail::runs_block_aligned(runs, traits.block_size)) continue;
      const detail::IndexRun bad = detail::first_unaligned_run(runs, traits.block_size);
      const std::string what = mhaprune::detail::message(
          model.path(), ": tensor \"", name, "\" is ", io::to_string(t.type), " (blocks of ",
          traits.block_size, " columns) and the kept columns ", detail::run_columns(bad), " of block ",
          blocks[i].name, " do not start and end on block boundaries");
      if (role != "o" || !gguf.requantize) {
        throw constraint_error(mhaprune::detail::message(
            what, "; remove heads in groups whose columns fill whole blocks (with head width ",
            model.head_dim(), ": ",
            std::max<std::uint64_t>(1, traits.block_size / static_cast<std::uint64_t>(model.head_dim())),
            " adjacent heads starting at a multiple of that), or re-encode the O tensor (--requantize "
            "q8_0|f16|f32)"));
      }
      if (!io::can_dequantize(t.type)) {
        throw constraint_error(mhaprune::detail::message(what, ", and mhaprune cannot decode ",
                                                         io::to_string(t.type), " to re-encode it"));
      }
      std::uint64_t kept = 0;
      for (const auto& r : runs) kept += r.count;
      if (!io::row_bytes(*gguf.requantize, kept)) {
        throw constraint_error(mhaprune::detail::message(
            what, ", and the ", kept, " kept columns are not whole blocks of ",
            io::to_string(*gguf.requantize), " (", io::ggml_traits(*gguf.requantize).block_size,
            " columns); re-encode as f16 or f32"));
      }
      work[i].o_reencoded_as = *gguf.requantize;
      meta.requantized.push_back(name);
    }
  }
  std::sort(meta.requantized.begin(), meta.requantized.end());

  // --- the imatrix of the pruned model ----------------------------------------------------------
  io::Imatrix pruned_imatrix;
  if (!gguf.imatrix_out.empty()) {
    pruned_imatrix = *gguf.imatrix;
    for (io::ImatrixEntry& e : pruned_imatrix.entries) {
      const auto it = role_of.find(e.name);
      if (it == role_of.end() || it->second.second != "o") continue;
      const std::size_t i = it->second.first;
      std::vector<std::int64_t> columns;
      for (const std::uint64_t c : detail::head_axis_sources("o", blocks[i], work[i]))
        columns.push_back(static_cast<std::int64_t>(c));
      e = io::slice_columns(e, columns);
    }
  }

  // --- write ------------------------------------------------------------------------------------
  std::vector<io::PendingFile> pending;
  std::size_t blocks_written = 0;
  for (std::size_t s = 0; s < files.shards().size(); ++s) {
    const io::GgufReader& shard = files.shards()[s];
    io::GgufWriter writer(shard.header().version());
    for (io::GgufKv& kv : pruned_gguf_kvs(shard.kvs(), meta, s == 0))
      writer.add_kv(std::move(kv.key), std::move(kv.value));
    for (const io::GgufTensorInfo& t : shard.tensors()) {
      const auto it = role_of.find(t.name);
      if (it == role_of.end()) {
        writer.add_tensor(t.name, t.type, t.ne, [&shard, &t](io::ByteSink& sink) {
          sink.append_mapped(shard.mapped_file(), shard.bytes(t));  // by range, not through the map
          shard.release(t);
        });
        continue;
      }
      const std::size_t i = it->second.first;
      const std::string role = it->second.second;
      const BlockInfo& b = blocks[i];
      const detail::GgufBlockWork& w = work[i];
      std::vector<std::uint64_t> ne = t.ne;
      const bool one_row = t.ne.size() == 1 || t.rows() == 1;
      io::GgmlType type = t.type;
      std::vector<detail::IndexRun> runs;
      const auto d = static_cast<std::uint64_t>(b.layout.head_dim());
      if (role == "q_norm" || role == "k_norm" || role == "sinks") {
        // Sized over all heads: {H*d} or {d, H} (norms), {H} (sinks); whole heads go.
        const std::vector<Index>& kept = role == "k_norm" ? w.kept_kv : w.kept;
        const std::uint64_t width = role == "sinks" ? 1 : d;
        std::vector<std::uint64_t> source;
        for (const Index p : kept)
          for (std::uint64_t j = 0; j < width; ++j)
            source.push_back(static_cast<std::uint64_t>(p) * width + j);
        if (t.ne.size() >= 2 && t.ne[1] > 1) {
          std::vector<std::uint64_t> rows;
          for (const Index p : kept) rows.push_back(static_cast<std::uint64_t>(p));
          runs = detail::index_runs(rows);
          ne[1] = rows.size();
          writer.add_tensor(t.name, type, ne, [&shard, &t, runs](io::ByteSink& sink) {
            detail::emit_rows(sink, shard.mapped_file(), shard.bytes(t), t.row_bytes(), runs);
            shard.release(t);
          });
        } else {
          runs = detail::index_runs(source);
          ne[0] = source.size();
          writer.add_tensor(t.name, type, ne, [&shard, &t, runs](io::ByteSink& sink) {
            detail::emit_columns(sink, shard.bytes(t), t.type, t.ne[0], 1, runs);
            shard.release(t);
          });
        }
        continue;
      }
      const std::vector<std::uint64_t> source = detail::head_axis_sources(role, b, w);
      runs = detail::index_runs(source);
      if (role == "o") {
        ne[0] = source.size();
        const std::optional<io::GgmlType> as = w.o_reencoded_as;
        if (as) type = *as;
        const std::size_t total = blocks.size();
        writer.add_tensor(
            t.name, type, ne,
            [&shard, &t, runs, as, &options, &blocks_written, total, name = b.name](io::ByteSink& sink) {
              if (as) {
                detail::emit_columns_reencoded(sink, shard.bytes(t), t.type, t.ne[0], t.rows(), runs, *as);
              } else {
                detail::emit_columns(sink, shard.bytes(t), t.type, t.ne[0], t.rows(), runs);
              }
              shard.release(t);
              ++blocks_written;
              if (options.progress) options.progress(Progress{"write", blocks_written, total, name});
            });
      } else if (one_row) {
        ne[0] = source.size();
        writer.add_tensor(t.name, type, ne, [&shard, &t, runs](io::ByteSink& sink) {
          detail::emit_columns(sink, shard.bytes(t), t.type, t.ne[0], 1, runs);
          shard.release(t);
        });
      } else {
        ne[1] = source.size();
        writer.add_tensor(t.name, type, ne, [&shard, &t, runs](io::ByteSink& sink) {
          detail::emit_rows(sink, shard.mapped_file(), shard.bytes(t), t.row_bytes(), runs);
          shard.release(t);
        });
      }
    }
    pending.push_back(writer.write_pending(outputs[s], io::WriteOptions{options.durable}));
  }
  if (!gguf.imatrix_out.empty()) {
    io::write_imatrix_gguf(pruned_imatrix, gguf.imatrix_out, io::WriteOptions{options.durable});
  }
  for (io::PendingFile& p : pending) p.commit();

  GgufPruneResult result;
  result.output_files = outputs;
  result.architecture = meta.output_architecture;
  result.requantized = meta.requantized;
  result.report.target = options.explicit_heads ? 0.0 : options.config.target_sparsity;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    result.report.blocks.push_back(detail::block_report(blocks[i], scores[i], &work[i].plan));
  return result;
}

}  // namespace mhaprune::checkpoint
