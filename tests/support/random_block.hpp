// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// Test support: random attention blocks in every layout, storage and scalar type mhaprune binds,
/// with an oracle for what each tensor must hold after removal that does not use mhaprune's own
/// segment lists. Header-only and independent of Catch, so benchmarks and examples can reuse it.
///
/// Typical use:
///
///   mhaprune_test::BlockConfig config;          // H, H_kv, d, D, layout, storage, biases, extras
///   mhaprune_test::RandomBlock<float> pruned(config, seed), twin(config, seed);
///   auto removed = mhaprune::remove_heads(pruned.block(), mhaprune::Positions{1, 3});
///   REQUIRE(pruned.check_contents() == "");     // survivors' slices, bit for bit, where they belong
///
/// `twin` holds the same values and is never pruned: masking the removed heads in its reference
/// forward must give the pruned block's forward.

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mhaprune/mhaprune.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace mhaprune_test {

using mhaprune::Axis;
using mhaprune::HeadLayout;
using mhaprune::Index;
using mhaprune::Orientation;
using mhaprune::Owner;
using mhaprune::Role;
using mhaprune::StorageOrder;

// ---------------------------------------------------------------------------------------------
// Scalars and seeds

/// `v` rounded to `Scalar`; half and bfloat16 go through float, the way a checkpoint loader would.
template <typename Scalar>
Scalar from_double(double v) {
  if constexpr (std::is_floating_point_v<Scalar>) {
    return static_cast<Scalar>(v);
  } else {
    return Scalar(static_cast<float>(v));
  }
}

/// A well-mixed 32-bit seed for case `index` of a run seeded with `base` (splitmix64), so that
/// neighbouring cases get unrelated streams and one case can be replayed from its printed seed.
inline std::uint32_t case_seed(std::uint32_t base, std::uint64_t index) noexcept {
  std::uint64_t z = (static_cast<std::uint64_t>(base) << 32) + index + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}

/// Uniform integer in `[lo, hi]`.
inline Index uniform_index(std::mt19937& rng, Index lo, Index hi) {
  return std::uniform_int_distribution<Index>(lo, hi)(rng);
}

/// A `[rows, cols]` matrix of uniform values in `[lo, hi)`.
inline Eigen::MatrixXd random_matrix(std::mt19937& rng, Index rows, Index cols, double lo = -1.0,
                                     double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  Eigen::MatrixXd m(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) m(i, j) = u(rng);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Storage

/// What kind of object `mhaprune::bind` sees.
enum class Container : std::uint8_t {
  matrix,  ///< an owning dynamic-size `Eigen::Matrix` (shrunk in place by mhaprune)
  map,     ///< an `Eigen::Map` over a `std::vector` the test owns (re-seated by mhaprune)
  buffer,  ///< a `MatrixBuffer` over a `std::vector` the test owns (rows/cols updated by mhaprune)
};

inline const char* to_string(Container c) {
  switch (c) {
    case Container::matrix:
      return "Eigen::Matrix";
    case Container::map:
      return "Eigen::Map";
    case Container::buffer:
      return "MatrixBuffer";
  }
  return "?";
}
inline const char* to_string(StorageOrder o) {
  return o == StorageOrder::row_major ? "row-major" : "col-major";
}
inline const char* to_string(Orientation o) { return o == Orientation::out_in ? "out_in" : "in_out"; }

/// How one test tensor is stored.
struct Storage {
  Container container = Container::matrix;
  StorageOrder order = StorageOrder::row_major;
  /// For 1-D tensors in a matrix or map: use `Eigen::Matrix<S, Dynamic, 1>` / `<S, 1, Dynamic>`
  /// (and Maps of them) instead of a dynamic matrix with one row or column.
  bool vector_types = false;
  /// Elements after the data of a Map or MatrixBuffer, filled with a sentinel mhaprune must never
  /// write (a MatrixBuffer also reports them as capacity).
  Index slack = 0;
};

/// One of the caller's tensors, in any storage `bind` accepts, with its logical contents readable
/// whatever the storage order. Not copyable or movable: a block keeps the object's address.
///
/// @tparam Scalar `float`, `double`, `Eigen::half` or `Eigen::bfloat16`.
template <typename Scalar>
class TestTensor {
 public:
  using RowMajorMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMajorMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using ColVector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using RowVector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
  using Object = std::variant<RowMajorMatrix, ColMajorMatrix, ColVector, RowVector,
                              Eigen::Map<RowMajorMatrix>, Eigen::Map<ColMajorMatrix>, Eigen::Map<ColVector>,
                              Eigen::Map<RowVector>, mhaprune::MatrixBuffer<Scalar>>;

  /// Stores `values` (logical `[rows, cols]`, rounded to Scalar) as `storage` says. Vector types are
  /// used only when `values` has one row or one column.
  TestTensor(const Eigen::MatrixXd& values, const Storage& storage) : storage_(storage) {
    const Index r = values.rows(), c = values.cols();
    const bool col_vector = c == 1, row_vector = r == 1 && !col_vector;
    const bool as_vector = storage.vector_types && (col_vector || row_vector);
    // Vector types have a fixed storage order: a column vector is column-major, a row vector row-major.
    const StorageOrder order =
        as_vector ? (col_vector ? StorageOrder::col_major : StorageOrder::row_major) : storage.order;
    std::vector<Scalar> dense(static_cast<std::size_t>(r * c));
    for (Index i = 0; i < r; ++i)
      for (Index j = 0; j < c; ++j)
        dense[static_cast<std::size_t>(offset(order, r, c, i, j))] = from_double<Scalar>(values(i, j));

    if (storage.container == Container::matrix) {
      if (as_vector && col_vector) {
        object_.template emplace<ColVector>(r);
      } else if (as_vector) {
        object_.template emplace<RowVector>(c);
      } else if (order == StorageOrder::row_major) {
        object_.template emplace<RowMajorMatrix>(r, c);
      } else {
        object_.template emplace<ColMajorMatrix>(r, c);
      }
      if (r * c > 0) std::memcpy(data(), dense.data(), dense.size() * sizeof(Scalar));
      return;
    }
    backing_ = dense;
    backing_.resize(static_cast<std::size_t>(r * c + storage.slack), sentinel());
    Scalar* p = backing_.data();
    if (storage.container == Container::buffer) {
      object_.template emplace<mhaprune::MatrixBuffer<Scalar>>(
          mhaprune::MatrixBuffer<Scalar>{p, r * c + storage.slack, r, c, order});
    } else if (as_vector && col_vector) {
      object_.template emplace<Eigen::Map<ColVector>>(p, r);
    } else if (as_vector) {
      object_.template emplace<Eigen::Map<RowVector>>(p, c);
    } else if (order == StorageOrder::row_major) {
      object_.template emplace<Eigen::Map<RowMajorMatrix>>(p, r, c);
    } else {
      object_.template emplace<Eigen::Map<ColMajorMatrix>>(p, r, c);
    }
  }

  TestTensor(const TestTensor&) = delete;
  TestTensor& operator=(const TestTensor&) = delete;

  /// The object to hand to a layout adapter; `visit` calls `f(object)` with its concrete type.
  Object& object() noexcept { return object_; }
  template <typename F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), object_);
  }

  const Storage& storage() const noexcept { return storage_; }
  Index rows() const {
    return std::visit([](const auto& o) { return rows_of(o); }, object_);
  }
  Index cols() const {
    return std::visit([](const auto& o) { return cols_of(o); }, object_);
  }
  StorageOrder order() const {
    return std::visit([](const auto& o) { return order_of(o); }, object_);
  }
  const Scalar* data() const {
    return std::visit([](const auto& o) -> const Scalar* { return data_of(o); }, object_);
  }
  Scalar* data() {
    return std::visit([](auto& o) -> Scalar* { return data_of(o); }, object_);
  }
  /// Element `(i, j)` of the current logical shape.
  Scalar at(Index i, Index j) const { return data()[offset(order(), rows(), cols(), i, j)]; }
  /// The logical contents, exactly, as double.
  Eigen::MatrixXd values() const {
    Eigen::MatrixXd m(rows(), cols());
    for (Index i = 0; i < rows(); ++i)
      for (Index j = 0; j < cols(); ++j) m(i, j) = mhaprune::detail::to_double(at(i, j));
    return m;
  }
  /// Every byte the caller owns: the matrix's elements, or the whole backing vector of a Map or
  /// MatrixBuffer (slack included). Two equal snapshots mean nothing was written.
  std::vector<unsigned char> bytes() const {
    const unsigned char* p =
        reinterpret_cast<const unsigned char*>(owns_backing() ? backing_.data() : data());
    const std::size_t n =
        (owns_backing() ? backing_.size() : static_cast<std::size_t>(rows() * cols())) * sizeof(Scalar);
    return std::vector<unsigned char>(p, p + n);
  }
  /// For a Map or MatrixBuffer: whether the object still points at the front of the backing vector
  /// (mhaprune compacts in place and never re-points). Always true for an owning matrix.
  bool data_at_buffer_front() const { return !owns_backing() || data() == backing_.data(); }
  /// Whether the slack after the original data still holds the sentinel.
  bool slack_untouched() const {
    if (!owns_backing()) return true;
    const Scalar s = sentinel();
    for (std::size_t k = backing_.size() - static_cast<std::size_t>(storage_.slack); k < backing_.size(); ++k)
      if (std::memcmp(&backing_[k], &s, sizeof(Scalar)) != 0) return false;
    return true;
  }
  /// The backing vector of a Map or MatrixBuffer (empty for an owning matrix).
  std::vector<Scalar>& backing() noexcept { return backing_; }
  /// "Eigen::Map<row-major>"-style description of the object, for failure messages.
  std::string describe() const {
    static constexpr const char* names[] = {
        "Eigen::Matrix<row-major>", "Eigen::Matrix<col-major>", "Eigen::VectorX",
        "Eigen::RowVectorX",        "Eigen::Map<row-major>",    "Eigen::Map<col-major>",
        "Eigen::Map<VectorX>",      "Eigen::Map<RowVectorX>",   "MatrixBuffer"};
    std::string s = names[object_.index()];
    if (std::holds_alternative<mhaprune::MatrixBuffer<Scalar>>(object_))
      s += std::string("<") + to_string(order()) + ">";
    return s;
  }

  /// Position of logical element `(i, j)` of a dense `[rows, cols]` tensor in memory.
  static Index offset(StorageOrder order, Index rows, Index cols, Index i, Index j) noexcept {
    return order == StorageOrder::row_major ? i * cols + j : j * rows + i;
  }
  /// The value the slack holds.
  static Scalar sentinel() { return from_double<Scalar>(-77.0); }

 private:
  bool owns_backing() const noexcept { return storage_.container != Container::matrix; }

  template <typename O>
  static Index rows_of(const O& o) {
    if constexpr (std::is_same_v<O, mhaprune::MatrixBuffer<Scalar>>)
      return o.rows;
    else
      return o.rows();
  }
  template <typename O>
  static Index cols_of(const O& o) {
    if constexpr (std::is_same_v<O, mhaprune::MatrixBuffer<Scalar>>)
      return o.cols;
    else
      return o.cols();
  }
  template <typename O>
  static StorageOrder order_of(const O& o) {
    if constexpr (std::is_same_v<O, mhaprune::MatrixBuffer<Scalar>>)
      return o.order;
    else
      return (O::Flags & Eigen::RowMajorBit) ? StorageOrder::row_major : StorageOrder::col_major;
  }
  template <typename O>
  static auto data_of(O& o) {
    if constexpr (std::is_same_v<std::remove_const_t<O>, mhaprune::MatrixBuffer<Scalar>>)
      return o.data;
    else
      return o.data();
  }

  Storage storage_;
  std::vector<Scalar> backing_;
  Object object_;
};

