// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/fisher.hpp"
#include "mhaprune/criteria/fluctuation.hpp"
#include "mhaprune/criteria/gradient.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/criteria/obs.hpp"
#include "mhaprune/criteria/random.hpp"
#include "mhaprune/criteria/reduction.hpp"
#include "mhaprune/criteria/role_weights.hpp"
#include "mhaprune/criteria/snip.hpp"
#include "mhaprune/criteria/snip_momentum.hpp"
#include "mhaprune/criteria/taylor.hpp"
#include "mhaprune/criteria/wanda_sp.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Everything a configuration can say about a criterion. Each criterion reads what applies to it and
/// ignores the rest.
struct CriterionOptions {
  std::string reduce = "mean";  ///< magnitude, gradient, snip, snip_momentum: "mean|sum|max|l2"
  RoleWeights weights{};        ///< the same four: weights of the Q, K, V, O numbers
  double alpha = 0.9;           ///< snip_momentum: decay
  double beta = 1.0;            ///< snip_momentum: weight of each step
  std::uint64_t seed = 0;       ///< random
  bool normalize = false;       ///< taylor, fisher: per-layer L2 normalisation
};

/// Builds a criterion from options; may throw `config_error` for options it cannot use.
using CriterionFactory = std::function<AnyCriterion(const CriterionOptions&)>;

/// Names → criteria, for configuration-driven use.
///
/// `with_builtins()` knows "magnitude", "gradient", "snip", "snip_momentum", "taylor", "fisher",
/// "wanda_sp", "fluctuation", "random" and "obs"; `add` registers more (a user's class or lambda wrapped in
/// an `AnyCriterion`). Names are listed in sorted order, so messages do not depend on registration order.
/// Not thread-safe for concurrent `add`; concurrent `make` calls are fine.
class CriterionRegistry {
 public:
  /// An empty registry.
  CriterionRegistry() = default;

  /// A registry with the built-in criteria.
  static CriterionRegistry with_builtins() {
    CriterionRegistry r;
    r.add("magnitude",
          [](const CriterionOptions& o) { return AnyCriterion(Magnitude(element_wise(o, "magnitude"))); });
    r.add("gradient",
          [](const CriterionOptions& o) { return AnyCriterion(Gradient(element_wise(o, "gradient"))); });
    r.add("snip", [](const CriterionOptions& o) { return AnyCriterion(Snip(element_wise(o, "snip"))); });
    r.add("snip_momentum", [](const CriterionOptions& o) {
      return AnyCriterion(
          SnipMomentum(SnipMomentumOptions{o.alpha, o.beta, reduction(o, "snip_momentum"), o.weights}));
    });
    r.add("taylor", [](const CriterionOptions& o) { return AnyCriterion(Taylor(o.normalize)); });
    r.add("fisher", [](const CriterionOptions& o) { return AnyCriterion(Fisher(o.normalize)); });
    r.add("wanda_sp", [](const CriterionOptions&) { return AnyCriterion(WandaSp{}); });
    r.add("fluctuation", [](const CriterionOptions&) { return AnyCriterion(Fluctuation{}); });
    r.add("random", [](const CriterionOptions& o) { return AnyCriterion(Random(o.seed)); });
    r.add("obs", [](const CriterionOptions&) { return AnyCriterion(Obs{}); });
    return r;
  }

  /// Registers `factory` under `name`.
  /// @throws config_error when `name` is empty or taken, or `factory` is empty.
  CriterionRegistry& add(std::string name, CriterionFactory factory) {
    if (name.empty()) throw config_error("CriterionRegistry::add(): empty criterion name");
    if (!factory)
      throw config_error(detail::message("CriterionRegistry::add(): empty factory for \"", name, "\""));
    if (contains(name)) {
      throw config_error(detail::message("CriterionRegistry::add(): a criterion named \"", name,
                                         "\" is already registered"));
    }
    factories_.emplace(std::move(name), std::move(factory));
    return *this;
  }

  /// Removes a name; returns whether it was there.
  bool remove(std::string_view name) {
    const auto it = factories_.find(name);
    if (it == factories_.end()) return false;
    factories_.erase(it);
    return true;
  }

  bool contains(std::string_view name) const { return factories_.find(name) != factories_.end(); }

  /// The registered names, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : factories_) out.push_back(entry.first);
    return out;
  }

  /// Builds the criterion `name` with `options`; the result is named `name`.
  /// @throws config_error listing the valid names when `name` is unknown, and what the factory throws
  ///         (config_error listing the valid reductions for an unknown `options.reduce`).
  AnyCriterion make(std::string_view name, const CriterionOptions& options = CriterionOptions{}) const {
    const auto it = factories_.find(name);
    if (it == factories_.end()) {
      std::string valid;
      for (const auto& entry : factories_) {
        valid += valid.empty() ? "" : ", ";
        valid += entry.first;
      }
      throw config_error(
          detail::message("CriterionRegistry::make(): unknown criterion \"", name,
                          "\"; valid: ", valid.empty() ? std::string("(none registered)") : valid));
    }
    AnyCriterion c = it->second(options);
    c.rename(it->first);
    return c;
  }

 private:
  static Reduction reduction(const CriterionOptions& o, const char* who) {
    try {
      return parse_reduction(o.reduce);
    } catch (const config_error&) {
      throw config_error(
          detail::message(who, ": unknown reduce \"", o.reduce, "\"; valid: ", reduction_names()));
    }
  }
  static ElementWiseOptions element_wise(const CriterionOptions& o, const char* who) {
    return ElementWiseOptions{reduction(o, who), o.weights};
  }

  std::map<std::string, CriterionFactory, std::less<>> factories_;
};

/// The process-wide registry, with the built-ins; register your own names here for configuration
/// files to find them. Not thread-safe for concurrent `add`.
inline CriterionRegistry& criterion_registry() {
  static CriterionRegistry registry = CriterionRegistry::with_builtins();
  return registry;
}

/// `criterion_registry().make(name, options)`.
inline AnyCriterion criterion_from_name(std::string_view name,
                                        const CriterionOptions& options = CriterionOptions{}) {
  return criterion_registry().make(name, options);
}

}  // namespace mhaprune
