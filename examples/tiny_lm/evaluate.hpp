// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "attention_layer.hpp"
#include "token_batch.hpp"

namespace tiny_lm {

/// Negative log-likelihood of a batch's targets, in nats per prediction.
struct Nll {
  double mean = 0.0;                 ///< over all predictions of all sequences
  std::vector<double> per_sequence;  ///< mean over each sequence's predictions
  Index predictions = 0;
};

/// Standard deviation of the values over sqrt(count): the standard error of their mean.
inline double standard_error(const std::vector<double>& values) {
  const auto n = static_cast<double>(values.size());
  double mean = 0.0, m2 = 0.0;
  for (double v : values) mean += v / n;
  for (double v : values) m2 += (v - mean) * (v - mean);
  return std::sqrt(m2 / (n - 1.0) / n);
}

/// Standard error of the mean per-sequence difference a - b (same sequences): the noise of a comparison
/// between two models on the same text, much smaller than either model's own standard error.
inline double paired_standard_error(const Nll& a, const Nll& b) {
  std::vector<double> diff(a.per_sequence.size());
  for (std::size_t s = 0; s < diff.size(); ++s) diff[s] = a.per_sequence[s] - b.per_sequence[s];
  return standard_error(diff);
}

/// -log_softmax(logits)[target] of every position of `batch` with a target, in double, added to
/// `sum` and `count` of its sequence (offset by `first`).
template <typename Model>
void add_nll(const Model& model, const TokenBatch& batch, Index first, std::vector<double>& sum,
             std::vector<double>& count) {
  const Matrix hidden = model.hidden(batch, [](Index, const Matrix&) {});
  std::vector<Index> rows;
  for (std::size_t n = 0; n < batch.targets.size(); ++n)
    if (batch.targets[n] >= 0) rows.push_back(static_cast<Index>(n));
  Matrix predicted(static_cast<Index>(rows.size()), hidden.cols());
  for (std::size_t r = 0; r < rows.size(); ++r) predicted.row(static_cast<Index>(r)) = hidden.row(rows[r]);
  const Matrix logits = model.logits(predicted);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Eigen::VectorXd l = logits.row(static_cast<Index>(r)).transpose().cast<double>();
    const double max = l.maxCoeff();
    const double log_sum_exp = max + std::log((l.array() - max).exp().sum());
    const auto s = static_cast<std::size_t>(first + rows[r] / batch.length);
    sum[s] += log_sum_exp - l(batch.targets[static_cast<std::size_t>(rows[r])]);
    count[s] += 1.0;
  }
}

/// Runs the model over the batch, a few sequences at a time, and averages the NLL of every position
/// with a target.
template <typename Model>
Nll evaluate(const Model& model, const TokenBatch& batch) {
  std::vector<double> sum(static_cast<std::size_t>(batch.sequences), 0.0), count(sum.size(), 0.0);
  Index first = 0;
  for_each_slice(batch, [&](const TokenBatch& part) {
    add_nll(model, part, first, sum, count);
    first += part.sequences;
  });
  Nll out;
  double total = 0.0, n = 0.0;
  for (std::size_t s = 0; s < sum.size(); ++s) {
    out.per_sequence.push_back(sum[s] / count[s]);
    total += sum[s];
    n += count[s];
  }
  out.mean = total / n;
  out.predictions = static_cast<Index>(n);
  return out;
}

}  // namespace tiny_lm