// ---------------------------------------------------------------------------------------------
// Blocks

/// How Q, K and V are bound.
enum class QkvLayout : std::uint8_t {
  separate,     ///< `layout::query`, `key`, `value`
  concat,       ///< `layout::qkv_concat`: rows `[Q | K | V]`
  interleaved,  ///< `layout::qkv_interleaved`: `q_h, k_h, v_h` per head (multi-head attention only)
  grouped,      ///< `layout::qkv_grouped`: `q_1 .. q_r, k, v` per key/value group
};

inline const char* to_string(QkvLayout l) {
  switch (l) {
    case QkvLayout::separate:
      return "separate";
    case QkvLayout::concat:
      return "qkv_concat";
    case QkvLayout::interleaved:
      return "qkv_interleaved";
    case QkvLayout::grouped:
      return "qkv_grouped";
  }
  return "?";
}

/// Everything that decides the shape of a `RandomBlock`; its values come from the seed.
struct BlockConfig {
  /// The block's name, which every message of mhaprune quotes.
  std::string name = "random_block";
  Index heads = 4;
  Index kv_heads = 4;
  Index head_dim = 2;
  Index model_dim = 8;
  QkvLayout qkv = QkvLayout::separate;
  /// Applied to every weight: `in_out` is GPT-2's `Conv1D` (c_attn `[D, 3D]`, c_proj `[H*d, D]`).
  Orientation orientation = Orientation::out_in;
  Storage storage;
  /// 1-D tensors as `[n, 1]` (false) or `[1, n]` (true).
  bool row_vectors = false;
  /// Q/K/V biases (one fused bias for fused layouts).
  bool qkv_bias = false;
  /// O's bias via `layout::output_bias`: read by the forward, never sliced.
  bool output_bias = false;
  /// ALiBi slopes `[H]`, attention sinks `[H]`, a T5-style bias `[buckets, H]` ("rel_bias"), a
  /// per-head norm `[H*d]` ("head_norm") and a key/value-owned norm `[H_kv*d]` ("k_norm").
  bool extras = false;
  /// Rows of the T5-style bias.
  Index buckets = 3;

