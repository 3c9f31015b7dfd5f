// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <string_view>

#include "mhaprune/core/detail/name_table.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// How the heads that stay make up for the heads that go, computed from statistics of O's input X
/// (the concatenated head outputs of the current block, C = H*d channels) over calibration tokens.
///
/// | method     | name         | what changes                            | needs                      |
/// |------------|--------------|-----------------------------------------|----------------------------|
/// | `none`     | `"none"`     | nothing (plain `remove_heads`)          | nothing                    |
/// | `bias`     | `"bias"`     | O's bias += O[:, R] · mean(X_R) (FLAP)  | mean                       |
/// | `scale`    | `"scale"`    | one multiplier per kept head (Kwon)     | Gram matrix                |
/// | `lsq`      | `"lsq"`      | O's kept columns, uncentred refit       | Gram matrix                |
/// | `obs`      | `"obs"`      | O's kept columns, greedy structured OBS | Gram matrix                |
/// | `bias_lsq` | `"bias+lsq"` | O's kept columns (centred refit) + bias | Gram matrix and mean       |
///
/// `lsq` fits X_K O_K'ᵀ to X Oᵀ with the uncentred second moments G = XᵀX / n and leaves the bias
/// alone; `bias+lsq` fits the centred parts with the covariance Σ = G - μμᵀ and moves the mean into
/// the bias, which is the best affine refit (never worse than `lsq` on the calibration data, up to
/// the damping). R: removed channels, K: kept channels.
enum class CompensationMethod { none, bias, scale, lsq, obs, bias_lsq };

/// What the ridge of `lsq` / `bias+lsq` pulls the refitted columns towards.
/// - `zero`: O_K' = O · G[:, K] · (G[K, K] + λ'I)⁻¹, the textbook ridge regression (the formula).
/// - `original`: O_K' = O_K + O_R · G[R, K] · (G[K, K] + λ'I)⁻¹, i.e. minimise the output error plus
///   λ'‖O_K' - O_K‖²: directions the calibration data barely excites keep their trained weights
///   instead of shrinking. This is exactly what `obs` computes (structured OBS with the damped Hessian
///   G + λ'I), so `obs` and `lsq` with this target agree up to rounding.
/// With λ' → 0 both give the same least-squares solution.
enum class RidgeTarget { zero, original };

/// Options of `remove_heads_compensated`.
struct CompensationOptions {
  CompensationMethod method = CompensationMethod::none;
  /// lsq / bias+lsq / obs damping, relative: λ' = lambda · mean(diag G) (of Σ for bias+lsq), over the
  /// block's current channels. Must be finite and >= 0; 0 only works when G[K, K] is non-singular.
  double lambda = 1e-3;
  /// scale: ridge towards 1, relative: ρ = scale_ridge · mean(diag A[K, K]) with A the Gram matrix of
  /// the per-head outputs. Finite, >= 0.
  double scale_ridge = 1e-2;
  /// lsq / bias+lsq only (see `RidgeTarget`); `obs` always behaves as `original`.
  RidgeTarget ridge_target = RidgeTarget::zero;
};

/// What `remove_heads_compensated` did.
struct CompensationOutcome {
  RemovedHeads removed;  ///< original ids, as `remove_heads` returns them
  /// Size D when the block has NO O bias tensor and the method shifted the bias (`bias`, `bias+lsq`):
  /// the bias the pruned block needs (the shift from zero), for the caller to store; else empty.
  Eigen::VectorXd created_bias;
};

/// The names of the methods, in the order messages list them.
inline constexpr detail::NameTable<CompensationMethod, 6> compensation_table{
    {{{CompensationMethod::none, "none"},
      {CompensationMethod::bias, "bias"},
      {CompensationMethod::scale, "scale"},
      {CompensationMethod::lsq, "lsq"},
      {CompensationMethod::obs, "obs"},
      {CompensationMethod::bias_lsq, "bias+lsq"}}}};

/// The name of a method, as `parse_compensation` reads it.
inline std::string_view to_string(CompensationMethod m) noexcept { return compensation_table.name(m); }

/// The valid names, for messages: "none, bias, scale, lsq, obs, bias+lsq".
inline std::string compensation_names() { return compensation_table.joined(); }

/// Reads a method name: "none", "bias", "scale", "lsq", "obs", "bias+lsq" (also spelled "lsq+bias").
/// @throws config_error naming the text and listing the valid names.
inline CompensationMethod parse_compensation(std::string_view name) {
  if (const auto m = compensation_table.find(name)) return *m;
  if (name == "lsq+bias") return CompensationMethod::bias_lsq;
  throw config_error(
      detail::message("unknown compensation method \"", name, "\"; valid: ", compensation_names()));
}

/// Whether a method needs the Gram matrix of O's input.
inline bool needs_gram(CompensationMethod m) noexcept {
  return m == CompensationMethod::scale || m == CompensationMethod::lsq || m == CompensationMethod::obs ||
         m == CompensationMethod::bias_lsq;
}

/// Whether a method changes O's bias.
inline bool shifts_bias(CompensationMethod m) noexcept {
  return m == CompensationMethod::bias || m == CompensationMethod::bias_lsq;
}

namespace detail {
/// @throws compensation_error when a damping option is negative or not finite.
inline void check_compensation_options(const CompensationOptions& o) {
  const auto check = [](double v, const char* name) {
    if (!std::isfinite(v) || v < 0) {
      throw compensation_error(message("CompensationOptions: ", name, " must be finite and >= 0, got ", v));
    }
  };
  check(o.lambda, "lambda");
  check(o.scale_ridge, "scale_ridge");
}
}  // namespace detail

}  // namespace mhaprune
