// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <catch2/catch.hpp>
#include <exception>
#include <string>

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

}  // namespace mhaprune_test
