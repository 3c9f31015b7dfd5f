// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/compensation/method.hpp"
#include "mhaprune/core/detail/name_table.hpp"
#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/reduction.hpp"
#include "mhaprune/criteria/registry.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/any_policy.hpp"
#include "mhaprune/pruner/inc_config.hpp"
#include "mhaprune/pruner/mha_pruner.hpp"
#include "mhaprune/schedules/decay.hpp"
#include "mhaprune/schedules/iterative.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/local_selection.hpp"

namespace mhaprune {

/// Whether heads compete across all blocks or within each block.
enum class PruningScope { global, local };

/// The names of the scopes: global, local.
inline constexpr detail::NameTable<PruningScope, 2> pruning_scope_names{
    {{{PruningScope::global, "global"}, {PruningScope::local, "local"}}}};

inline const char* to_string(PruningScope s) noexcept { return pruning_scope_names.name(s); }

/// The scope named `name` exactly.
/// @throws config_error naming the text and listing the valid names.
inline PruningScope parse_pruning_scope(std::string_view name) {
  if (const auto s = pruning_scope_names.find(name)) return *s;
  throw config_error(
      detail::message("unknown pruning scope \"", name, "\"; valid: ", pruning_scope_names.joined()));
}

/// Everything that configures a pruner, with the reference pruner's key names where it has them.
///
/// JSON keys (all optional): `target_sparsity` [0, 1], `pruning_scope` "global"|"local",
/// `criterion_type` (a criterion registry name), `criterion_reduce_type` "mean"|"sum"|"max"|"l2",
/// `sparsity_decay_type` "linear"|"cube"|"cos"|"exp", `start_step`, `end_step`, `pruning_frequency`
/// (integers; start == end is one-shot), `max_sparsity_ratio_per_op` [0, 1]; and mhaprune's own
/// `min_heads` (>= 1), `round_to` (>= 1), `gqa_mode` "uniform_per_group"|"whole_groups",
/// `normalization` "none"|"l2"|"standardize", `seed` (non-negative integer), `exact_target` (bool),
/// `compensation` "none"|"bias"|"scale"|"lsq"|"obs"|"bias+lsq". The names of each choice come from
/// one table each (`pruning_scope_names`, `reduction_table`, `decay_names`, `gqa_mode_names`,
/// `normalization_names`, `compensation_table`).
///
/// Intel Neural Compressor's configs load unchanged (see `inc_keys()` and the README's "Coming from
/// INC"): a config with `pattern` ("mha") gets INC's defaults (`inc_defaults()`) and INC's meaning;
/// INC's other keys are accepted and ignored with a warning; any other key is an error that names the
/// closest known key.
struct PrunerConfig {
  double target_sparsity = 0.0;
  PruningScope pruning_scope = PruningScope::global;
  std::string criterion_type = "magnitude";
  Reduction criterion_reduce_type = Reduction::mean;
  Decay sparsity_decay_type = Decay::exp;
  long start_step = 0;
  long end_step = 0;
  long pruning_frequency = 1;
  /// mhaprune's meaning: a block loses at most floor(this * its original heads).
  double max_sparsity_ratio_per_op = 1.0;
  Index min_heads = 1;
  Index round_to = 1;
  GqaMode gqa_mode = GqaMode::uniform_per_group;
  Normalization normalization = Normalization::none;
  std::uint64_t seed = 0;
  bool exact_target = false;
  /// How the kept heads make up for the removed ones when heads are removed for good (the checkpoint
  /// pipeline reads `checkpoint::PruneOptions::compensation`; the tool copies this into it unless
  /// --compensate is given). `make_pruner` does not use it: masking changes no kept weight.
  CompensationMethod compensation = CompensationMethod::none;

  /// What INC's `WeightPruningConfig` uses for the keys a config leaves out (target 0.9, criterion
  /// snip_momentum, exp decay, mean reduction, global scope, one-shot at step 0), in mhaprune's
  /// terms: INC's MHA pruner caps no block, so `max_sparsity_ratio_per_op` is 1 (INC's 0.98 caps an
  /// iterative schedule's target instead; `config_from_json` applies that to `target_sparsity`).
  static PrunerConfig inc_defaults() {
    PrunerConfig c;
    c.target_sparsity = 0.9;
    c.criterion_type = "snip_momentum";
    c.max_sparsity_ratio_per_op = 1.0;
    return c;
  }