  HeadLayout layout() const { return HeadLayout(heads, kv_heads, head_dim, model_dim); }

  std::string describe() const {
    std::ostringstream s;
    s << "H=" << heads << " H_kv=" << kv_heads << " d=" << head_dim << " D=" << model_dim
      << " qkv=" << to_string(qkv) << " orientation=" << to_string(orientation)
      << " storage=" << to_string(storage.container) << '/' << to_string(storage.order)
      << (storage.vector_types ? "/vector-types" : "") << " slack=" << storage.slack
      << (row_vectors ? " row-vectors" : " column-vectors") << " qkv_bias=" << qkv_bias
      << " output_bias=" << output_bias << " extras=" << extras;
    return s.str();
  }
};

/// The owner of one slice of a tensor's head axis, by original id.
struct Unit {
  Owner owner;
  Index id;
};

/// Which row of which logical projection a row of a (possibly fused) Q/K/V tensor is.
struct RowSource {
  Role role;
  Index unit;  ///< query head for Role::query, key/value head otherwise
  Index row;   ///< row within the head, 0 .. d-1
};

/// Rows of the Q/K/V tensor(s) of `qkv` in order, written out from each model family's
/// documented layout rather than from mhaprune's segment lists.
inline std::vector<RowSource> fused_rows(const HeadLayout& L, QkvLayout qkv) {
  const Index H = L.heads(), Hkv = L.kv_heads(), d = L.head_dim(), r = L.group_size();
  std::vector<RowSource> rows;
  auto head = [&](Role role, Index unit) {
    for (Index a = 0; a < d; ++a) rows.push_back({role, unit, a});
  };
  switch (qkv) {
    case QkvLayout::separate:  // not fused: Q, K and V one after the other, as the three tensors hold them
    case QkvLayout::concat:
      for (Index h = 0; h < H; ++h) head(Role::query, h);
      for (Index g = 0; g < Hkv; ++g) head(Role::key, g);
      for (Index g = 0; g < Hkv; ++g) head(Role::value, g);
      break;
    case QkvLayout::interleaved:
      for (Index h = 0; h < H; ++h) {
        head(Role::query, h);
        head(Role::key, h);
        head(Role::value, h);
      }
      break;
    case QkvLayout::grouped:
      for (Index g = 0; g < Hkv; ++g) {
        for (Index i = 0; i < r; ++i) head(Role::query, g * r + i);
        head(Role::key, g);
        head(Role::value, g);
      }
      break;
  }
  return rows;
}

