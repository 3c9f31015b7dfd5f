# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# One `mhaprune slim` scenario on a GGUF model:
#   cmake -DCLI=<mhaprune> -DPYTHON=<python3 with numpy> -DSCRIPTS=<tests/gguf> -DMODELS=<dir of tiny models>
#         -DMODEL=<stem> -DWORK=<fresh dir> [-DMASK=L:ids/L:ids] [-DREMOVED=L:ids/L:ids] [-DEXPECT=<exit code>]
#         [-DMATCH=<regex on stderr (failures) or stdout>] [-DSLIM_ARGS=a|b] [-DCHECK_ARGS=a|b]
#         [-DNODE=<node> -DNPM_PREFIX=<dir> [-DJUDGE_ARGS=a|b]] -P slim_gguf.cmake
# Steps:
#   1. MASK given: make_tiny_gguf.py --mask MASK writes MODEL with those heads' O columns exactly zero,
#      inside O's own type (numpy, no mhaprune code); else the model is slimmed as it is.
#   2. mhaprune slim <masked> -o WORK/out/slim.gguf SLIM_ARGS; the exit code must be EXPECT (default 0)
#      and the input unchanged (SHA-256).
#   3. EXPECT 0: check_gguf.py <masked> <out> --heads REMOVED CHECK_ARGS (the independent byte-level
#      checker: kept rows and blocks byte-identical, the removed heads exactly REMOVED, metadata), and
#      stdout matches MATCH. With NODE: judge.py (llama.cpp, tests/gguf) computes the NLL of the slimmed
#      model and of the masked one it was made from (--masked), which must agree within JUDGE_ARGS'
#      tolerances, and of MODEL itself (the masking must matter). EXPECT 5: stdout says nothing to slim and matches MATCH, stderr is empty,
#      WORK/out is empty. Otherwise: stderr is one "mhaprune: error:" line matching MATCH, WORK/out empty.

include("${CMAKE_CURRENT_LIST_DIR}/cli_helpers.cmake")
mhaprune_require(slim_gguf.cmake CLI PYTHON SCRIPTS MODELS MODEL WORK)
if(NOT DEFINED EXPECT)
  set(EXPECT 0)
endif()
mhaprune_split_args(SLIM_ARGS CHECK_ARGS JUDGE_ARGS)

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/out")
mhaprune_gguf_model(_model)
set(_in "${_model}")
if(DEFINED MASK AND NOT MASK STREQUAL "")
  set(_in "${WORK}/masked.gguf")
  check_command("make_tiny_gguf.py --mask ${MASK}"
                "${PYTHON}" "${SCRIPTS}/make_tiny_gguf.py" --mask "${MASK}" -i "${_model}" -o "${_in}")
endif()

set(_out "${WORK}/out/slim.gguf")
file(SHA256 "${_in}" _sha_before)
execute_process(COMMAND "${CLI}" slim "${_in}" -o "${_out}" --quiet ${_SLIM_ARGS}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _stdout ERROR_VARIABLE _stderr)
mhaprune_describe(_what "mhaprune slim ${_in} -o ${_out} ${_SLIM_ARGS}" "${_rc}" "${_stdout}" "${_stderr}")
mhaprune_expect_same_sha("${_in}" "${_sha_before}" "${_what}")
mhaprune_expect_exit("${_rc}" "${EXPECT}" "${_what}")

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
  if(DEFINED NODE)
    execute_process(COMMAND "${PYTHON}" "${SCRIPTS}/judge.py" --original "${_model}" --masked "${_in}"
                            --pruned "${_out}" --heads "${REMOVED}" --work "${WORK}/judge" --node "${NODE}"
                            --npm-prefix "${NPM_PREFIX}" ${_JUDGE_ARGS}
                    RESULT_VARIABLE _jrc OUTPUT_VARIABLE _jout ERROR_VARIABLE _jerr)
    message(STATUS "judge.py: exit ${_jrc}\n${_jout}${_jerr}")
    if(NOT _jrc EQUAL 0)
      message(FATAL_ERROR "llama.cpp does not compute the masked model's NLL with the slimmed one:\n${_what}")
    endif()
  endif()
  return()
endif()

mhaprune_expect_empty_dir("${WORK}/out" "${_what}")
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
mhaprune_expect_error_line("${_stderr}" "${MATCH}" "${_what}")
string(REGEX REPLACE "\n$" "" _err "${_stderr}")
message(STATUS "ok: exit ${_rc}: ${_err}")
