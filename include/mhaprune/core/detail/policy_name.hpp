// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <type_traits>
#include <utility>

/// How the library finds a policy's name (criteria, mask policies, schedules), for messages and for
/// `AnyCriterion`, `AnyMaskPolicy` and `AnySchedule`. A name is optional; the built-in criteria spell
/// it `name()`, the built-in mask policies and schedules `static constexpr const char* name`.
namespace mhaprune::detail {

/// True when `T` has a `name()` callable on a const object, returning something a `std::string` can be
/// made from.
template <typename T, typename = void>
struct has_name_function : std::false_type {};
template <typename T>
struct has_name_function<T, std::void_t<decltype(std::string(std::declval<const T&>().name()))>>
    : std::true_type {};

/// True when `T` has a data member `name` (usually `static constexpr const char* name`) that a
/// `std::string` can be made from.
template <typename T, typename = void>
struct has_name_member : std::false_type {};
template <typename T>
struct has_name_member<T, std::void_t<decltype(std::string(std::declval<const T&>().name))>>
    : std::true_type {};

/// `policy.name()` when there is one, else `policy.name`, else `fallback`.
template <typename T>
std::string name_or(const T& policy, const char* fallback) {
  if constexpr (has_name_function<T>::value) {
    return std::string(policy.name());
  } else if constexpr (has_name_member<T>::value) {
    return std::string(policy.name);
  } else {
    (void)policy;
    return fallback;
  }
}

}  // namespace mhaprune::detail
