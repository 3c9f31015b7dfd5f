# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# Helpers shared by the consumer test scripts (run with `cmake -P`).
# Inputs (all passed with -D by tests/CMakeLists.txt):
#   MHAPRUNE_SOURCE_DIR, MHAPRUNE_BINARY_DIR, MHAPRUNE_EXPECTED_VERSION,
#   CONSUMER_CXX_COMPILER, CONSUMER_GENERATOR, CONSUMER_MAKE_PROGRAM,
#   CONSUMER_EIGEN3_DIR, CONSUMER_CONFIG, WORK_DIR

foreach(_v MHAPRUNE_SOURCE_DIR MHAPRUNE_EXPECTED_VERSION CONSUMER_CXX_COMPILER CONSUMER_GENERATOR WORK_DIR)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "consumer test: ${_v} must be set")
  endif()
endforeach()
if(NOT CONSUMER_CONFIG)
  set(CONSUMER_CONFIG Release)
endif()

set(CONSUMER_TESTS_DIR "${CMAKE_CURRENT_LIST_DIR}")

# Always start from scratch so that the test is repeatable.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Arguments every nested configure gets: same generator and compiler as the
# enclosing build, and no package registries (only what we point at is found).
set(CONSUMER_COMMON_CONFIGURE_ARGS
  -G "${CONSUMER_GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(CONSUMER_MAKE_PROGRAM)
  list(APPEND CONSUMER_COMMON_CONFIGURE_ARGS "-DCMAKE_MAKE_PROGRAM=${CONSUMER_MAKE_PROGRAM}")
endif()
if(CONSUMER_EIGEN3_DIR)
  list(APPEND CONSUMER_COMMON_CONFIGURE_ARGS "-DEigen3_DIR=${CONSUMER_EIGEN3_DIR}")
endif()

# consumer_run(<description> <command>...): run a command, fail the test if it fails.
function(consumer_run description)
  message(STATUS "consumer test: ${description}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc COMMAND_ECHO STDOUT)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "consumer test: '${description}' failed (${_rc})")
  endif()
endfunction()

# consumer_configure_build_run(<name> <source dir> <configure args>...):
# configures <source dir> into WORK_DIR/<name>, builds it, runs its
# `mhaprune_consumer` executable and checks the version it prints.
function(consumer_configure_build_run name source_dir)
  set(_bin "${WORK_DIR}/${name}")
  consumer_run("configure ${name}"
    "${CMAKE_COMMAND}" -S "${source_dir}" -B "${_bin}" ${CONSUMER_COMMON_CONFIGURE_ARGS} ${ARGN})
  consumer_run("build ${name}"
    "${CMAKE_COMMAND}" --build "${_bin}" --config "${CONSUMER_CONFIG}")

  set(_exe "")
  foreach(_cand "${_bin}/mhaprune_consumer" "${_bin}/mhaprune_consumer.exe"
                "${_bin}/${CONSUMER_CONFIG}/mhaprune_consumer" "${_bin}/${CONSUMER_CONFIG}/mhaprune_consumer.exe")
    if(EXISTS "${_cand}")
      set(_exe "${_cand}")
      break()
    endif()
  endforeach()
  if(NOT _exe)
    message(FATAL_ERROR "consumer test: built ${name} but found no mhaprune_consumer executable in ${_bin}")
  endif()

  execute_process(COMMAND "${_exe}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  message(STATUS "consumer test: ${name} printed: ${_out}${_err}")
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${_exe} exited with ${_rc}")
  endif()
  string(REPLACE "." ";" _parts "${MHAPRUNE_EXPECTED_VERSION}")
  list(GET _parts 0 _maj)
  list(GET _parts 1 _min)
  list(GET _parts 2 _pat)
  math(EXPR _expected "${_maj} * 10000 + ${_min} * 100 + ${_pat}")
  if(NOT _out MATCHES "mhaprune version ${_expected}[\r\n]")
    message(FATAL_ERROR "consumer test: expected 'mhaprune version ${_expected}' from ${_exe}, got '${_out}'")
  endif()
  set(CONSUMER_LAST_BINARY_DIR "${_bin}" PARENT_SCOPE)
endfunction()

# consumer_expect_found_dir(<expected dir>): the find_package consumer writes the
# mhaprune_DIR it used into found-mhaprune-dir.txt; check it is the expected one.
function(consumer_expect_found_dir expected)
  file(READ "${CONSUMER_LAST_BINARY_DIR}/found-mhaprune-dir.txt" _found)
  string(STRIP "${_found}" _found)
  file(REAL_PATH "${_found}" _found_real)
  file(REAL_PATH "${expected}" _expected_real)
  if(NOT _found_real STREQUAL _expected_real)
    message(FATAL_ERROR "consumer test: mhaprune was found in '${_found}', expected '${expected}'")
  endif()
  message(STATUS "consumer test: mhaprune found in ${_found} as expected")
endfunction()
