// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <catch2/catch.hpp>
#include <exception>
#include <string>
#include <typeinfo>

namespace mhaprune_test {

/// The message of the `E` that `f` throws; fails the test if it throws nothing or something else.
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected a different exception type, got: " << e.what());
  }
  FAIL("expected an exception, none was thrown");
  return {};
}

/// As `message_of`, and the exception must be exactly an `E`, not a type derived from it: for the
/// calls whose contract names the precise type of error.hpp's hierarchy they throw.
template <typename E, typename F>
std::string exact_message(F&& f) {
  return message_of<E>([&] {
    try {
      f();
    } catch (const E& e) {
      // Names rather than type_info, so that a failure prints both types.
      CHECK(std::string(typeid(e).name()) == typeid(E).name());
      throw;
    }
  });
}

}  // namespace mhaprune_test
