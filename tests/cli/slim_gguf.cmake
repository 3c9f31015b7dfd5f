# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# One `mhaprune slim` scenario on a GGUF model:
#   cmake -DCLI=<mhaprune> -DPYTHON=<python3 with numpy> -DSCRIPTS=<tests/gguf> -DMODELS=<dir of tiny models>
#         -DMODEL=<stem> -DWORK=<fresh dir> [-DMASK=L:ids/L:ids] [-DREMOVED=L:ids/L:ids] [-DEXPECT=<exit code>]
#         [-DMATCH=<regex on stderr (failures) or stdout>] [-DSLIM_ARGS=a|b] [-DCHECK_ARGS=a|b] -P slim_gguf.cmake
# Steps:
#   1. MASK given: make_tiny_gguf.py --mask MASK writes MODEL with those heads' O columns exactly zero,
#      inside O's own type (numpy, no mhaprune code); else the model is slimmed as it is.
#   2. mhaprune slim <masked> -o WORK/out/slim.gguf SLIM_ARGS; the exit code must be EXPECT (default 0)
#      and the input unchanged (SHA-256).
#   3. EXPECT 0: check_gguf.py <masked> <out> --heads REMOVED CHECK_ARGS (the independent byte-level
#      checker: kept rows and blocks byte-identical, the removed heads exactly REMOVED, metadata), and
#      stdout matches MATCH. EXPECT 5: stdout says nothing to slim and matches MATCH, stderr is empty,
#      WORK/out is empty. Otherwise: stderr is one "mhaprune: error:" line matching MATCH, WORK/out empty.

foreach(_v CLI PYTHON SCRIPTS MODELS MODEL WORK)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "slim_gguf.cmake: -D${_v}= is required")
  endif()
endforeach()
if(NOT DEFINED EXPECT)
  set(EXPECT 0)
endif()
foreach(_v SLIM_ARGS CHECK_ARGS)
  if(DEFINED ${_v})
    string(REPLACE "|" ";" _${_v} "${${_v}}")
  else()
    set(_${_v} "")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/out")
set(_model "${MODELS}/${MODEL}.gguf")
if(NOT EXISTS "${_model}")
  message(FATAL_ERROR "${_model} does not exist (made by the gguf_make_models fixture)")
endif()
set(_in "${_model}")
if(DEFINED MASK AND NOT MASK STREQUAL "")
  set(_in "${WORK}/masked.gguf")
  execute_process(COMMAND "${PYTHON}" "${SCRIPTS}/make_tiny_gguf.py" --mask "${MASK}" -i "${_model}" -o "${_in}"
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _o ERROR_VARIABLE _e)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "make_tiny_gguf.py --mask ${MASK} failed:\n${_o}\n${_e}")
  endif()
endif()

set(_out "${WORK}/out/slim.gguf")
file(SHA256 "${_in}" _sha_before)
execute_process(COMMAND "${CLI}" slim "${_in}" -o "${_out}" --quiet ${_SLIM_ARGS}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _stdout ERROR_VARIABLE _stderr)
file(SHA256 "${_in}" _sha_after)
set(_what "mhaprune slim ${_in} -o ${_out} ${_SLIM_ARGS}\n  exit ${_rc}\n  stderr: ${_stderr}\n  stdout: ${_stdout}")
if(NOT _sha_before STREQUAL _sha_after)
  message(FATAL_ERROR "the input model changed:\n${_what}")
endif()
if(NOT "${_rc}" STREQUAL "${EXPECT}")
  message(FATAL_ERROR "expected exit ${EXPECT}:\n${_what}")
endif()

if(EXPECT EQUAL 0)
  if(DEFINED MATCH AND NOT _stdout MATCHES "${MATCH}")
    message(FATAL_ERROR "stdout does not match '${MATCH}':\n${_what}")
  endif()
  execute_process(COMMAND "${PYTHON}" "${SCRIPTS}/check_gguf.py" "${_in}" "${_out}" --heads "${REMOVED}" ${_CHECK_ARGS}
                  RESULT_VARIABLE _crc OUTPUT_VARIABLE _cout ERROR_VARIABLE _cerr)
  if(NOT _crc EQUAL 0)
    message(FATAL_ERROR "check_gguf.py rejected the slimmed model:\n${_cout}\n${_cerr}\n${_what}")
  endif()
  message(STATUS "ok: ${_cout}")
  return()
endif()

file(GLOB _left LIST_DIRECTORIES true "${WORK}/out/*" "${WORK}/out/.*")
if(_left)
  message(FATAL_ERROR "nothing should have been written, but found: ${_left}\n${_what}")
endif()
if(EXPECT EQUAL 5)
  if(NOT _stderr STREQUAL "" OR NOT _stdout MATCHES "nothing to slim in .*nothing written\n$")
    message(FATAL_ERROR "exit 5 must say nothing to slim on stdout, nothing on stderr:\n${_what}")
  endif()
  if(DEFINED MATCH AND NOT _stdout MATCHES "${MATCH}")
    message(FATAL_ERROR "stdout does not match '${MATCH}':\n${_what}")
  endif()
  message(STATUS "ok: exit 5: ${_stdout}")
  return()
endif()
string(REGEX REPLACE "\n$" "" _err "${_stderr}")
if(_err MATCHES "\n" OR NOT _err MATCHES "^mhaprune: error: ")
  message(FATAL_ERROR "stderr must be one 'mhaprune: error:' line:\n${_what}")
endif()
if(DEFINED MATCH AND NOT _err MATCHES "${MATCH}")
  message(FATAL_ERROR "stderr does not match '${MATCH}':\n${_what}")
endif()
message(STATUS "ok: exit ${_rc}: ${_err}")
