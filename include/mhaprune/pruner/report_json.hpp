// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <nlohmann/json.hpp>

#include "mhaprune/pruner/prune_report.hpp"

namespace mhaprune {

/// `{"blocks": [{"name", "heads_before", "heads_after", "removed", "scores", ...}], "totals": {...}}`.
/// Other tools read these names: add fields, never rename or remove them.
inline void to_json(nlohmann::json& j, const BlockCost& c) {
  j = nlohmann::json{{"heads", c.heads},
                     {"kv_heads", c.kv_heads},
                     {"parameters", c.parameters},
                     {"projection_flops_per_token", c.projection_flops_per_token},
                     {"attention_flops_per_context_token", c.attention_flops_per_context_token}};
}

inline void to_json(nlohmann::json& j, const BlockReport& b) {
  j = nlohmann::json{{"name", b.name},
                     {"heads_before", b.before.heads},
                     {"heads_after", b.after.heads},
                     {"kv_heads_before", b.before.kv_heads},
                     {"kv_heads_after", b.after.kv_heads},
                     {"removed", b.removed},
                     {"removed_kv", b.removed_kv},
                     {"head_ids", b.head_ids},
                     {"scores", b.scores},
                     {"parameters_before", b.before.parameters},
                     {"parameters_after", b.after.parameters}};
}

inline void to_json(nlohmann::json& j, const SkippedStep& s) {
  j = nlohmann::json{{"step", s.step}, {"reason", s.reason}};
}

/// Also `"steps_skipped"` (a count) and `"skipped_steps"` (`[{"step", "reason"}]`): the pruning steps
/// the training-loop hooks skipped for want of evidence.
inline void to_json(nlohmann::json& j, const PruneReport& r) {
  const BlockCost before = r.total(false), after = r.total(true);
  j = nlohmann::json{
      {"target", r.target},
      {"blocks", r.blocks},
      {"steps_skipped", r.steps_skipped()},
      {"skipped_steps", r.skipped_steps},
      {"totals",
       {{"heads_before", before.heads},
        {"heads_after", after.heads},
        {"heads_removed", before.heads - after.heads},
        {"kv_heads_before", before.kv_heads},
        {"kv_heads_after", after.kv_heads},
        {"parameters_before", before.parameters},
        {"parameters_after", after.parameters},
        {"parameters_removed", before.parameters - after.parameters},
        {"projection_flops_per_token_before", before.projection_flops_per_token},
        {"projection_flops_per_token_after", after.projection_flops_per_token},
        {"projection_flops_per_token_saved",
         before.projection_flops_per_token - after.projection_flops_per_token},
        {"attention_flops_per_context_token_before", before.attention_flops_per_context_token},
        {"attention_flops_per_context_token_after", after.attention_flops_per_context_token}}}};
}

}  // namespace mhaprune