/// A random attention block over `TestTensor`s, bound with mhaprune's layout adapters, that
/// remembers every tensor's original contents and who owns each slice of its head axis.
///
/// @tparam Scalar `float`, `double`, `Eigen::half` or `Eigen::bfloat16`.
///
/// Values are uniform in [-1, 1) (ALiBi slopes in [0.1, 1)), drawn from `std::mt19937(seed)` in a
/// fixed order, so two blocks with the same config and seed hold the same bits. Not copyable or
/// movable (the block points at the tensors); construct it where it is used.
template <typename Scalar>
class RandomBlock {
 public:
  /// One bound tensor: its name in the block, the test's object, and the oracle's data.
  struct Entry {
    std::string name;
    std::unique_ptr<TestTensor<Scalar>> tensor;
    Eigen::MatrixXd original;                      ///< logical contents when bound (exact, as double)
    std::vector<unsigned char> original_elements;  ///< the same, as Scalar bytes in logical row-major order
    Axis head_axis = Axis::rows;
    std::vector<Unit> owners;  ///< owner of each index along head_axis; empty: never sliced
  };

  RandomBlock(const BlockConfig& config, std::uint32_t seed)
      : config_(config), block_(config.name, config.layout()) {
    const HeadLayout L = config.layout();
    const Index H = L.heads(), Hkv = L.kv_heads(), d = L.head_dim(), D = L.model_dim();
    std::mt19937 rng(seed);
    const Eigen::MatrixXd wq = random_matrix(rng, H * d, D), wk = random_matrix(rng, Hkv * d, D),
                          wv = random_matrix(rng, Hkv * d, D), wo = random_matrix(rng, D, H * d);
    const Eigen::MatrixXd bq = random_matrix(rng, H * d, 1), bk = random_matrix(rng, Hkv * d, 1),
                          bv = random_matrix(rng, Hkv * d, 1), bo = random_matrix(rng, D, 1);
    const bool in_out = config.orientation == Orientation::in_out;
    auto oriented = [&](const Eigen::MatrixXd& w) -> Eigen::MatrixXd {
      return in_out ? Eigen::MatrixXd(w.transpose()) : w;
    };
    // Weights in Linear orientation keep heads on the rows of Q/K/V and the columns of O.
    const Axis qkv_axis = in_out ? Axis::cols : Axis::rows;
    const Axis o_axis = in_out ? Axis::rows : Axis::cols;
    const auto stored = [&](auto spec) { return std::move(spec).stored_as(config.orientation); };

    auto source = [&](Role role) -> const Eigen::MatrixXd& {
      return role == Role::query ? wq : role == Role::key ? wk : wv;
    };
    auto source_bias = [&](Role role) -> const Eigen::MatrixXd& {
      return role == Role::query ? bq : role == Role::key ? bk : bv;
    };
    auto owners_of = [](const std::vector<RowSource>& rows) {
      std::vector<Unit> u;
      for (const RowSource& s : rows)
        u.push_back({s.role == Role::query ? Owner::query_head : Owner::kv_head, s.unit});
      return u;
    };
    auto gather = [&](const std::vector<RowSource>& rows, bool bias) {
      Eigen::MatrixXd m(static_cast<Index>(rows.size()), bias ? 1 : D);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const Eigen::MatrixXd& src = bias ? source_bias(rows[i].role) : source(rows[i].role);
        m.row(static_cast<Index>(i)) = src.row(rows[i].unit * d + rows[i].row);
      }
      return m;
    };

