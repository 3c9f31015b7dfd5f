// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// Hugging Face-style checkpoints (config.json + safetensors, single or sharded): architecture
/// presets and detection, opening and checking a checkpoint, scoring its heads and writing a pruned
/// copy, streaming block by block. POSIX only; not included by mhaprune/mhaprune.hpp.
///
///     namespace ck = mhaprune::checkpoint;
///     const ck::Checkpoint model = ck::Checkpoint::open("tiny-qwen2");
///     ck::PruneOptions options;
///     options.config.target_sparsity = 0.25;
///     const mhaprune::PruneReport report = ck::prune_checkpoint(model, "tiny-qwen2-pruned", options);

#include "mhaprune/checkpoint/block_assembly.hpp"
#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/block_plan.hpp"
#include "mhaprune/checkpoint/copy_files.hpp"
#include "mhaprune/checkpoint/detect.hpp"
#include "mhaprune/checkpoint/model_config.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/checkpoint/output_config.hpp"
#include "mhaprune/checkpoint/output_directory.hpp"
#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/checkpoint/prune_checkpoint.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/checkpoint/score_blocks.hpp"
#include "mhaprune/checkpoint/streamed_blocks.hpp"
#include "mhaprune/checkpoint/user_preset.hpp"
#include "mhaprune/error.hpp"
