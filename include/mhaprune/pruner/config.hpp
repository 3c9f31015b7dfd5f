// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/registry.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/any_policy.hpp"
#include "mhaprune/pruner/mha_pruner.hpp"
#include "mhaprune/schedules/decay.hpp"
#include "mhaprune/schedules/iterative.hpp"
#include "mhaprune/selection/local_selection.hpp"

namespace mhaprune {

/// Everything that configures a pruner, with the reference pruner's key names where it has them.
///
/// JSON keys (all optional; unknown keys are errors): `target_sparsity` [0, 1], `pruning_scope`
/// "global"|"local", `criterion_type` (a criterion registry name), `criterion_reduce_type`
/// "mean"|"sum"|"max"|"l2", `sparsity_decay_type` "linear"|"cube"|"cos"|"exp", `start_step`,
/// `end_step`, `pruning_frequency` (integers; start == end is one-shot), `max_sparsity_ratio_per_op`
/// [0, 1]; and mhaprune's own `min_heads` (>= 1), `round_to` (>= 1), `gqa_mode`
/// "uniform_per_group"|"whole_groups", `normalization` "none"|"l2"|"standardize", `seed`
/// (non-negative integer), `exact_target` (bool).
struct PrunerConfig {
  double target_sparsity = 0.0;
  std::string pruning_scope = "global";
  std::string criterion_type = "magnitude";
  std::string criterion_reduce_type = "mean";
  std::string sparsity_decay_type = "exp";
  long start_step = 0;
  long end_step = 0;
  long pruning_frequency = 1;
  double max_sparsity_ratio_per_op = 1.0;
  Index min_heads = 1;
  Index round_to = 1;
  std::string gqa_mode = "uniform_per_group";
  std::string normalization = "none";
  std::uint64_t seed = 0;
  bool exact_target = false;

  /// The guards and modes, checked.
  SelectionOptions selection_options() const {
    SelectionOptions o;
    o.min_heads = min_heads;
    o.max_ratio_per_block = max_sparsity_ratio_per_op;
    o.round_to = round_to;
    o.gqa_mode = gqa_mode == "whole_groups" ? GqaMode::whole_groups : GqaMode::uniform_per_group;
    o.normalization = normalization == "l2"            ? Normalization::l2
                      : normalization == "standardize" ? Normalization::standardize
                                                       : Normalization::none;
    o.exact_target = exact_target;
    return o;
  }
};

namespace detail {

inline const std::vector<std::string>& config_keys() {
  static const std::vector<std::string> keys{"target_sparsity",
                                             "pruning_scope",
                                             "criterion_type",
                                             "criterion_reduce_type",
                                             "sparsity_decay_type",
                                             "start_step",
                                             "end_step",
                                             "pruning_frequency",
                                             "max_sparsity_ratio_per_op",
                                             "min_heads",
                                             "round_to",
                                             "gqa_mode",
                                             "normalization",
                                             "seed",
                                             "exact_target"};
  return keys;
}

inline std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    s += s.empty() ? "" : ", ";
    s += n;
  }
  return s;
}

inline void check_choice(const char* key, const std::string& value, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (a == value) return;
  throw config_error(message("config key \"", key, "\": \"", value, "\" is not one of: ", joined(allowed)));
}

inline double read_ratio(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  if (!v.is_number())
    throw config_error(message("config key \"", key, "\": expected a number in [0, 1], got ", v.dump()));
  const double x = v.get<double>();
  if (!(x >= 0.0 && x <= 1.0))
    throw config_error(message("config key \"", key, "\": ", x, " is outside [0, 1]"));
  return x;
}

inline long read_integer(const nlohmann::json& j, const char* key, long min) {
  const auto& v = j.at(key);
  if (!v.is_number_integer()) {
    throw config_error(message("config key \"", key, "\": expected an integer >= ", min, ", got ", v.dump()));
  }
  // An unsigned JSON integer above LONG_MAX would wrap to a negative long.
  if (v.is_number_unsigned() &&
      v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<long>::max())) {
    throw config_error(message("config key \"", key, "\": ", v.dump(), " is above the maximum ",
                               std::numeric_limits<long>::max()));
  }
  const long x = v.get<long>();
  if (x < min) throw config_error(message("config key \"", key, "\": ", x, " is below the minimum ", min));
  return x;
}

// The seed spans the whole of PrunerConfig::seed (std::uint64_t), so that every config round-trips.
inline std::uint64_t read_seed(const nlohmann::json& j) {
  const auto& v = j.at("seed");
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
    throw config_error(message("config key \"seed\": expected an integer in [0, 2^64), got ", v.dump()));
  }
  return v.get<std::uint64_t>();
}

inline std::string read_string(const nlohmann::json& j, const char* key,
                               const std::vector<std::string>& allowed) {
  const auto& v = j.at(key);
  if (!v.is_string()) {
    throw config_error(message("config key \"", key, "\": expected a string, one of: ", joined(allowed),
                               "; got ", v.dump()));
  }
  std::string s = v.get<std::string>();
  check_choice(key, s, allowed);
  return s;
}

}  // namespace detail

