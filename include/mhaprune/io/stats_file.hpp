// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/safetensors_reader.hpp"
#include "mhaprune/io/safetensors_writer.hpp"

/// # Calibration statistics file
///
/// The statistics of O's input (the concatenated head outputs) that activation-based criteria
/// (wanda_sp, fluctuation, obs) and compensation need, stored as one safetensors file, so that they
/// can be collected once (by mhaprune or by any other engine) and reused.
///
/// For every attention block whose O projection weight is named `P.weight` in the checkpoint (e.g.
/// P = `model.layers.0.self_attn.o_proj`), with C = the O projection's input width (H*d) and n tokens:
///
/// | tensor          | dtype | shape    | content                                                    |
/// |-----------------|-------|----------|------------------------------------------------------------|
/// | `P.input.count` | F64   | `[1]`    | n, the number of tokens (an integer > 0, at most 2^53)     |
/// | `P.input.mean`  | F64   | `[C]`    | per channel mean, Σ x / n                                  |
/// | `P.input.m2`    | F64   | `[C]`    | per channel Σ (x - mean)², >= 0 (variance = m2 / (n - 1))  |
/// | `P.input.sumsq` | F64   | `[C]`    | per channel Σ x², >= 0                                     |
/// | `P.input.gram`  | F64   | `[C, C]` | optional: XᵀX (not divided by n), symmetric                |
///
/// Channel j is channel j % d of head j / d (the order of O's input features). All values finite.
/// Consistency is checked on reading, with a relative tolerance of 1e-3 so that files written from
/// float arithmetic pass: sumsq = m2 + n · mean², and the Gram matrix's diagonal = sumsq, and it is
/// symmetric. Other tensors in the file are ignored; `__metadata__` holds
/// `{"format": "mhaprune-activation-stats", "version": "1"}` when mhaprune wrote it (not required).
namespace mhaprune::io {

namespace detail {

inline constexpr std::string_view stats_suffixes[] = {".input.count", ".input.mean", ".input.m2",
                                                      ".input.sumsq", ".input.gram"};

inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// Reads and checks one block's statistics; every problem is a corrupt_file_error naming the file,
/// the tensor and what is wrong.
inline ActivationStats read_block_stats(const SafetensorsReader& in, const std::string& p) {
  const auto fail = [&](const std::string& tensor, const auto&... what) {
    throw corrupt_file_error(
        mhaprune::detail::message(in.path(), ": statistics tensor ", quoted(tensor), ": ", what...));
  };
  const auto view = [&](const char* suffix, std::size_t rank) {
    const std::string name = p + suffix;
    if (!in.contains(name)) {
      throw corrupt_file_error(
          mhaprune::detail::message(in.path(), ": statistics of ", quoted(p), ": tensor ", quoted(name),
                                    " is missing (every block needs ", p, ".input.{count,mean,m2,sumsq})"));
    }
    const TensorView t = in.tensor(name);
    if (t.dtype() != Dtype::F64) fail(name, "dtype ", to_string(t.dtype()), ", expected F64");
    if (t.shape().size() != rank) fail(name, "shape ", shape_string(t.shape()), ", expected ", rank, "-D");
    return t;
  };

  const TensorView count_t = view(".input.count", 1);
  if (count_t.shape()[0] != 1)
    fail(count_t.name(), "shape ", shape_string(count_t.shape()), ", expected [1]");
  const double count = count_t.read_flat<double>()(0);
  if (!(count >= 1 && count <= 9007199254740992.0 && std::floor(count) == count)) {
    fail(count_t.name(), "the token count is ", count, "; expected an integer >= 1 (and <= 2^53)");
  }
  const auto n = static_cast<std::int64_t>(count);

  const TensorView mean_t = view(".input.mean", 1);
  const std::uint64_t C = mean_t.shape()[0];
  if (C == 0) fail(mean_t.name(), "no channels (shape [0])");
  const auto vector = [&](const char* suffix, bool non_negative) {
    const TensorView t = view(suffix, 1);
    if (t.shape()[0] != C) {
      fail(t.name(), "shape ", shape_string(t.shape()), ", expected [", C, "] like ", quoted(mean_t.name()));
    }
    Eigen::VectorXd v = t.read_vector<double>();
    for (Eigen::Index j = 0; j < v.size(); ++j) {
      if (!std::isfinite(v(j)) || (non_negative && v(j) < 0)) {
        fail(t.name(), "channel ", j, " is ", v(j),
             non_negative ? "; expected a finite value >= 0" : "; expected a finite value");
      }
    }
    return v;
  };
  const Eigen::VectorXd mean = vector(".input.mean", false);
  const Eigen::VectorXd m2 = vector(".input.m2", true);
  const Eigen::VectorXd sumsq = vector(".input.sumsq", true);
  constexpr double tolerance = 1e-3;
  for (Eigen::Index j = 0; j < mean.size(); ++j) {
    const double expected = m2(j) + count * mean(j) * mean(j);
    if (std::abs(sumsq(j) - expected) > tolerance * std::max(sumsq(j), expected)) {
      fail(p + ".input.sumsq", "channel ", j, " is ", sumsq(j), ", but m2 + count * mean^2 is ", expected,
           " (inconsistent statistics)");
    }
  }

  std::optional<Eigen::MatrixXd> gram;
  const std::string gram_name = p + ".input.gram";
  if (in.contains(gram_name)) {
    const TensorView t = view(".input.gram", 2);
    if (t.shape()[0] != C || t.shape()[1] != C) {
      fail(gram_name, "shape ", shape_string(t.shape()), ", expected [", C, ", ", C, "]");
    }
    gram = t.read_matrix<double>();
    const Eigen::MatrixXd& g = *gram;
    for (Eigen::Index i = 0; i < g.rows(); ++i) {
      for (Eigen::Index j = 0; j <= i; ++j) {
        if (!std::isfinite(g(i, j)) || !std::isfinite(g(j, i))) {
          fail(gram_name, "entry (", i, ", ", j, ") or its mirror is not finite");
        }
        if (std::abs(g(i, j) - g(j, i)) > tolerance * std::sqrt(g(i, i) * g(j, j))) {
          fail(gram_name, "not symmetric: entry (", i, ", ", j, ") is ", g(i, j), ", (", j, ", ", i, ") is ",
               g(j, i));
        }
      }
      if (std::abs(g(i, i) - sumsq(i)) > tolerance * std::max(g(i, i), sumsq(i))) {
        fail(gram_name, "diagonal entry ", i, " is ", g(i, i), ", but ", p, ".input.sumsq holds ", sumsq(i),
             " (inconsistent statistics)");
      }
    }
  }
  try {
    return ActivationStats::from_moments(n, mean, m2, sumsq, gram);
  } catch (const mhaprune::error& e) {
    throw corrupt_file_error(
        mhaprune::detail::message(in.path(), ": statistics of ", quoted(p), ": ", e.what()));
  }
}

}  // namespace detail

/// Writes statistics as a calibration statistics file (format above), atomically (see
/// `SafetensorsWriter::write`). Keys are the P of each block (O's weight name minus ".weight").
/// The Gram matrix is written for the accumulators that track it.
/// @throws io_error when a key is empty, an accumulator has no tokens (the file could not be read
///         back), or the file cannot be written (names the path and the system's reason).
inline void write_stats_file(const std::string& path, const std::map<std::string, ActivationStats>& stats,
                             const WriteOptions& options = {}) {
  SafetensorsWriter out;
  for (const auto& [p, s] : stats) {
    if (p.empty())
      throw io_error(mhaprune::detail::message(path, ": statistics with an empty key cannot be written"));
    if (s.count() <= 0) {
      throw io_error(mhaprune::detail::message(path, ": statistics of ", detail::quoted(p),
                                               " hold no tokens; nothing was written"));
    }
    out.add(p + ".input.count", Eigen::VectorXd(Eigen::VectorXd::Constant(1, static_cast<double>(s.count()))),
            Dtype::F64);
    out.add(p + ".input.mean", s.mean(), Dtype::F64);
    out.add(p + ".input.m2", s.m2(), Dtype::F64);
    out.add(p + ".input.sumsq", s.sum_squares(), Dtype::F64);
    if (s.has_gram()) out.add(p + ".input.gram", s.gram(), Dtype::F64);
  }
  out.set_metadata({{"format", "mhaprune-activation-stats"}, {"version", "1"}});
  out.write(path, options);
}

/// Reads a calibration statistics file (format above) into accumulators keyed by P, which can be
/// used as they are, or merged with and added to.
/// @throws io_error when the file cannot be read; corrupt_file_error (naming the file, the tensor and
///         the problem) when it is not valid safetensors, holds no statistics, or a block's statistics
///         are incomplete, mis-shaped, not F64, not finite, inconsistent, or have a count that is not
///         a positive integer.
inline std::map<std::string, ActivationStats> read_stats_file(const std::string& path) {
  const SafetensorsReader in(path);
  std::map<std::string, ActivationStats> stats;
  for (const TensorInfo& t : in.tensors()) {
    for (std::string_view suffix : detail::stats_suffixes) {
      if (!detail::ends_with(t.name, suffix)) continue;
      const std::string p = t.name.substr(0, t.name.size() - suffix.size());
      if (p.empty()) {
        throw corrupt_file_error(mhaprune::detail::message(path, ": statistics tensor ",
                                                           detail::quoted(t.name),
                                                           ": empty block name before \"", suffix, "\""));
      }
      if (stats.count(p) == 0) stats.emplace(p, detail::read_block_stats(in, p));
    }
  }
  if (stats.empty()) {
    throw corrupt_file_error(mhaprune::detail::message(
        path, ": holds no calibration statistics (no tensor named P.input.count, P.input.mean, ...)"));
  }
  return stats;
}

}  // namespace mhaprune::io