  /// The guards and modes, checked.
  SelectionOptions selection_options() const {
    SelectionOptions o;
    o.min_heads = min_heads;
    o.max_ratio_per_block = max_sparsity_ratio_per_op;
    o.round_to = round_to;
    o.gqa_mode = gqa_mode;
    o.normalization = normalization;
    o.exact_target = exact_target;
    return o;
  }
};

/// INC's `max_sparsity_ratio_per_op` default, which caps an iterative schedule's target.
inline constexpr double inc_default_max_sparsity_ratio_per_op = 0.98;

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
                                             "exact_target",
                                             "compensation"};
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

inline double read_ratio(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto& v = j.at(key);
  if (!v.is_number()) {
    throw config_error(
        message(where, "config key \"", key, "\": expected a number in [0, 1], got ", v.dump()));
  }
  const double x = v.get<double>();
  if (!(x >= 0.0 && x <= 1.0))
    throw config_error(message(where, "config key \"", key, "\": ", x, " is outside [0, 1]"));
  return x;
}

inline long read_integer(const nlohmann::json& j, const char* key, long min, const std::string& where) {
  const auto& v = j.at(key);
  if (!v.is_number_integer()) {
    throw config_error(
        message(where, "config key \"", key, "\": expected an integer >= ", min, ", got ", v.dump()));
  }
  // An unsigned JSON integer above LONG_MAX would wrap to a negative long.
  if (v.is_number_unsigned() &&
      v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<long>::max())) {
    throw config_error(message(where, "config key \"", key, "\": ", v.dump(), " is above the maximum ",
                               std::numeric_limits<long>::max()));
  }
  const long x = v.get<long>();
  if (x < min)
    throw config_error(message(where, "config key \"", key, "\": ", x, " is below the minimum ", min));
  return x;
}

// The seed spans the whole of PrunerConfig::seed (std::uint64_t), so that every config round-trips.
inline std::uint64_t read_seed(const nlohmann::json& j, const std::string& where) {
  const auto& v = j.at("seed");
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
    throw config_error(
        message(where, "config key \"seed\": expected an integer in [0, 2^64), got ", v.dump()));
  }
  return v.get<std::uint64_t>();
}

inline std::string read_string(const nlohmann::json& j, const char* key,
                               const std::vector<std::string>& allowed, const std::string& where) {
  const auto& v = j.at(key);
  if (!v.is_string()) {
    throw config_error(message(where, "config key \"", key,
                               "\": expected a string, one of: ", joined(allowed), "; got ", v.dump()));
  }
  std::string s = v.get<std::string>();
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    throw config_error(
        message(where, "config key \"", key, "\": \"", s, "\" is not one of: ", joined(allowed)));
  }
  return s;
}

/// A choice read through the enum's name table.
template <typename Enum, std::size_t N>
Enum read_choice(const nlohmann::json& j, const char* key, const NameTable<Enum, N>& table,
                 const std::string& where) {
  return *table.find(read_string(j, key, table.names(), where));
}

/// `op_names` / `excluded_op_names`: a regex or a list of them, each one that std::regex accepts.
inline std::vector<std::string> read_regex_list(const nlohmann::json& j, const char* key,
                                                const std::string& where) {
  const auto& v = j.at(key);
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); })) {
    for (const auto& e : v) out.push_back(e.get<std::string>());
  } else if (!v.is_null()) {
    throw config_error(message(where, "config key \"", key,
                               "\": expected a list of regular expressions (strings), got ", v.dump()));
  }
  for (const std::string& r : out) {
    try {
      std::regex compiled(r);
    } catch (const std::regex_error& e) {
      throw config_error(message(where, "config key \"", key, "\": \"", r,
                                 "\" is not a valid regular expression: ", e.what()));
    }
  }
  return out;
}

/// One config object (a local config merged with the global keys), read.
struct ReadConfig {
  PrunerConfig config;
  std::vector<std::string> op_names, excluded_op_names;
  std::vector<std::string> ignored_keys;  ///< INC keys present that mhaprune ignores
};

