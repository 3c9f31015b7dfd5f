// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_plan.hpp"
#include "mhaprune/checkpoint/copy_files.hpp"
#include "mhaprune/checkpoint/detail/choose_heads.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/checkpoint/output_config.hpp"
#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/checkpoint/score_blocks.hpp"
#include "mhaprune/checkpoint/streamed_blocks.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/temp_file.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/explicit_selection.hpp"

namespace mhaprune::checkpoint {

namespace detail {

/// Which tensors compensation adds to each block, checked against what the architecture can hold.
/// @throws config_error when the method would give an O bias to a family that has none.
inline void plan_created_tensors(const Checkpoint& ckpt, std::vector<BlockPlan>& plans,
                                 const PruneOptions& options, bool& enable_flag) {
  enable_flag = false;
  if (!shifts_bias(options.compensation.method)) return;
  const ArchitecturePreset& p = ckpt.preset();
  const bool some_lack = std::any_of(ckpt.blocks().begin(), ckpt.blocks().end(),
                                     [](const BlockInfo& b) { return b.tensors.o_bias.empty(); });
  if (!some_lack) return;
  if (p.output_bias == OutputBiasSupport::never || p.o_bias.empty()) {
    const auto type = ckpt.config().value("model_type", p.name);
    throw config_error(mhaprune::detail::message(
        "compensation \"", to_string(options.compensation.method), "\" shifts the O projection's bias, but ",
        type,
        " models cannot hold one (their O projection has no bias); use a method that leaves the bias alone "
        "(scale, lsq, obs) or none"));
  }
  const bool all_biases = p.output_bias == OutputBiasSupport::config_flag;
  enable_flag = all_biases;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const BlockInfo& b = ckpt.blocks()[i];
    const std::vector<std::pair<std::string, std::string>> wanted =
        all_biases ? std::vector<std::pair<std::string, std::string>>{{"q_bias", p.q_bias},
                                                                      {"k_bias", p.k_bias},
                                                                      {"v_bias", p.v_bias},
                                                                      {"o_bias", p.o_bias}}
                   : std::vector<std::pair<std::string, std::string>>{{"o_bias", p.o_bias}};
    for (const auto& [role, rel] : wanted) {
      if (rel.empty()) continue;
      const std::string full = b.name + "." + rel;
      if (ckpt.reader().contains(full)) continue;
      plans[i].created[role] = full;
      plans[i].shapes_after[full] = block_tensor_shape(role, b.qkv, b.in_out, plans[i].after);
    }
  }
}

inline void write_text(const std::string& path, const std::string& text, bool durable) {
  io::detail::TempFile f(path);
  f.append(text.data(), text.size());
  f.commit(durable);
}

inline std::string base_name(const std::string& path) { return io::detail::split_path(path).second; }

}  // namespace detail

/// Scores every head of every block with the configured criterion, removing nothing: the report
/// has each block's scores, `removed` empty and `after` equal to `before`. Reads one block at a
/// time. Ids in the report are original ids.
/// @throws config_error for a bad `options.config`; evidence_error when the criterion needs
///         statistics that are missing (naming the block and the expected key); what reading throws.
inline PruneReport score_checkpoint(const Checkpoint& ckpt, const PruneOptions& options) {
  ConfiguredPruner<float> pruner = make_pruner<float>(options.config);
  PruneOptions scoring = options;
  scoring.compensation = CompensationOptions{};
  const std::vector<Eigen::VectorXd> scores = score_blocks(ckpt, pruner.criterion(), scoring);
  PruneReport report;
  report.target = 0.0;
  for (std::size_t i = 0; i < scores.size(); ++i)
    report.blocks.push_back(detail::block_report(ckpt.blocks()[i], scores[i], nullptr));
  return report;
}

