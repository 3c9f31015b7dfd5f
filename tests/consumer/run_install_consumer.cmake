# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# CTest `consumer_install`: configure a fresh copy of the source as a user would
# (tests/examples/benchmarks OFF), install it into a staging prefix, move the
# prefix elsewhere (the package must be relocatable), then build and run the
# find_package consumer against it with CMAKE_PREFIX_PATH.

include("${CMAKE_CURRENT_LIST_DIR}/consumer_common.cmake")

set(_lib_build "${WORK_DIR}/mhaprune-build")
set(_stage "${WORK_DIR}/stage")
set(_prefix "${WORK_DIR}/prefix")

consumer_run("configure mhaprune for install"
  "${CMAKE_COMMAND}" -S "${MHAPRUNE_SOURCE_DIR}" -B "${_lib_build}" ${CONSUMER_COMMON_CONFIGURE_ARGS}
  -DCMAKE_BUILD_TYPE=Release
  -DMHAPRUNE_BUILD_TESTS=OFF -DMHAPRUNE_BUILD_EXAMPLES=OFF -DMHAPRUNE_BUILD_BENCHMARKS=OFF
  -DMHAPRUNE_INSTALL=ON
  "-DCMAKE_INSTALL_PREFIX=${_stage}")
consumer_run("build mhaprune"
  "${CMAKE_COMMAND}" --build "${_lib_build}" --config "${CONSUMER_CONFIG}")
consumer_run("install mhaprune"
  "${CMAKE_COMMAND}" --install "${_lib_build}" --config "${CONSUMER_CONFIG}")

# Relocate: nothing in the installed package may point at the staging prefix.
file(RENAME "${_stage}" "${_prefix}")

# Installed layout (GNUInstallDirs defaults: include/, share/).
set(_cmakedir "${_prefix}/share/cmake/mhaprune")
foreach(_f
    "include/mhaprune/mhaprune.hpp"
    "include/mhaprune/version.hpp"
    "share/cmake/mhaprune/mhaprune-config.cmake"
    "share/cmake/mhaprune/mhaprune-config-version.cmake"
    "share/cmake/mhaprune/mhaprune-targets.cmake"
    "share/doc/mhaprune/LICENSE")
  if(NOT EXISTS "${_prefix}/${_f}")
    message(FATAL_ERROR "consumer test: ${_f} was not installed")
  endif()
endforeach()
file(READ "${_cmakedir}/mhaprune-targets.cmake" _targets)
foreach(_forbidden "${MHAPRUNE_SOURCE_DIR}" "${_stage}")
  string(FIND "${_targets}" "${_forbidden}" _pos)
  if(NOT _pos EQUAL -1)
    message(FATAL_ERROR "consumer test: installed mhaprune-targets.cmake refers to ${_forbidden}")
  endif()
endforeach()

consumer_configure_build_run(consumer
  "${CONSUMER_TESTS_DIR}/find_package"
  -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_PREFIX_PATH=${_prefix}"
  "-DMHAPRUNE_EXPECTED_VERSION=${MHAPRUNE_EXPECTED_VERSION}")
consumer_expect_found_dir("${_cmakedir}")
