// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/concept.hpp"
#include "mhaprune/criteria/element_wise.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/fisher.hpp"
#include "mhaprune/criteria/gradient.hpp"
#include "mhaprune/criteria/snip.hpp"
#include "mhaprune/criteria/snip_momentum.hpp"
#include "mhaprune/criteria/taylor.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/gradients_file.hpp"

/// Scoring a block with the gradient evidence of a gradients file (`io/gradients_file.hpp`), so that
/// the scores are the library's for the same gradients.
namespace mhaprune::checkpoint {

/// Which statistic of a gradients file a criterion reads.
enum class GradientNeed {
  none,             ///< not a gradient criterion (the file is not read)
  weight_gradient,  ///< `Gradient`, `Snip`: `T.grad.sum`
  momentum_score,   ///< `SnipMomentum`: `T.snip_momentum.score`
  gate_abs_sum,     ///< `Taylor`: `B.head_gate.abs_sum`
  gate_sq_sum,      ///< `Fisher`: `B.head_gate.sq_sum`
};

/// What `criterion` reads from a gradients file, by the type it holds (the registry's built-ins).
inline GradientNeed gradient_need(const AnyCriterion& criterion) noexcept {
  if (criterion.target<Gradient>() || criterion.target<Snip>()) return GradientNeed::weight_gradient;
  if (criterion.target<SnipMomentum>()) return GradientNeed::momentum_score;
  if (criterion.target<Taylor>()) return GradientNeed::gate_abs_sum;
  if (criterion.target<Fisher>()) return GradientNeed::gate_sq_sum;
  return GradientNeed::none;
}

namespace detail {

inline io::GradientStatistic statistic_of(GradientNeed need) noexcept {
  switch (need) {
    case GradientNeed::momentum_score:
      return io::GradientStatistic::momentum_score;
    case GradientNeed::gate_abs_sum:
      return io::GradientStatistic::gate_abs_sum;
    case GradientNeed::gate_sq_sum:
      return io::GradientStatistic::gate_sq_sum;
    default:
      break;
  }
  return io::GradientStatistic::gradient_sum;
}

/// The Q/K/V/O weight tensors of a block (never biases), by their checkpoint names.
inline std::vector<std::string> scored_weight_names(const BlockInfo& info) {
  std::vector<std::string> out;
  for (const std::string* n :
       {&info.tensors.q, &info.tensors.k, &info.tensors.v, &info.tensors.qkv, &info.tensors.o})
    if (!n->empty()) out.push_back(*n);
  return out;
}

}  // namespace detail

/// Checks, from the file's header only and before any weight is read, that `file` holds what
/// `criterion` needs for every block of `ckpt`, shaped as the model's tensors (or `[H]`).
/// @throws corrupt_file_error naming the file, the tensor and both shapes (see `GradientsFile::require`).
inline void check_gradients(const Checkpoint& ckpt, const AnyCriterion& criterion,
                            const io::GradientsFile& file) {
  const GradientNeed need = gradient_need(criterion);
  if (need == GradientNeed::none) return;
  const io::GradientStatistic s = detail::statistic_of(need);
  for (const BlockInfo& info : ckpt.blocks()) {
    if (need == GradientNeed::gate_abs_sum || need == GradientNeed::gate_sq_sum) {
      file.require(info.name, s, io::Shape{static_cast<std::uint64_t>(info.layout.heads())});
    } else {
      for (const std::string& w : detail::scored_weight_names(info))
        file.require(w, s, ckpt.reader().info(w).shape);
    }
  }
}

/// Scores `block` with `criterion` from the gradients in `file`, as the library scores it when
/// handed the same gradients (`evidence` may already hold other evidence, such as activations):
///
/// - `Gradient`, `Snip`: each Q/K/V/O weight's `T.grad.sum` (T = the tensor's name in the block,
///   `BoundTensor::name`) as its evidence gradient (`Evidence::with_gradient`);
/// - `SnipMomentum`: `T.snip_momentum.score` is the running score S; the scores are S reduced per
///   head slice and combined with the criterion's reduction and role weights, which is what
///   `SnipMomentum::scores` returns after the `update` calls that built S;
/// - `Taylor`, `Fisher`: the block's state is reset and `update` is called once with one row whose
///   `Fn::apply` gives the file's sum (Σ|g| for taylor, √Σg² for fisher), then `scores` (with the
///   criterion's own `normalize`);
/// - any other criterion: scored with `evidence` alone, the file is not read.
///
/// The block's name is the key of its gate statistics; weights must be 2-D.
/// @throws corrupt_file_error for a missing, mis-shaped or bad statistic (see `GradientsFile`);
///         whatever the criterion throws.
template <typename Scalar>
Eigen::VectorXd score_with_gradients(AnyCriterion& criterion, const AttentionBlock<Scalar>& block,
                                     const io::GradientsFile& file, Evidence evidence = Evidence{}) {
  const GradientNeed need = gradient_need(criterion);
  const io::GradientStatistic s = detail::statistic_of(need);
  switch (need) {
    case GradientNeed::none:
      return score_heads(criterion, block, evidence);
    case GradientNeed::gate_abs_sum:
    case GradientNeed::gate_sq_sum: {
      Eigen::VectorXd row = file.read_gate(block.name(), s, block.layout().heads());
      if (need == GradientNeed::gate_sq_sum) {
        row = row.cwiseSqrt();
        criterion.target<Fisher>()->reset(block.name());
      } else {
        criterion.target<Taylor>()->reset(block.name());
      }
      criterion.update(block, Evidence(evidence).with_gate_gradients(row.transpose()));
      return score_heads(criterion, block, evidence);
    }
    default:
      break;
  }
  block.validate();
  std::vector<io::RowMatrix<float>> held;
  held.reserve(block.tensors().size());
  for (const BoundTensor<Scalar>& t : block.tensors()) {
    if (!mhaprune::detail::is_scored_weight(t)) continue;
    const io::Shape shape{static_cast<std::uint64_t>(t.ref.rows()), static_cast<std::uint64_t>(t.ref.cols())};
    held.push_back(file.read_matrix(t.name, s, shape));
    evidence.with_gradient(t.name, held.back());
  }
  if (need == GradientNeed::weight_gradient) return score_heads(criterion, block, evidence);
  const SnipMomentumOptions& o = criterion.target<SnipMomentum>()->options();
  Gradient running_score(ElementWiseOptions{o.reduce, o.weights});
  return score_heads(running_score, block, evidence);
}

}  // namespace mhaprune::checkpoint
