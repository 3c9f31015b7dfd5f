// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "mhaprune/error.hpp"

/// The one type-erasure design behind `AnyCriterion`, `AnyMaskPolicy` and `AnySchedule`: a policy of
/// any type held by value behind an abstract `Concept`, which `Model<T>` implements for each held
/// type. Each Any* class writes only its kind's virtual calls; holding, copying, naming, the
/// moved-from check and `target<T>()` are written here once, so the three behave alike.
///
/// The shape, for a kind whose policies have `int f() const`:
///
/// ```
/// struct Concept : detail::ErasedConcept<Concept> {
///   static constexpr const char* owner = "AnyThing";  // for messages
///   static constexpr const char* kind = "thing";      // for messages
///   template <typename T>
///   static std::string name_of(const T& t) { return detail::name_or(t, "thing"); }  // default name
///   virtual int f() const = 0;
/// };
/// template <typename T>
/// struct Model final : detail::ErasedModel<Concept, T, Model<T>> {
///   using detail::ErasedModel<Concept, T, Model<T>>::ErasedModel;
///   int f() const override { return this->held.f(); }
/// };
/// detail::ErasedValue<Concept, Model> erased_;
/// ```
///
/// Only the virtual calls the Concept declares are instantiated for a held type (`target<T>()` only
/// when called), so a held policy costs what its own calls cost, no more.
namespace mhaprune::detail {

/// Base of a kind's abstract `Concept`: how a held policy is copied.
template <typename Concept>
struct ErasedConcept {
  ErasedConcept() = default;
  ErasedConcept(const ErasedConcept&) = default;
  ErasedConcept& operator=(const ErasedConcept&) = delete;
  virtual ~ErasedConcept() = default;
  /// A copy of the held policy, its state included.
  /// @throws config_error when the held type cannot be copied.
  virtual std::unique_ptr<Concept> clone() const = 0;
};

/// Base of a kind's `Model<T>` (which passes itself as `Self`): holds the `T` as `held` and copies it.
template <typename Concept, typename T, typename Self>
struct ErasedModel : Concept {
  explicit ErasedModel(T value) : held(std::move(value)) {}

  std::unique_ptr<Concept> clone() const final {
    if constexpr (std::is_copy_constructible_v<T>) {
      return std::make_unique<Self>(static_cast<const Self&>(*this));
    } else {
      throw config_error(message(Concept::owner, ": the held ", Concept::kind, " cannot be copied"));
    }
  }

  T held;
};

/// A policy of any type, held by value with its name.
///
/// @tparam Concept the kind's abstract class (see above): derives from `ErasedConcept<Concept>`, has
///         `owner`, `kind` and `name_of`.
/// @tparam Model the kind's `Model<T>`, deriving from `ErasedModel<Concept, T, Model<T>>`.
///
/// Copying copies the held policy (state included) and throws `config_error` when its type cannot be
/// copied; moving is cheap and noexcept. A moved-from value throws `config_error` on every use but
/// `name()`, assignment and destruction.
template <typename Concept, template <typename> class Model>
class ErasedValue {
 public:
  /// Holds `value`; `name` empty means `Concept::name_of(value)`.
  template <typename T>
  ErasedValue(T value, std::string name) {
    auto model = std::make_unique<Model<T>>(std::move(value));
    name_ = name.empty() ? Concept::name_of(model->held) : std::move(name);
    self_ = std::move(model);
  }

  ErasedValue(const ErasedValue& other) : self_(other.get().clone()), name_(other.name_) {}
  ErasedValue(ErasedValue&&) noexcept = default;
  ErasedValue& operator=(const ErasedValue& other) {
    if (this != &other) *this = ErasedValue(other);  // copy first: a failed copy changes nothing
    return *this;
  }
  ErasedValue& operator=(ErasedValue&&) noexcept = default;
  ~ErasedValue() = default;

  /// The held policy's interface.
  /// @throws config_error after this was moved from.
  Concept& get() const {
    if (!self_) throw config_error(message(Concept::owner, ": used after it was moved from"));
    return *self_;
  }

  const std::string& name() const noexcept { return name_; }
  void rename(std::string name) { name_ = std::move(name); }

  /// The held policy, if it is a `T`, else nullptr (also after a move).
  template <typename T>
  T* target() noexcept {
    auto* m = dynamic_cast<Model<T>*>(self_.get());
    return m ? &m->held : nullptr;
  }
  template <typename T>
  const T* target() const noexcept {
    const auto* m = dynamic_cast<const Model<T>*>(self_.get());
    return m ? &m->held : nullptr;
  }

 private:
  std::unique_ptr<Concept> self_;
  std::string name_;
};

}  // namespace mhaprune::detail
