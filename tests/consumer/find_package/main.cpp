// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#include <iostream>
#include <mhaprune/mhaprune.hpp>

int main() {
  std::cout << "mhaprune version " << mhaprune::version << '\n';
  return mhaprune::version > 0 ? 0 : 1;
}
