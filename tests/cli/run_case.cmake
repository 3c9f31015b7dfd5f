# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# One CLI case: cmake -DCLI=... -DEXPECT=<exit code> -DMATCH=<regex> -DOUT_PARENT=<dir> -DARGS=a|b|c -P run_case.cmake
# Runs CLI with ARGS (@OUT@ -> OUT_PARENT/out) in a fresh OUT_PARENT and checks: the exit code; for a
# failure, stderr is exactly one line "mhaprune: error: ..." matching MATCH and OUT_PARENT is still
# empty (no output directory, no temporary left behind); for success, the output directory exists.

foreach(_v CLI EXPECT OUT_PARENT)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "run_case.cmake: -D${_v}= is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${OUT_PARENT}")
file(MAKE_DIRECTORY "${OUT_PARENT}")

set(_out "${OUT_PARENT}/out")
string(REPLACE "|" ";" _args "${ARGS}")
list(TRANSFORM _args REPLACE "@OUT@" "${_out}")
execute_process(COMMAND "${CLI}" ${_args}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _stdout ERROR_VARIABLE _stderr)
string(REGEX REPLACE "\n$" "" _err "${_stderr}")
set(_what "mhaprune ${_args}\n  exit ${_rc}\n  stderr: ${_stderr}\n  stdout: ${_stdout}")

if(NOT "${_rc}" STREQUAL "${EXPECT}")
  message(FATAL_ERROR "expected exit ${EXPECT}:\n${_what}")
endif()

if(EXPECT EQUAL 0)
  if(NOT IS_DIRECTORY "${_out}")
    message(FATAL_ERROR "exit 0 but no output directory ${_out}:\n${_what}")
  endif()
  return()
endif()

if(_err MATCHES "\n")
  message(FATAL_ERROR "stderr must be one line:\n${_what}")
endif()
if(NOT _err MATCHES "^mhaprune: error: ")
  message(FATAL_ERROR "stderr must start with 'mhaprune: error: ':\n${_what}")
endif()
if(NOT _err MATCHES "${MATCH}")
  message(FATAL_ERROR "stderr does not match '${MATCH}':\n${_what}")
endif()
file(GLOB _left LIST_DIRECTORIES true "${OUT_PARENT}/*" "${OUT_PARENT}/.*")
if(_left)
  message(FATAL_ERROR "a failed run left files behind: ${_left}\n${_what}")
endif()
message(STATUS "ok: exit ${_rc}: ${_err}")
