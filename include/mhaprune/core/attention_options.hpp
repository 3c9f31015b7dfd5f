// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>

#include "mhaprune/core/head_selection.hpp"

namespace mhaprune {

/// How one attention forward is run, for the reference oracle (`reference::head_outputs`, which
/// also calls it `reference::AttentionOptions`) and for calibration (`attention_head_outputs`,
/// `collect_output_input`). It lives in core so that both can take it without one including the other.
struct AttentionOptions {
  /// Token i attends to tokens 0..i only.
  bool causal = false;
  /// Heads to silence, over the block's current heads: a masked head contributes nothing to O's input.
  std::optional<HeadMask> mask;
  /// Logit scale; 1/sqrt(d) when not set.
  std::optional<double> scale;
};

}  // namespace mhaprune
