# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# One CLI case: cmake -DCLI=... -DEXPECT=<exit code> -DMATCH=<regex> -DOUT_PARENT=<dir> -DARGS=a|b|c -P run_case.cmake
# Runs CLI with ARGS (@OUT@ -> OUT_PARENT/out) in a fresh OUT_PARENT and checks: the exit code; for a
# failure, stderr is exactly one line "mhaprune: error: ..." matching MATCH and OUT_PARENT is still
# empty (no output directory, no temporary left behind); for success, the output directory exists.

include("${CMAKE_CURRENT_LIST_DIR}/cli_helpers.cmake")
mhaprune_require(run_case.cmake CLI EXPECT OUT_PARENT)

file(REMOVE_RECURSE "${OUT_PARENT}")
file(MAKE_DIRECTORY "${OUT_PARENT}")

set(_out "${OUT_PARENT}/out")
string(REPLACE "|" ";" _args "${ARGS}")
list(TRANSFORM _args REPLACE "@OUT@" "${_out}")
execute_process(COMMAND "${CLI}" ${_args}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _stdout ERROR_VARIABLE _stderr)
mhaprune_describe(_what "mhaprune ${_args}" "${_rc}" "${_stdout}" "${_stderr}")
mhaprune_expect_exit("${_rc}" "${EXPECT}" "${_what}")

if(EXPECT EQUAL 0)
  if(NOT IS_DIRECTORY "${_out}")
    message(FATAL_ERROR "exit 0 but no output directory ${_out}:\n${_what}")
  endif()
  return()
endif()

mhaprune_expect_error_line("${_stderr}" "${MATCH}" "${_what}")
mhaprune_expect_empty_dir("${OUT_PARENT}" "${_what}")
string(REGEX REPLACE "\n$" "" _err "${_stderr}")
message(STATUS "ok: exit ${_rc}: ${_err}")
