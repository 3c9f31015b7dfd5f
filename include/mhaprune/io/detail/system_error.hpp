// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "mhaprune/error.hpp"

namespace mhaprune::io::detail {

/// An io_error for a failed system call: "<path>: cannot <what>: <strerror(errno)>".
inline io_error system_failure(std::string_view path, std::string_view what, int error_number = errno) {
  return io_error(mhaprune::detail::message(path, ": cannot ", what, ": ", std::strerror(error_number)));
}

}  // namespace mhaprune::io::detail
