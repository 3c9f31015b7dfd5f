// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>

#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// One number per (role, current unit) of a block: what an element-wise criterion measures on each
/// head's slice of Q, K, V and O before they are combined into head scores.
///
/// `query` and `output` have one entry per current query head (H), `key` and `value` one per current
/// key/value head (H_kv).
struct RoleNumbers {
  Eigen::VectorXd query;
  Eigen::VectorXd key;
  Eigen::VectorXd value;
  Eigen::VectorXd output;
};

/// The weights of a head's Q, K, V and O numbers in its score; the default, all 1, is the reference
/// pruner's (q + k + v + o) / 4.
///
/// Each weight must be finite and >= 0, and their sum > 0 (`validate` throws `config_error`).
struct RoleWeights {
  double query = 1.0;
  double key = 1.0;
  double value = 1.0;
  double output = 1.0;

  double total() const noexcept { return query + key + value + output; }

  /// @throws config_error naming `who` and the offending weight.
  void validate(const char* who) const {
    const double w[4] = {query, key, value, output};
    const char* names[4] = {"query", "key", "value", "output"};
    for (int i = 0; i < 4; ++i) {
      if (!std::isfinite(w[i]) || w[i] < 0.0) {
        throw config_error(
            detail::message(who, ": role weight ", names[i], " = ", w[i], "; expected a finite value >= 0"));
      }
    }
    if (!(total() > 0.0)) throw config_error(detail::message(who, ": the role weights are all zero"));
  }
};

/// Head scores from per-role numbers: score_h = (w_q·q_h + w_k·k_g + w_v·v_g + w_o·o_h) / Σw, with
/// g = h / r the key/value head that query head h reads.
///
/// GQA apportioning: a key/value head's number is shared, as it is, by each of the r query heads of its
/// group; it is not divided by r, for every reduction (`sum` included). Removing one query head never
/// removes its K/V rows (they go only with the whole group), so the K/V number measures the group the
/// head belongs to, not a share of it that the head would take away. Not dividing also keeps
/// `sum` = d·D·`mean` for every head, so `sum` and `mean` rank alike with and without GQA. Policies
/// that remove whole groups use `group_scores`.
///
/// @throws shape_error when the numbers' sizes disagree with `layout`.
inline Eigen::VectorXd combine_roles(const HeadLayout& layout, const RoleNumbers& n, const RoleWeights& w) {
  const Index H = layout.heads(), Hkv = layout.kv_heads();
  if (n.query.size() != H || n.output.size() != H || n.key.size() != Hkv || n.value.size() != Hkv) {
    throw shape_error(detail::message("combine_roles(): expected ", H, " query and output numbers and ", Hkv,
                                      " key and value numbers, got ", n.query.size(), ", ", n.output.size(),
                                      ", ", n.key.size(), ", ", n.value.size()));
  }
  const double total = w.total();
  Eigen::VectorXd s(H);
  for (Index h = 0; h < H; ++h) {
    const Index g = layout.kv_head_of(h);
    s(h) = (w.query * n.query(h) + w.key * n.key(g) + w.value * n.value(g) + w.output * n.output(h)) / total;
  }
  return s;
}

}  // namespace mhaprune