    if (config.qkv == QkvLayout::separate) {
      const std::vector<RowSource> all = fused_rows(L, QkvLayout::separate);
      for (Role role : {Role::query, Role::key, Role::value}) {
        std::vector<RowSource> rows;
        for (const RowSource& s : all)
          if (s.role == role) rows.push_back(s);
        add_tensor(oriented(gather(rows, false)), qkv_axis, owners_of(rows), [&](auto& o) {
          return stored(role == Role::query ? mhaprune::layout::query(o)
                        : role == Role::key ? mhaprune::layout::key(o)
                                            : mhaprune::layout::value(o));
        });
        if (config.qkv_bias) {
          add_vector(gather(rows, true), owners_of(rows), [&](auto& o) {
            return role == Role::query ? mhaprune::layout::query_bias(o)
                   : role == Role::key ? mhaprune::layout::key_bias(o)
                                       : mhaprune::layout::value_bias(o);
          });
        }
      }
    } else {
      const std::vector<RowSource> rows = fused_rows(L, config.qkv);
      const QkvLayout qkv = config.qkv;
      add_tensor(oriented(gather(rows, false)), qkv_axis, owners_of(rows), [&](auto& o) {
        return stored(qkv == QkvLayout::concat        ? mhaprune::layout::qkv_concat(o)
                      : qkv == QkvLayout::interleaved ? mhaprune::layout::qkv_interleaved(o)
                                                      : mhaprune::layout::qkv_grouped(o));
      });
      if (config.qkv_bias) {
        add_vector(gather(rows, true), owners_of(rows), [&](auto& o) {
          return qkv == QkvLayout::concat        ? mhaprune::layout::qkv_concat_bias(o)
                 : qkv == QkvLayout::interleaved ? mhaprune::layout::qkv_interleaved_bias(o)
                                                 : mhaprune::layout::qkv_grouped_bias(o);
        });
      }
    }

    add_tensor(oriented(wo), o_axis, per_unit(Owner::query_head, H, d),
               [&](auto& o) { return stored(mhaprune::layout::output(o)); });
    if (config.output_bias) add_vector(bo, {}, [&](auto& o) { return mhaprune::layout::output_bias(o); });

