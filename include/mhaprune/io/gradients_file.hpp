// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/safetensors_reader.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "mhaprune/io/tensor_view.hpp"

/// # Gradients file
///
/// The gradient evidence of the gradient criteria (gradient, snip, snip_momentum, taylor, fisher),
/// accumulated by a training loop (any framework) and stored as one safetensors file, so that the
/// tool can score a checkpoint with them. It sits beside the calibration statistics file
/// (`io/stats_file.hpp`): same container, tensor names derived from the checkpoint's own names.
///
/// For every Q/K/V/O weight tensor `T` of a block (its checkpoint name, e.g.
/// `model.layers.0.self_attn.q_proj.weight`, or a fused `qkv_proj.weight` / GPT-2 `c_attn.weight`),
/// shaped exactly like `T` in the checkpoint (a `Conv1D` weight's gradient is `[in, out]` like it):
///
/// | tensor                  | shape    | content                                         | read by       |
/// |-------------------------|----------|-------------------------------------------------|---------------|
/// | `T.grad.sum`            | like `T` | G = Σ_t ∂L_t/∂T over n steps (`.grad` after n   | gradient,     |
/// |                         |          | backward passes without zeroing)                | snip          |
/// | `T.grad.count`          | `[1]`    | n                                               |               |
/// | `T.snip_momentum.score` | like `T` | S after n steps of S ← α·S + β·|W_t ⊙ G_t|, >= 0 | snip_momentum |
/// | `T.snip_momentum.count` | `[1]`    | n                                               |               |
///
/// For every block `B` (its name as `mhaprune inspect` prints it, e.g. `model.layers.0.self_attn`,
/// `bert.encoder.layer.0.attention`) with H current query heads, g_b,h = ∂L_b/∂ξ_h the gradient of
/// batch b's loss w.r.t. a gate ξ_h = 1 multiplying head h's output:
///
/// | tensor                   | shape | content                          | read by |
/// |--------------------------|-------|----------------------------------|---------|
/// | `B.head_gate.abs_sum`    | `[H]` | Σ_b |g_b,h|                      | taylor  |
/// | `B.head_gate.sq_sum`     | `[H]` | Σ_b g_b,h²                       | fisher  |
/// | `B.head_gate.count`      | `[1]` | the number of batches (rows b)   |         |
///
/// Values are F32 (F64, F16 and BF16 are read too); counts are an integer >= 1 (at most 2^53) in any
/// of those dtypes. A criterion reads only its own tensors, so a file may hold any subset; other
/// tensors are ignored. What the scores are, given the same gradients, is what the library computes
/// (`checkpoint/gradient_evidence.hpp`): gradient and snip get the sum as their evidence gradient
/// (`Evidence::with_gradient`); snip_momentum's scores are S reduced per head slice as the library's
/// running score is (its α and β were the training loop's); taylor and fisher get the sums as if
/// `update` had been called once per batch. Counts are checked, and let files be merged (add sums and
/// counts); the scores are sums, like the library's, not means. Checks on reading: the dtype, every
/// value finite, scores and gate sums >= 0, and when both gate sums are there, Σg² <= (Σ|g|)² <= n·Σg²
/// (relative tolerance 1e-3); against a model (`GradientsFile::require`): presence and shape. Every
/// problem is a `corrupt_file_error` naming the file, the tensor and the shapes.
/// `__metadata__` holds `{"format": "mhaprune-gradients", "version": "1"}` when mhaprune wrote it
/// (not required).
namespace mhaprune::io {

/// One statistic of a gradients file (format above).
enum class GradientStatistic : std::uint8_t {
  gradient_sum,    ///< `T.grad.sum`, counted by `T.grad.count`
  momentum_score,  ///< `T.snip_momentum.score`, counted by `T.snip_momentum.count`
  gate_abs_sum,    ///< `B.head_gate.abs_sum`, counted by `B.head_gate.count`
  gate_sq_sum,     ///< `B.head_gate.sq_sum`, counted by `B.head_gate.count`
};

namespace detail {

struct GradientSuffixes {
  GradientStatistic statistic;
  std::string_view value, count;
  bool per_block;     ///< keyed by block name (a vector of H), else by weight name (a matrix)
  bool non_negative;  ///< values must be >= 0
};

inline constexpr GradientSuffixes gradient_suffixes[] = {
    {GradientStatistic::gradient_sum, ".grad.sum", ".grad.count", false, false},
    {GradientStatistic::momentum_score, ".snip_momentum.score", ".snip_momentum.count", false, true},
    {GradientStatistic::gate_abs_sum, ".head_gate.abs_sum", ".head_gate.count", true, true},
    {GradientStatistic::gate_sq_sum, ".head_gate.sq_sum", ".head_gate.count", true, true},
};

inline const GradientSuffixes& suffixes_of(GradientStatistic s) noexcept {
  return gradient_suffixes[static_cast<std::size_t>(s)];
}

inline bool has_suffix(std::string_view s, std::string_view suffix) noexcept {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace detail

/// The name of a statistic's tensor: `key` (a weight's or a block's name) + its suffix.
inline std::string gradients_tensor_name(const std::string& key, GradientStatistic s) {
  return key + std::string(detail::suffixes_of(s).value);
}
/// The name of the count tensor that goes with a statistic.
inline std::string gradients_count_name(const std::string& key, GradientStatistic s) {
  return key + std::string(detail::suffixes_of(s).count);
}

/// An open gradients file (format above): the header and every count are checked when it opens;
/// values are read (and checked) per tensor, on demand, so memory holds one block's at a time.
/// Movable, not copyable; thread-compatible (const reads may run concurrently).
class GradientsFile {
 public:
  /// Maps `path` and checks every statistic and count it holds: a floating-point dtype; a count
  /// per statistic, shaped `[1]`, an integer >= 1 (and <= 2^53).
  /// @throws io_error when the file cannot be read; corrupt_file_error (naming the file and the
  ///         tensor) when it is not valid safetensors, holds no statistic, or one of the above fails.
  explicit GradientsFile(std::string file) : in_(std::move(file)) {
    for (const TensorInfo& t : in_.tensors()) {
      for (const detail::GradientSuffixes& s : detail::gradient_suffixes) {
        if (!detail::has_suffix(t.name, s.value)) continue;
        const std::string key = t.name.substr(0, t.name.size() - s.value.size());
        require_float(t);
        const std::string count = key + std::string(s.count);
        if (counts_.count(count) == 0) counts_.emplace(count, read_count(key, t.name, count));
        ++statistics_;
      }
    }
    if (statistics_ == 0) {
      throw corrupt_file_error(mhaprune::detail::message(
          path(),
          ": holds no gradient statistics (no tensor named T.grad.sum, T.snip_momentum.score, "
          "B.head_gate.abs_sum or B.head_gate.sq_sum)"));
    }
  }

  const std::string& path() const noexcept { return in_.path(); }
  /// How many statistic tensors the file holds.
  std::size_t size() const noexcept { return statistics_; }
  /// Whether the file holds statistic `s` of `key`.
  bool contains(const std::string& key, GradientStatistic s) const {
    return in_.contains(gradients_tensor_name(key, s));
  }
  /// The checked count of statistic `s` of `key`.
  /// @throws corrupt_file_error when the file does not hold it.
  std::int64_t count(const std::string& key, GradientStatistic s) const {
    require_present(key, s, "");
    return counts_.at(gradients_count_name(key, s));
  }

  /// Checks, from the header only, that statistic `s` of `key` is there and shaped `shape`
  /// (a weight's shape in the checkpoint, or `[H]` for a gate statistic).
  /// @throws corrupt_file_error naming the file, the tensor, its shape and the expected one.
  void require(const std::string& key, GradientStatistic s, const Shape& shape) const {
    const std::string name = gradients_tensor_name(key, s);
    require_present(key, s,
                    mhaprune::detail::message(" (expected one shaped ", detail::shape_string(shape), ")"));
    const TensorInfo& t = in_.info(name);
    if (t.shape != shape) {
      fail(name, "shape ", detail::shape_string(t.shape), " differs from the expected ",
           detail::shape_string(shape),
           s == GradientStatistic::gate_abs_sum || s == GradientStatistic::gate_sq_sum
               ? " (one value per current query head)"
               : mhaprune::detail::message(" (the shape of ", detail::quoted(key), " in the model)"));
    }
  }

  /// A weight statistic (`gradient_sum` or `momentum_score`) of weight `key`, checked (`require`,
  /// every value finite, a score >= 0), as a row-major `[rows, cols]` matrix of float.
  /// @throws corrupt_file_error as `require`, or naming the first bad value's position.
  RowMatrix<float> read_matrix(const std::string& key, GradientStatistic s, const Shape& shape) const {
    require(key, s, shape);
    if (shape.size() != 2) {
      fail(gradients_tensor_name(key, s), "shape ", detail::shape_string(shape), ": expected a 2-D weight");
    }
    const TensorView t = in_.tensor(gradients_tensor_name(key, s));
    RowMatrix<float> m = t.read_matrix<float>();
    in_.release(t.info());
    for (Eigen::Index i = 0; i < m.rows(); ++i) {
      for (Eigen::Index j = 0; j < m.cols(); ++j) check_value(t.name(), s, m(i, j), i, j);
    }
    return m;
  }

  /// A gate statistic (`gate_abs_sum` or `gate_sq_sum`) of block `key` with `heads` current query
  /// heads, checked (`require`, finite, >= 0; when the file holds both gate sums of the block,
  /// Σg² <= (Σ|g|)² <= n·Σg² per head within a relative 1e-3).
  /// @throws corrupt_file_error as `require`, or naming the head and the values.
  Eigen::VectorXd read_gate(const std::string& key, GradientStatistic s, Index heads) const {
    require(key, s, Shape{static_cast<std::uint64_t>(heads)});
    const Eigen::VectorXd v = read_gate_values(key, s);
    const GradientStatistic other = s == GradientStatistic::gate_abs_sum ? GradientStatistic::gate_sq_sum
                                                                         : GradientStatistic::gate_abs_sum;
    if (contains(key, other) &&
        in_.info(gradients_tensor_name(key, other)).shape == Shape{static_cast<std::uint64_t>(heads)}) {
      const Eigen::VectorXd w = read_gate_values(key, other);
      const Eigen::VectorXd& abs = s == GradientStatistic::gate_abs_sum ? v : w;
      const Eigen::VectorXd& sq = s == GradientStatistic::gate_abs_sum ? w : v;
      const auto n = static_cast<double>(count(key, s));
      constexpr double tolerance = 1e-3;
      for (Eigen::Index h = 0; h < v.size(); ++h) {
        const double a2 = abs(h) * abs(h);
        if (sq(h) > a2 * (1 + tolerance) || a2 > n * sq(h) * (1 + tolerance)) {
          fail(gradients_tensor_name(key, GradientStatistic::gate_sq_sum), "head ", h, ": sq_sum ", sq(h),
               " and abs_sum ", abs(h), " over ", n, " batches break sq_sum <= abs_sum^2 <= count * sq_sum",
               " (inconsistent statistics)");
        }
      }
    }
    return v;
  }

 private:
  template <typename... Parts>
  [[noreturn]] void fail(const std::string& tensor, const Parts&... what) const {
    throw corrupt_file_error(
        mhaprune::detail::message(path(), ": gradients tensor ", detail::quoted(tensor), ": ", what...));
  }

  void require_float(const TensorInfo& t) const {
    if (!is_convertible(t.dtype))
      fail(t.name, "dtype ", io::to_string(t.dtype), ", expected F32 (or F64, F16, BF16)");
  }

  void require_present(const std::string& key, GradientStatistic s, const std::string& expected) const {
    const std::string name = gradients_tensor_name(key, s);
    if (!in_.contains(name)) {
      throw corrupt_file_error(mhaprune::detail::message(path(), ": gradients tensor ", detail::quoted(name),
                                                         " is missing", expected, "; the ", criterion_of(s),
                                                         " criterion needs it for ", detail::quoted(key)));
    }
  }

  static const char* criterion_of(GradientStatistic s) noexcept {
    switch (s) {
      case GradientStatistic::gradient_sum:
        return "gradient or snip";
      case GradientStatistic::momentum_score:
        return "snip_momentum";
      case GradientStatistic::gate_abs_sum:
        return "taylor";
      case GradientStatistic::gate_sq_sum:
        break;
    }
    return "fisher";
  }

  std::int64_t read_count(const std::string& key, const std::string& statistic,
                          const std::string& count) const {
    if (!in_.contains(count)) {
      fail(statistic, "its count ", detail::quoted(count), " is missing (every statistic of ",
           detail::quoted(key), " needs one, shaped [1])");
    }
    const TensorView t = in_.tensor(count);
    require_float(t.info());
    if (t.shape() != Shape{1}) fail(count, "shape ", detail::shape_string(t.shape()), ", expected [1]");
    const double n = t.read_flat<double>()(0);
    if (!(n >= 1 && n <= 9007199254740992.0 && std::floor(n) == n)) {
      fail(count, "the count is ", n, "; expected an integer >= 1 (and <= 2^53)");
    }
    return static_cast<std::int64_t>(n);
  }

  template <typename T>
  void check_value(const std::string& tensor, GradientStatistic s, T x, Eigen::Index i,
                   Eigen::Index j) const {
    const bool non_negative = detail::suffixes_of(s).non_negative;
    if (!std::isfinite(x) || (non_negative && x < 0)) {
      fail(tensor, "element (", i, ", ", j, ") is ", x,
           non_negative ? "; expected a finite value >= 0" : "; expected a finite value");
    }
  }

  Eigen::VectorXd read_gate_values(const std::string& key, GradientStatistic s) const {
    const TensorView t = in_.tensor(gradients_tensor_name(key, s));
    const Eigen::VectorXd v = t.read_vector<double>();
    for (Eigen::Index h = 0; h < v.size(); ++h) {
      if (!std::isfinite(v(h)) || v(h) < 0) {
        fail(t.name(), "head ", h, " is ", v(h), "; expected a finite value >= 0");
      }
    }
    return v;
  }

  SafetensorsReader in_;
  std::map<std::string, std::int64_t> counts_;
  std::size_t statistics_ = 0;
};

/// Builds a gradients file (format above), e.g. from a C++ training loop or for tests.
/// Each `add_*` replaces nothing: a name given twice is an io_error when written.
class GradientsFileWriter {
 public:
  /// `T.grad.sum` and `T.grad.count`: the sum of `count` steps' gradients of weight `weight`.
  template <typename Derived>
  GradientsFileWriter& add_gradient_sum(const std::string& weight, const Eigen::MatrixBase<Derived>& sum,
                                        std::int64_t count, Dtype dtype = Dtype::F32) {
    add_matrix(weight, GradientStatistic::gradient_sum, sum, count, dtype);
    return *this;
  }
  /// `T.snip_momentum.score` and `T.snip_momentum.count`: the running score after `steps` steps.
  template <typename Derived>
  GradientsFileWriter& add_momentum_score(const std::string& weight, const Eigen::MatrixBase<Derived>& score,
                                          std::int64_t steps, Dtype dtype = Dtype::F32) {
    add_matrix(weight, GradientStatistic::momentum_score, score, steps, dtype);
    return *this;
  }
  /// `B.head_gate.{abs_sum,sq_sum,count}` of block `block` from its per-batch gate gradients
  /// `[batches, H]` (one row per batch), summed here in double.
  /// @throws io_error when there are no rows.
  template <typename Derived>
  GradientsFileWriter& add_gate_gradients(const std::string& block,
                                          const Eigen::MatrixBase<Derived>& per_batch,
                                          Dtype dtype = Dtype::F32) {
    if (per_batch.rows() < 1) {
      throw io_error(mhaprune::detail::message("gradients file: block ", detail::quoted(block),
                                               ": gate gradients with no batches cannot be written"));
    }
    const Eigen::MatrixXd g = per_batch.template cast<double>();
    add_gate_sums(block, g.cwiseAbs().colwise().sum().transpose(), g.cwiseAbs2().colwise().sum().transpose(),
                  g.rows(), dtype);
    return *this;
  }
  /// `B.head_gate.{abs_sum,sq_sum,count}` from sums already taken.
  GradientsFileWriter& add_gate_sums(const std::string& block, const Eigen::VectorXd& abs_sum,
                                     const Eigen::VectorXd& sq_sum, std::int64_t count,
                                     Dtype dtype = Dtype::F32) {
    out_.add(gradients_tensor_name(block, GradientStatistic::gate_abs_sum), Eigen::VectorXd(abs_sum), dtype);
    out_.add(gradients_tensor_name(block, GradientStatistic::gate_sq_sum), Eigen::VectorXd(sq_sum), dtype);
    add_count(block, GradientStatistic::gate_abs_sum, count);
    return *this;
  }

  /// Writes the file atomically (see `SafetensorsWriter::write`).
  /// @throws io_error as `SafetensorsWriter::write`.
  void write(const std::string& path, const WriteOptions& options = {}) {
    out_.set_metadata({{"format", "mhaprune-gradients"}, {"version", "1"}});
    out_.write(path, options);
  }

 private:
  template <typename Derived>
  void add_matrix(const std::string& weight, GradientStatistic s, const Eigen::MatrixBase<Derived>& m,
                  std::int64_t count, Dtype dtype) {
    out_.add(gradients_tensor_name(weight, s), RowMatrix<double>(m.template cast<double>()), dtype);
    add_count(weight, s, count);
  }
  void add_count(const std::string& key, GradientStatistic s, std::int64_t count) {
    out_.add(gradients_count_name(key, s),
             Eigen::VectorXd(Eigen::VectorXd::Constant(1, static_cast<double>(count))), Dtype::F64);
  }

  SafetensorsWriter out_;
};

}  // namespace mhaprune::io
