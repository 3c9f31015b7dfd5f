# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# CTest `consumer_build_tree` (MODE=build_tree): find_package(mhaprune) with
#   mhaprune_DIR=<the enclosing build dir> (the build-tree export).
# CTest `consumer_add_subdirectory` (MODE=add_subdirectory): a parent project
#   that does add_subdirectory(<mhaprune source>) and checks that mhaprune's
#   options default to OFF and that it does not touch CMAKE_BUILD_TYPE.

include("${CMAKE_CURRENT_LIST_DIR}/consumer_common.cmake")

if(MODE STREQUAL "build_tree")
  if(NOT MHAPRUNE_BINARY_DIR OR NOT EXISTS "${MHAPRUNE_BINARY_DIR}/mhaprune-config.cmake")
    message(FATAL_ERROR "consumer test: no mhaprune-config.cmake in build tree '${MHAPRUNE_BINARY_DIR}'")
  endif()
  consumer_configure_build_run(consumer
    "${CONSUMER_TESTS_DIR}/find_package"
    -DCMAKE_BUILD_TYPE=Release
    "-Dmhaprune_DIR=${MHAPRUNE_BINARY_DIR}"
    "-DMHAPRUNE_EXPECTED_VERSION=${MHAPRUNE_EXPECTED_VERSION}")
  consumer_expect_found_dir("${MHAPRUNE_BINARY_DIR}")
elseif(MODE STREQUAL "add_subdirectory")
  # Deliberately no CMAKE_BUILD_TYPE: the consumer checks that mhaprune leaves it alone.
  consumer_configure_build_run(consumer
    "${CONSUMER_TESTS_DIR}/add_subdirectory"
    "-DMHAPRUNE_SOURCE_DIR=${MHAPRUNE_SOURCE_DIR}")
else()
  message(FATAL_ERROR "consumer test: unknown MODE '${MODE}' (build_tree|add_subdirectory)")
endif()