    if (config.extras) {
      const Axis vec_axis = config.row_vectors ? Axis::cols : Axis::rows;
      add_vector(random_matrix(rng, H, 1, 0.1, 1.0), per_unit(Owner::query_head, H, 1),
                 [&](auto& o) { return mhaprune::layout::alibi_slopes(o); });
      add_vector(random_matrix(rng, H, 1), per_unit(Owner::query_head, H, 1),
                 [&](auto& o) { return mhaprune::layout::attention_sinks(o); });
      add_tensor(random_matrix(rng, config.buckets, H), Axis::cols, per_unit(Owner::query_head, H, 1),
                 [&](auto& o) { return mhaprune::layout::per_head("rel_bias", o, Axis::cols); });
      add_vector(random_matrix(rng, H * d, 1), per_unit(Owner::query_head, H, d),
                 [&](auto& o) { return mhaprune::layout::per_head("head_norm", o, vec_axis); });
      add_vector(random_matrix(rng, Hkv * d, 1), per_unit(Owner::kv_head, Hkv, d), [&](auto& o) {
        return mhaprune::layout::per_head("k_norm", o, vec_axis, Role::extra, Owner::kv_head);
      });
    }
  }

  RandomBlock(const RandomBlock&) = delete;
  RandomBlock& operator=(const RandomBlock&) = delete;

  const BlockConfig& config() const noexcept { return config_; }
  mhaprune::AttentionBlock<Scalar>& block() noexcept { return block_; }
  const mhaprune::AttentionBlock<Scalar>& block() const noexcept { return block_; }
  const std::vector<std::unique_ptr<Entry>>& entries() const noexcept { return entries_; }
  /// The entry bound under `name` ("query.weight", "alibi_slopes", ...), or nullptr.
  const Entry* entry(const std::string& name) const {
    for (const auto& e : entries_)
      if (e->name == name) return e.get();
    return nullptr;
  }
  TestTensor<Scalar>& tensor(const std::string& name) {
    for (auto& e : entries_)
      if (e->name == name) return *e->tensor;
    throw std::out_of_range("RandomBlock: no tensor named " + name);
  }

  /// The oracle: every tensor holds, bit for bit, the original elements of the slices whose owner
  /// is still in the block (`head_ids()`, `kv_head_ids()`), in their original order; Maps report the
  /// new shape and still point at the front of their buffer; nothing was written past the data.
  /// Returns "" when all holds, else a description of the first difference.
  std::string check_contents() const {
    const auto& heads = block_.head_ids();
    const auto& kv = block_.kv_head_ids();
    auto alive = [&](const Unit& u) {
      const auto& ids = u.owner == Owner::query_head ? heads : kv;
      return std::find(ids.begin(), ids.end(), u.id) != ids.end();
    };
    for (const auto& e : entries_) {
      const TestTensor<Scalar>& t = *e->tensor;
      std::vector<Index> keep;  // original indices along the head axis that must remain
      const Index along = e->head_axis == Axis::rows ? e->original.rows() : e->original.cols();
      for (Index k = 0; k < along; ++k)
        if (e->owners.empty() || alive(e->owners[static_cast<std::size_t>(k)])) keep.push_back(k);
      const Index kept = static_cast<Index>(keep.size());
      const Index er = e->head_axis == Axis::rows ? kept : e->original.rows();
      const Index ec = e->head_axis == Axis::rows ? e->original.cols() : kept;
      std::ostringstream why;
      why << "tensor \"" << e->name << "\" (" << t.describe() << "): ";
      if (t.rows() != er || t.cols() != ec) {
        why << "shape [" << t.rows() << ", " << t.cols() << "], expected [" << er << ", " << ec << "]";
        return why.str();
      }
      if (!t.data_at_buffer_front())
        return why.str() + "the object no longer points at the front of its buffer";
      if (!t.slack_untouched()) return why.str() + "the slack after the data was written";
      const Index oc = e->original.cols();
      for (Index i = 0; i < er; ++i) {
        for (Index j = 0; j < ec; ++j) {
          const Index oi = e->head_axis == Axis::rows ? keep[static_cast<std::size_t>(i)] : i;
          const Index oj = e->head_axis == Axis::rows ? j : keep[static_cast<std::size_t>(j)];
          const Scalar now = t.at(i, j);
          if (std::memcmp(&now,
                          &e->original_elements[static_cast<std::size_t>(oi * oc + oj) * sizeof(Scalar)],
                          sizeof(Scalar)) != 0) {
            why << "element (" << i << ", " << j << ") is " << mhaprune::detail::to_double(now)
                << ", expected original element (" << oi << ", " << oj << ") = " << e->original(oi, oj);
            return why.str();
          }
        }
      }
    }
    return std::string();
  }

 private:
  static std::vector<Unit> per_unit(Owner owner, Index units, Index width) {
    std::vector<Unit> u;
    for (Index k = 0; k < units; ++k)
      for (Index a = 0; a < width; ++a) u.push_back({owner, k});
    return u;
  }

  template <typename MakeSpec>
  void add_tensor(const Eigen::MatrixXd& values, Axis head_axis, std::vector<Unit> owners,
                  MakeSpec make_spec) {
    auto e = std::make_unique<Entry>();
    e->tensor = std::make_unique<TestTensor<Scalar>>(values, config_.storage);
    e->head_axis = head_axis;
    e->owners = std::move(owners);
    e->original = e->tensor->values();
    e->original_elements.resize(static_cast<std::size_t>(values.size()) * sizeof(Scalar));
    for (Index i = 0; i < values.rows(); ++i) {
      for (Index j = 0; j < values.cols(); ++j) {
        const Scalar s = e->tensor->at(i, j);
        std::memcpy(&e->original_elements[static_cast<std::size_t>(i * values.cols() + j) * sizeof(Scalar)],
                    &s, sizeof(Scalar));
      }
    }
    auto spec = e->tensor->visit([&](auto& o) { return make_spec(o); });
    e->name = spec.name;
    block_.add(std::move(spec));
    entries_.push_back(std::move(e));
  }

  /// A 1-D tensor given as a column; stored as a row when the config says so.
  template <typename MakeSpec>
  void add_vector(const Eigen::MatrixXd& column, std::vector<Unit> owners, MakeSpec make_spec) {
    if (config_.row_vectors) {
      add_tensor(column.transpose(), Axis::cols, std::move(owners), make_spec);
    } else {
      add_tensor(column, Axis::rows, std::move(owners), make_spec);
    }
  }

  BlockConfig config_;
  mhaprune::AttentionBlock<Scalar> block_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// ---------------------------------------------------------------------------------------------
