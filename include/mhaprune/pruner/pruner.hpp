// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// The pruner and what comes with it: report, JSON, config, run-time policies.
#include "mhaprune/pruner/any_policy.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/mha_pruner.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/pruner/pruning_plan.hpp"
#include "mhaprune/pruner/report_json.hpp"