/// Reads a config; strong guarantee (the result is built aside). Throws `config_error` naming the key
/// and the allowed values for unknown keys, wrong types and out-of-range values, and for a criterion
/// name the registry does not know (listing the names it does).
inline PrunerConfig config_from_json(const nlohmann::json& j,
                                     const CriterionRegistry& registry = criterion_registry()) {
  if (!j.is_object())
    throw config_error(detail::message("a pruner config must be a JSON object, got ", j.dump()));
  for (const auto& item : j.items()) {
    const auto& keys = detail::config_keys();
    if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) {
      throw config_error(
          detail::message("unknown config key \"", item.key(), "\"; valid keys: ", detail::joined(keys)));
    }
  }
  PrunerConfig c;
  if (j.contains("target_sparsity")) c.target_sparsity = detail::read_ratio(j, "target_sparsity");
  if (j.contains("pruning_scope"))
    c.pruning_scope = detail::read_string(j, "pruning_scope", {"global", "local"});
  if (j.contains("criterion_type"))
    c.criterion_type = detail::read_string(j, "criterion_type", registry.names());
  if (j.contains("criterion_reduce_type")) {
    c.criterion_reduce_type = detail::read_string(j, "criterion_reduce_type", {"mean", "sum", "max", "l2"});
  }
  if (j.contains("sparsity_decay_type")) {
    c.sparsity_decay_type = detail::read_string(j, "sparsity_decay_type", {"linear", "cube", "cos", "exp"});
  }
  if (j.contains("start_step")) c.start_step = detail::read_integer(j, "start_step", 0);
  if (j.contains("end_step")) c.end_step = detail::read_integer(j, "end_step", 0);
  if (j.contains("pruning_frequency")) c.pruning_frequency = detail::read_integer(j, "pruning_frequency", 1);
  if (j.contains("max_sparsity_ratio_per_op")) {
    c.max_sparsity_ratio_per_op = detail::read_ratio(j, "max_sparsity_ratio_per_op");
  }
  if (j.contains("min_heads")) c.min_heads = detail::read_integer(j, "min_heads", 1);
  if (j.contains("round_to")) c.round_to = detail::read_integer(j, "round_to", 1);
  if (j.contains("gqa_mode"))
    c.gqa_mode = detail::read_string(j, "gqa_mode", {"uniform_per_group", "whole_groups"});
  if (j.contains("normalization")) {
    c.normalization = detail::read_string(j, "normalization", {"none", "l2", "standardize"});
  }
  if (j.contains("seed")) c.seed = detail::read_seed(j);
  if (j.contains("exact_target")) {
    if (!j.at("exact_target").is_boolean()) {
      throw config_error(detail::message("config key \"exact_target\": expected true or false, got ",
                                         j.at("exact_target").dump()));
    }
    c.exact_target = j.at("exact_target").get<bool>();
  }
  if (c.end_step < c.start_step) {
    throw config_error(detail::message("config keys \"start_step\" (", c.start_step, ") and \"end_step\" (",
                                       c.end_step, "): end_step must not be before start_step"));
  }
  return c;
}

inline void to_json(nlohmann::json& j, const PrunerConfig& c) {
  j = nlohmann::json{{"target_sparsity", c.target_sparsity},
                     {"pruning_scope", c.pruning_scope},
                     {"criterion_type", c.criterion_type},
                     {"criterion_reduce_type", c.criterion_reduce_type},
                     {"sparsity_decay_type", c.sparsity_decay_type},
                     {"start_step", c.start_step},
                     {"end_step", c.end_step},
                     {"pruning_frequency", c.pruning_frequency},
                     {"max_sparsity_ratio_per_op", c.max_sparsity_ratio_per_op},
                     {"min_heads", c.min_heads},
                     {"round_to", c.round_to},
                     {"gqa_mode", c.gqa_mode},
                     {"normalization", c.normalization},
                     {"seed", c.seed},
                     {"exact_target", c.exact_target}};
}

/// The pruner a config describes, its parts chosen at run time.
template <typename Scalar = float>
using ConfiguredPruner = MhaPruner<AnyCriterion, AnyMaskPolicy, AnySchedule, Scalar>;

/// Builds the pruner a config describes through the registries. Throws `config_error` as
/// `config_from_json` does for a config made in code.
template <typename Scalar = float>
ConfiguredPruner<Scalar> make_pruner(const PrunerConfig& c,
                                     const CriterionRegistry& registry = criterion_registry()) {
  config_from_json(nlohmann::json(c), registry);  // one set of checks for code-made and read configs
  CriterionOptions co;
  co.reduce = c.criterion_reduce_type;
  co.seed = c.seed;
  AnyCriterion criterion = registry.make(c.criterion_type, co);
  AnyMaskPolicy policy =
      c.pruning_scope == "local" ? AnyMaskPolicy(LocalSelection{}) : AnyMaskPolicy(GlobalSelection{});
  AnySchedule schedule = c.start_step == c.end_step
                             ? AnySchedule(OneshotSchedule(c.start_step))
                             : AnySchedule(IterativeSchedule(c.start_step, c.end_step, c.pruning_frequency,
                                                             parse_decay(c.sparsity_decay_type)));
  return ConfiguredPruner<Scalar>(std::move(criterion), std::move(policy), std::move(schedule),
                                  c.selection_options());
}

}  // namespace mhaprune
