// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// mhaprune: remove attention heads from transformer weights, in place, in the caller's own buffers.

#include "mhaprune/version.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/segment.hpp"
#include "mhaprune/core/tensor_ref.hpp"
#include "mhaprune/core/tensor_spec.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/core/compact.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/layouts/segments.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"
#include "mhaprune/layouts/fused_qkv.hpp"
#include "mhaprune/layouts/extras.hpp"
#include "mhaprune/reference/gather.hpp"
#include "mhaprune/reference/attention.hpp"
#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/calibration/collect.hpp"
