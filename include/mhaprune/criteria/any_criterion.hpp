// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <string>
#include <type_traits>
#include <utility>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/erased_value.hpp"
#include "mhaprune/criteria/concept.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {
template <typename Scalar>
const char* scalar_name() noexcept {
  if constexpr (std::is_same_v<Scalar, float>) {
    return "float";
  } else if constexpr (std::is_same_v<Scalar, double>) {
    return "double";
  } else if constexpr (std::is_same_v<Scalar, Eigen::half>) {
    return "Eigen::half";
  } else {
    return "Eigen::bfloat16";
  }
}
}  // namespace detail

/// Any criterion behind one type, chosen at run time (from a configuration, through the registry).
///
/// Holds a criterion of any type by value (copying an `AnyCriterion` copies it, state included) and
/// forwards `scores`/`update` for blocks of float, double, Eigen::half and Eigen::bfloat16 through one
/// virtual call per block, never per element. It is itself a criterion (with an `update` that does
/// nothing for stateless criteria), so `MhaPruner<AnyCriterion>` works. Default-constructed it holds
/// `Magnitude` (mean reduction). Same design as `AnyMaskPolicy` and `AnySchedule`
/// (core/detail/erased_value.hpp): value semantics, a name, `target<C>()`.
///
/// Throws `config_error` when asked to score a scalar type the held criterion does not support, when
/// copying a criterion that cannot be copied, or when used after it was moved from; and whatever the
/// criterion throws.
class AnyCriterion {
 public:
  AnyCriterion() : AnyCriterion(Magnitude{}) {}

  /// @tparam C a criterion for at least one supported scalar type (see concept.hpp).
  /// @param name for messages; defaults to the criterion's `name()`, or "criterion".
  template <typename C, std::enable_if_t<!std::is_same_v<std::decay_t<C>, AnyCriterion>, int> = 0>
  explicit AnyCriterion(C criterion, std::string name = {}) : erased_(std::move(criterion), std::move(name)) {
    static_assert(is_criterion_v<C, float> || is_criterion_v<C, double> || is_criterion_v<C, Eigen::half> ||
                      is_criterion_v<C, Eigen::bfloat16>,
                  "mhaprune::AnyCriterion: the type is not a criterion for any supported scalar type (see "
                  "mhaprune/criteria/concept.hpp)");
  }

  const std::string& name() const noexcept { return erased_.name(); }
  /// Renames it (for messages).
  void rename(std::string name) { erased_.rename(std::move(name)); }
  /// Whether the held criterion has an `update` step for some scalar type.
  bool stateful() const { return erased_.get().stateful(); }

  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& ev = Evidence{}) {
    return erased_.get().scores(block, ev, name());
  }

  /// Forwards to the held criterion's `update`; does nothing for a stateless one.
  template <typename Scalar>
  void update(const AttentionBlock<Scalar>& block, const Evidence& ev) {
    erased_.get().update(block, ev, name());
  }

  /// The held criterion, if it is a `C` (to read its state), else nullptr.
  template <typename C>
  C* target() noexcept {
    return erased_.template target<C>();
  }
  template <typename C>
  const C* target() const noexcept {
    return erased_.template target<C>();
  }

 private:
  struct Concept : detail::ErasedConcept<Concept> {
    static constexpr const char* owner = "AnyCriterion";
    static constexpr const char* kind = "criterion";
    template <typename C>
    static std::string name_of(const C& criterion) {
      return criterion_name(criterion);
    }

    virtual Eigen::VectorXd scores(const AttentionBlock<float>&, const Evidence&, const std::string&) = 0;
    virtual Eigen::VectorXd scores(const AttentionBlock<double>&, const Evidence&, const std::string&) = 0;
    virtual Eigen::VectorXd scores(const AttentionBlock<Eigen::half>&, const Evidence&,
                                   const std::string&) = 0;
    virtual Eigen::VectorXd scores(const AttentionBlock<Eigen::bfloat16>&, const Evidence&,
                                   const std::string&) = 0;
    virtual void update(const AttentionBlock<float>&, const Evidence&, const std::string&) = 0;
    virtual void update(const AttentionBlock<double>&, const Evidence&, const std::string&) = 0;
    virtual void update(const AttentionBlock<Eigen::half>&, const Evidence&, const std::string&) = 0;
    virtual void update(const AttentionBlock<Eigen::bfloat16>&, const Evidence&, const std::string&) = 0;
    virtual bool stateful() const noexcept = 0;
  };

  template <typename C>
  struct Model final : detail::ErasedModel<Concept, C, Model<C>> {
    using detail::ErasedModel<Concept, C, Model<C>>::ErasedModel;

    template <typename Scalar>
    Eigen::VectorXd do_scores(const AttentionBlock<Scalar>& block, const Evidence& ev,
                              const std::string& name) {
      if constexpr (is_criterion_v<C, Scalar>) {
        (void)name;
        return score_heads(this->held, block, ev);
      } else {
        (void)ev;
        throw config_error(detail::message(name, ": block \"", block.name(),
                                           "\": this criterion does not score ",
                                           detail::scalar_name<Scalar>(), " blocks"));
      }
    }
    template <typename Scalar>
    void do_update(const AttentionBlock<Scalar>& block, const Evidence& ev, const std::string& name) {
      if constexpr (has_update_v<C, Scalar>) {
        (void)name;
        this->held.update(block, ev);
      } else if constexpr (!is_criterion_v<C, Scalar>) {
        (void)ev;
        throw config_error(detail::message(name, ": block \"", block.name(),
                                           "\": this criterion does not score ",
                                           detail::scalar_name<Scalar>(), " blocks"));
      } else {
        (void)block, (void)ev, (void)name;
      }
    }

    Eigen::VectorXd scores(const AttentionBlock<float>& b, const Evidence& e, const std::string& n) override {
      return do_scores(b, e, n);
    }
    Eigen::VectorXd scores(const AttentionBlock<double>& b, const Evidence& e,
                           const std::string& n) override {
      return do_scores(b, e, n);
    }
    Eigen::VectorXd scores(const AttentionBlock<Eigen::half>& b, const Evidence& e,
                           const std::string& n) override {
      return do_scores(b, e, n);
    }
    Eigen::VectorXd scores(const AttentionBlock<Eigen::bfloat16>& b, const Evidence& e,
                           const std::string& n) override {
      return do_scores(b, e, n);
    }
    void update(const AttentionBlock<float>& b, const Evidence& e, const std::string& n) override {
      do_update(b, e, n);
    }
    void update(const AttentionBlock<double>& b, const Evidence& e, const std::string& n) override {
      do_update(b, e, n);
    }
    void update(const AttentionBlock<Eigen::half>& b, const Evidence& e, const std::string& n) override {
      do_update(b, e, n);
    }
    void update(const AttentionBlock<Eigen::bfloat16>& b, const Evidence& e, const std::string& n) override {
      do_update(b, e, n);
    }
    bool stateful() const noexcept override {
      return has_update_v<C, float> || has_update_v<C, double> || has_update_v<C, Eigen::half> ||
             has_update_v<C, Eigen::bfloat16>;
    }
  };

  detail::ErasedValue<Concept, Model> erased_;
};

}  // namespace mhaprune