// Snapshots, for the strong exception guarantee

/// Every byte and shape of every tensor of a `RandomBlock`, and the block's bookkeeping: its layout,
/// head ids, and each bound tensor's recorded shape and segments. Equal snapshots mean a call left
/// everything bit for bit as it was (the strong exception guarantee).
struct Snapshot {
  std::vector<std::vector<unsigned char>> bytes;
  std::vector<std::pair<Index, Index>> shapes;
  std::vector<Index> head_ids;
  std::vector<Index> kv_head_ids;
  Index heads = 0, kv_heads = 0, head_dim = 0, model_dim = 0;
  /// Per bound tensor: rows, cols, then unit and width of each segment.
  std::vector<std::vector<Index>> bound;

  bool operator==(const Snapshot& o) const {
    if (bytes.size() != o.bytes.size()) return false;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i].size() != o.bytes[i].size()) return false;
      if (!bytes[i].empty() && std::memcmp(bytes[i].data(), o.bytes[i].data(), bytes[i].size()) != 0)
        return false;
    }
    return shapes == o.shapes && head_ids == o.head_ids && kv_head_ids == o.kv_head_ids && heads == o.heads &&
           kv_heads == o.kv_heads && head_dim == o.head_dim && model_dim == o.model_dim && bound == o.bound;
  }
  bool operator!=(const Snapshot& o) const { return !(*this == o); }
};