/// Reads one config object. `where` prefixes every message ("" or "pruning_configs[1]: ").
inline ReadConfig read_config_object(const nlohmann::json& j, const CriterionRegistry& registry,
                                     const std::string& where) {
  const auto& keys = config_keys();
  ReadConfig r;
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    if (const IncKey* inc = find_inc_key(key)) {
      if (inc->use == IncKeyUse::ignored) r.ignored_keys.push_back(key);
      continue;
    }
    std::vector<std::string> known = keys;
    for (const IncKey& k : inc_keys()) known.emplace_back(k.name);
    known.emplace_back("pruning_configs");
    std::vector<std::string> inc_names;
    for (const IncKey& k : inc_keys())
      if (std::find(keys.begin(), keys.end(), k.name) == keys.end()) inc_names.emplace_back(k.name);
    throw config_error(message(where, "unknown config key \"", key, "\"; did you mean \"",
                               closest_name(key, known), "\"? valid keys: ", joined(keys),
                               "; and Intel Neural Compressor's ", joined(inc_names), ", pruning_configs"));
  }
  const bool inc = j.contains("pattern");
  if (inc) {
    const auto& p = j.at("pattern");
    if (!p.is_string() || p.get<std::string>() != "mha") {
      throw config_error(message(where, "config key \"pattern\": ", p.dump(),
                                 " is not supported: mhaprune prunes attention heads, which is INC's "
                                 "\"mha\" pattern; give \"pattern\": \"mha\" or leave the key out"));
    }
  }
  PrunerConfig c = inc ? PrunerConfig::inc_defaults() : PrunerConfig{};
  double inc_cap = inc_default_max_sparsity_ratio_per_op;
  if (j.contains("target_sparsity")) c.target_sparsity = read_ratio(j, "target_sparsity", where);
  if (j.contains("pruning_scope"))
    c.pruning_scope = read_choice(j, "pruning_scope", pruning_scope_names, where);
  if (j.contains("criterion_type"))
    c.criterion_type = read_string(j, "criterion_type", registry.names(), where);
  if (j.contains("criterion_reduce_type"))
    c.criterion_reduce_type = read_choice(j, "criterion_reduce_type", reduction_table, where);
  if (j.contains("sparsity_decay_type"))
    c.sparsity_decay_type = read_choice(j, "sparsity_decay_type", decay_names, where);
  if (j.contains("start_step")) c.start_step = read_integer(j, "start_step", 0, where);
  if (j.contains("end_step")) c.end_step = read_integer(j, "end_step", 0, where);
  if (j.contains("pruning_frequency")) c.pruning_frequency = read_integer(j, "pruning_frequency", 1, where);
  if (j.contains("max_sparsity_ratio_per_op")) {
    const double x = read_ratio(j, "max_sparsity_ratio_per_op", where);
    if (inc) {
      inc_cap = x;
    } else {
      c.max_sparsity_ratio_per_op = x;
    }
  }
  if (j.contains("min_heads")) c.min_heads = read_integer(j, "min_heads", 1, where);
  if (j.contains("round_to")) c.round_to = read_integer(j, "round_to", 1, where);
  if (j.contains("gqa_mode")) c.gqa_mode = read_choice(j, "gqa_mode", gqa_mode_names, where);
  if (j.contains("normalization"))
    c.normalization = read_choice(j, "normalization", normalization_names, where);
  if (j.contains("seed")) c.seed = read_seed(j, where);
  if (j.contains("exact_target")) {
    if (!j.at("exact_target").is_boolean()) {
      throw config_error(message(where, "config key \"exact_target\": expected true or false, got ",
                                 j.at("exact_target").dump()));
    }
    c.exact_target = j.at("exact_target").get<bool>();
  }
  if (j.contains("compensation")) {
    // Also the alias "lsq+bias" that parse_compensation reads.
    const auto& v = j.at("compensation");
    if (v.is_string() && v.get<std::string>() == "lsq+bias") {
      c.compensation = CompensationMethod::bias_lsq;
    } else {
      c.compensation = read_choice(j, "compensation", compensation_table, where);
    }
  }
  if (c.end_step < c.start_step) {
    throw config_error(message(where, "config keys \"start_step\" (", c.start_step, ") and \"end_step\" (",
                               c.end_step, "): end_step must not be before start_step"));
  }
  // INC's MHA pruner: the cap bounds an iterative schedule's target (a one-shot one is not capped).
  if (inc && c.start_step != c.end_step) c.target_sparsity = std::min(c.target_sparsity, inc_cap);
  if (j.contains("op_names")) r.op_names = read_regex_list(j, "op_names", where);
  if (j.contains("excluded_op_names")) r.excluded_op_names = read_regex_list(j, "excluded_op_names", where);
  r.config = std::move(c);
  return r;
}