/// Prunes a checkpoint into a new directory `out_dir`, streaming block by block.
///
/// 1. Checks: options, the destination (see `OutputDirectory::check_destination`: not the input,
///    not inside it, not existing unless `overwrite`), compensation against the architecture.
/// 2. Scores every block, one at a time (read, score, free).
/// 3. Selects: `explicit_heads` (original ids) or the configured scope ("global": one ranking,
///    "local": per block), target = `config.target_sparsity` of the ORIGINAL heads, cumulative
///    over earlier prunings of the checkpoint; then plans every block's removal (all checks of
///    the core's `plan_removal`). Nothing has been written yet.
/// 4. Writes, under a temporary sibling directory renamed into place at the end: the weights in
///    the input's shards (same file names, every tensor in the same shard as in the input, so a
///    sharded input gives as many shards and an index with the same metadata and an updated
///    `total_size`; a single file gives a single `model.safetensors`), each shard's `__metadata__` kept.
///    Non-attention tensors are copied byte for byte, by range from the input file (inside the
///    kernel, as `cp` does). A pruned tensor that is only the kept heads' bytes (Q/K/V, and O
///    without compensation) is copied the same way, run by run; any other block tensor comes from
///    the block, read when the first such tensor is written, pruned (with compensation if asked),
///    written in each tensor's original dtype and freed after its last, so memory does not grow
///    with the number of layers. Kept values are bit-identical to the input unless compensation
///    changed them.
/// 5. Writes config.json (see `output_config`) and copies every other file of the input directory
///    (see `copy_other_files`; only when the checkpoint was opened as a directory or index).
///
/// The input is never modified. On any error the temporary directory is removed: no output
/// directory is left behind.
///
/// @throws config_error for bad options (including an unknown block index in `explicit_heads`,
///         and a compensation that would add an O bias to a family that cannot hold one);
///         head_id_error for explicit ids that do not exist or are gone; constraint_error when the
///         target cannot be met exactly and `exact_target` is set; removal_error when explicit
///         heads would empty a block or leave ragged key/value groups; evidence_error for missing
///         statistics; compensation_error for unusable ones; io_error for the destination and any
///         file that cannot be written; what reading the checkpoint throws.
inline PruneReport prune_checkpoint(const Checkpoint& ckpt, const std::string& out_dir,
                                    const PruneOptions& options) {
  ConfiguredPruner<float> pruner = make_pruner<float>(options.config);
  const std::string input = ckpt.opened_as_directory() ? ckpt.directory() : ckpt.path();
  OutputDirectory::check_destination(out_dir, input, options.overwrite);
  {
    std::vector<BlockPlan> none;
    bool flag = false;
    if (shifts_bias(options.compensation.method)) detail::plan_created_tensors(ckpt, none, options, flag);
  }

  const std::vector<Eigen::VectorXd> scores = score_blocks(ckpt, pruner.criterion(), options);
  const std::vector<BlockScores> summary = detail::block_scores(ckpt.blocks(), scores);
  const Selection chosen = detail::choose(ckpt.blocks(), pruner, summary, options);
  std::vector<BlockPlan> plans;
  for (std::size_t i = 0; i < ckpt.blocks().size(); ++i)
    plans.push_back(plan_block(ckpt.blocks()[i], chosen.at(i)));
  bool enable_bias_flag = false;
  detail::plan_created_tensors(ckpt, plans, options, enable_bias_flag);
  if (options.compensation.method != CompensationMethod::none) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
      const BlockInfo& b = ckpt.blocks()[i];
      if (!plans[i].remove.empty() && detail::stats_for(b, options) == nullptr) {
        throw evidence_error(
            mhaprune::detail::message("compensation \"", to_string(options.compensation.method),
                                      "\" needs O-input statistics: ", detail::stats_hint(b, options)));
      }
    }
  }

  OutputDirectory out(out_dir, input, options.overwrite);
  const io::ShardedReader& reader = ckpt.reader();
  StreamedBlocks streamed(ckpt, plans, options, 2, StreamedBlocks::Source::input_file);
  std::map<std::string, std::size_t> block_of;
  for (std::size_t i = 0; i < plans.size(); ++i)
    for (const auto& [name, shape] : plans[i].shapes_after) block_of[name] = i;

  // One writer per input shard; created tensors go to the shard of their block's O weight.
  std::map<std::string, io::SafetensorsWriter> writers;
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, file] : reader.weight_map()) weight_map[name] = file;
  for (std::size_t i = 0; i < plans.size(); ++i)
    for (const auto& [role, name] : plans[i].created)
      weight_map[name] = reader.shard_of(ckpt.blocks()[i].o_weight_name);
  for (const auto& [name, file] : weight_map) {
    io::SafetensorsWriter& w = writers[file];
    if (const auto it = block_of.find(name); it != block_of.end()) {
      const std::size_t index = it->second;
      const bool created = !reader.contains(name);
      const io::Dtype dtype = created ? ckpt.blocks()[index].dtype : reader.info(name).dtype;
      w.add_streamed(
          name, dtype, plans[index].shapes_after.at(name),
          [&streamed, index, name = name](io::ByteSink& sink) { streamed.emit(index, name, sink); });
    } else {
      const io::TensorInfo& info = reader.info(name);
      w.add_streamed(name, info.dtype, info.shape, [&reader, name = name](io::ByteSink& sink) {
        // Copied by range from the input file (inside the kernel), not through its map.
        const io::SafetensorsReader& shard = reader.shard(reader.shard_of(name));
        const io::TensorInfo& own = shard.info(name);
        sink.append_mapped(shard.mapped_file(), shard.bytes(own));
        shard.release(own);
      });
    }
  }
  const bool indexed = detail::has_suffix(reader.path(), ".json");
  std::uint64_t total_size = 0;
  for (auto& [file, w] : writers) {
    w.set_metadata(reader.shard(file).metadata());
    total_size += w.data_size();
    // A single file is always model.safetensors, so that the output directory opens as a checkpoint.
    w.write(out.path() + "/" + (indexed ? file : std::string("model.safetensors")),
            io::WriteOptions{options.durable});
  }
  if (indexed) {
    nlohmann::json metadata = reader.metadata();
    metadata["total_size"] = total_size;
    const nlohmann::json index = {{"metadata", std::move(metadata)}, {"weight_map", weight_map}};
    detail::write_text(out.path() + "/" + detail::base_name(reader.path()), index.dump(2) + "\n",
                       options.durable);
  }

  std::vector<PrunedLayer> layers;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const BlockInfo& b = ckpt.blocks()[i];
    layers.push_back(PrunedLayer{b.name, b.layer, plans[i].after.heads(), plans[i].after.kv_heads(),
                                 plans[i].head_ids_after, plans[i].kv_head_ids_after});
  }
  const BlockInfo& first = ckpt.blocks().front();
  const OutputConfigInput config_in{first.original_heads, first.original_kv_heads, first.layout.head_dim(),
                                    enable_bias_flag};
  const nlohmann::json config = output_config(ckpt.config(), ckpt.preset(), layers, config_in);
  detail::write_text(out.path() + "/config.json", config.dump(2) + "\n", options.durable);

  if (ckpt.opened_as_directory()) {
    std::vector<std::string> skip = reader.shard_files();
    skip.push_back("config.json");
    skip.push_back(detail::base_name(reader.path()));
    copy_other_files(ckpt.directory(), out.path(), skip, options.durable);
  }
  out.commit(options.durable);

  PruneReport report;
  report.target = options.explicit_heads ? 0.0 : options.config.target_sparsity;
  for (std::size_t i = 0; i < plans.size(); ++i)
    report.blocks.push_back(detail::block_report(ckpt.blocks()[i], scores[i], &plans[i]));
  return report;
}

}  // namespace mhaprune::checkpoint