template <typename Scalar>
Snapshot snapshot(const RandomBlock<Scalar>& b) {
  Snapshot s;
  for (const auto& e : b.entries()) {
    s.bytes.push_back(e->tensor->bytes());
    s.shapes.emplace_back(e->tensor->rows(), e->tensor->cols());
  }
  const auto& blk = b.block();
  s.head_ids = blk.head_ids();
  s.kv_head_ids = blk.kv_head_ids();
  s.heads = blk.layout().heads();
  s.kv_heads = blk.layout().kv_heads();
  s.head_dim = blk.layout().head_dim();
  s.model_dim = blk.layout().model_dim();
  for (const auto& t : blk.tensors()) {
    std::vector<Index> v = {t.rows, t.cols};
    for (const auto& seg : t.segments) {
      v.push_back(seg.unit);
      v.push_back(seg.width);
    }
    s.bound.push_back(std::move(v));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Head sets

/// A kind of removal, each valid for the layouts `applicable` accepts.
enum class Selection : std::uint8_t {
  none,               ///< remove nothing
  one,                ///< one head (multi-head attention, or a single key/value group)
  all_but_one,        ///< keep one head (whole groups go, one group keeps one head)
  whole_groups,       ///< every head of 1 .. H_kv-1 key/value groups (any heads at all, for MHA)
  uniform_per_group,  ///< the same number, 1 .. r-1, from every group
  mixed,              ///< whole groups, and the same number from every other group
};

inline const char* to_string(Selection s) {
  switch (s) {
    case Selection::none:
      return "none";
    case Selection::one:
      return "one";
    case Selection::all_but_one:
      return "all_but_one";
    case Selection::whole_groups:
      return "whole_groups";
    case Selection::uniform_per_group:
      return "uniform_per_group";
    case Selection::mixed:
      return "mixed";
  }
  return "?";
}

inline constexpr Selection all_selections[] = {Selection::none,
                                               Selection::one,
                                               Selection::all_but_one,
                                               Selection::whole_groups,
                                               Selection::uniform_per_group,
                                               Selection::mixed};

/// Whether `s` names a removal that `L` allows and that removes something (except `none`).
inline bool applicable(Selection s, const HeadLayout& L) {
  const Index H = L.heads(), Hkv = L.kv_heads(), r = L.group_size();
  switch (s) {
    case Selection::none:
      return true;
    case Selection::one:
      return H >= 2 && (r == 1 || Hkv == 1);
    case Selection::all_but_one:
      return H >= 2;
    case Selection::whole_groups:
      return Hkv >= 2;
    case Selection::uniform_per_group:
      return r >= 2;
    case Selection::mixed:
      return Hkv >= 2 && r >= 2;
  }
  return false;
}

/// Current positions of a random removal of kind `s` (which must be `applicable`), in random order.
/// A valid removal in GQA leaves every surviving group with the same number of query heads.
inline std::vector<Index> pick_heads(const HeadLayout& L, Selection s, std::mt19937& rng) {
  const Index H = L.heads(), Hkv = L.kv_heads(), r = L.group_size();
  std::vector<Index> out;
  auto shuffled = [&](Index n) {
    std::vector<Index> v(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    std::shuffle(v.begin(), v.end(), rng);
    return v;
  };
  // `groups_out` whole groups go; `per_group` heads go from each other group.
  auto groups = [&](Index groups_out, Index per_group) {
    const std::vector<Index> order = shuffled(Hkv);
    for (Index k = 0; k < Hkv; ++k) {
      const Index g = order[static_cast<std::size_t>(k)];
      const std::vector<Index> members = shuffled(r);
      const Index n = k < groups_out ? r : per_group;
      for (Index i = 0; i < n; ++i) out.push_back(g * r + members[static_cast<std::size_t>(i)]);
    }
  };
  switch (s) {
    case Selection::none:
      break;
    case Selection::one:
      out.push_back(uniform_index(rng, 0, H - 1));
      break;
    case Selection::all_but_one: {
      const Index keep = uniform_index(rng, 0, H - 1);
      for (Index h = 0; h < H; ++h)
        if (h != keep) out.push_back(h);
      break;
    }
    case Selection::whole_groups:
      groups(uniform_index(rng, 1, Hkv - 1), 0);
      break;
    case Selection::uniform_per_group:
      groups(0, uniform_index(rng, 1, r - 1));
      break;
    case Selection::mixed:
      groups(uniform_index(rng, 1, Hkv - 1), uniform_index(rng, 1, r - 1));
      break;
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

/// The original ids of the heads at `positions` of `block`, in the same order.
template <typename Scalar>
std::vector<Index> original_ids(const mhaprune::AttentionBlock<Scalar>& block,
                                const std::vector<Index>& positions) {
  std::vector<Index> ids;
  for (Index p : positions) ids.push_back(block.head_ids()[static_cast<std::size_t>(p)]);
  return ids;
}

/// Original ids of the key/value heads whose every query head is at one of `positions`, ascending;
/// `complete` is set to whether `positions` is exactly those groups' heads.
template <typename Scalar>
std::vector<Index> whole_kv_groups(const mhaprune::AttentionBlock<Scalar>& block,
                                   const std::vector<Index>& positions, bool* complete = nullptr) {
  const Index r = block.layout().group_size();
  std::vector<Index> count(static_cast<std::size_t>(block.layout().kv_heads()), 0);
  for (Index p : positions) ++count[static_cast<std::size_t>(p / r)];
  std::vector<Index> ids;
  bool all = true;
  for (std::size_t g = 0; g < count.size(); ++g) {
    if (count[g] == r)
      ids.push_back(block.kv_head_ids()[g]);
    else if (count[g] != 0)
      all = false;
  }
  if (complete) *complete = all;
  return ids;
}

/// A random `[T, D]` input for the reference forward.
inline Eigen::MatrixXd random_input(std::mt19937& rng, Index tokens, Index model_dim) {
  return random_matrix(rng, tokens, model_dim);
}

}  // namespace mhaprune_test