/// The one warning for INC keys that are accepted and ignored, listing each once; "" when none.
inline std::string ignored_keys_warning(const std::vector<std::string>& keys) {
  std::vector<std::string> unique;
  for (const IncKey& k : inc_keys())
    if (std::find(keys.begin(), keys.end(), k.name) != keys.end()) unique.emplace_back(k.name);
  if (unique.empty()) return {};
  return message("Intel Neural Compressor config keys accepted and ignored (mhaprune does not use them): ",
                 joined(unique));
}

}  // namespace detail

/// Reads a config; strong guarantee (the result is built aside). Throws `config_error` naming the key
/// and the allowed values for unknown keys (and the closest known key), wrong types and out-of-range
/// values, and for a criterion name the registry does not know (listing the names it does).
///
/// INC's layout is read too: `{"pruning_configs": [ONE local config], <global keys>}`, the local
/// config inheriting the global keys. A document with several local configs, or with `op_names` /
/// `excluded_op_names`, describes blocks a `PrunerConfig` cannot hold: `config_from_json` refuses it
/// (config_error) and `pruning_plan_from_json` reads it. INC keys that mhaprune ignores are listed in
/// one message appended to `*warnings` when given.
inline PrunerConfig config_from_json(const nlohmann::json& j,
                                     const CriterionRegistry& registry = criterion_registry(),
                                     std::vector<std::string>* warnings = nullptr) {
  if (!j.is_object())
    throw config_error(detail::message("a pruner config must be a JSON object, got ", j.dump()));
  const std::vector<nlohmann::json> objects = detail::inc_local_objects(j);
  if (objects.size() != 1) {
    throw config_error(detail::message("the config holds ", objects.size(),
                                       " pruning_configs; a PrunerConfig is one: read it with "
                                       "pruning_plan_from_json (mhaprune prune --config does)"));
  }
  const std::string where = j.contains("pruning_configs") ? "pruning_configs[0]: " : "";
  detail::ReadConfig r = detail::read_config_object(objects.front(), registry, where);
  if (!r.op_names.empty() || !r.excluded_op_names.empty()) {
    throw config_error(detail::message(where,
                                       "the config selects blocks (op_names / excluded_op_names), which a "
                                       "PrunerConfig cannot hold: read it with pruning_plan_from_json "
                                       "(mhaprune prune --config does)"));
  }
  if (warnings) {
    const std::string w = detail::ignored_keys_warning(r.ignored_keys);
    if (!w.empty()) warnings->push_back(w);
  }
  return r.config;
}

inline void to_json(nlohmann::json& j, const PrunerConfig& c) {
  j = nlohmann::json{{"target_sparsity", c.target_sparsity},
                     {"pruning_scope", to_string(c.pruning_scope)},
                     {"criterion_type", c.criterion_type},
                     {"criterion_reduce_type", to_string(c.criterion_reduce_type)},
                     {"sparsity_decay_type", to_string(c.sparsity_decay_type)},
                     {"start_step", c.start_step},
                     {"end_step", c.end_step},
                     {"pruning_frequency", c.pruning_frequency},
                     {"max_sparsity_ratio_per_op", c.max_sparsity_ratio_per_op},
                     {"min_heads", c.min_heads},
                     {"round_to", c.round_to},
                     {"gqa_mode", to_string(c.gqa_mode)},
                     {"normalization", to_string(c.normalization)},
                     {"seed", c.seed},
                     {"exact_target", c.exact_target},
                     {"compensation", std::string(to_string(c.compensation))}};
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
  co.reduce = to_string(c.criterion_reduce_type);
  co.seed = c.seed;
  AnyCriterion criterion = registry.make(c.criterion_type, co);
  AnyMaskPolicy policy = c.pruning_scope == PruningScope::local ? AnyMaskPolicy(LocalSelection{})
                                                                : AnyMaskPolicy(GlobalSelection{});
  AnySchedule schedule = c.start_step == c.end_step
                             ? AnySchedule(OneshotSchedule(c.start_step))
                             : AnySchedule(IterativeSchedule(c.start_step, c.end_step, c.pruning_frequency,
                                                             c.sparsity_decay_type));
  return ConfiguredPruner<Scalar>(std::move(criterion), std::move(policy), std::move(schedule),
                                  c.selection_options());
}

}  // namespace mhaprune
