# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# One GGUF scenario as one CTest command:
#   cmake -DCLI=<mhaprune, or "numpy" for numpy_prune.py> -DPYTHON=<python3 with numpy> -DNODE=<node> -DNPM_PREFIX=<dir>
#         -DSCRIPTS=<tests/gguf> -DMODELS=<dir of tiny models> -DMODEL=<stem> -DWORK=<fresh dir>
#         [-DHEADS=L:ids/L:ids] [-DPRUNE_ARGS=a|b] [-DEXPECT=<exit code>] [-DMATCH=<regex>]
#         [-DCHECK_ARGS=a|b] [-DJUDGE_ARGS=a|b] -P run_scenario.cmake
# HEADS uses '/' between layers (';' is CMake's list separator); it is given to `--heads` of the CLI,
# check_gguf.py and judge.py with ';'. Steps:
#   1. mhaprune prune MODELS/MODEL.gguf -o WORK/out.gguf [--heads HEADS] PRUNE_ARGS; the exit code
#      must be EXPECT (default 0). The input file must be unchanged (SHA-256).
#   2. EXPECT != 0: stderr is one line "mhaprune: error: ..." matching MATCH, and WORK holds no file
#      (no output, no temporary). Done.
#   3. EXPECT == 0: check_gguf.py MODEL out [--heads HEADS] CHECK_ARGS (the independent byte-level
#      checker), then judge.py (llama.cpp: pruned vs the original with the same heads masked).

# The CLI's failure contract (exit code, one error line, nothing written) is checked by the helpers
# of tests/cli, which own it.
include("${CMAKE_CURRENT_LIST_DIR}/../cli/cli_helpers.cmake")
mhaprune_require(run_scenario.cmake CLI PYTHON NODE NPM_PREFIX SCRIPTS MODELS MODEL WORK)
if(NOT DEFINED EXPECT)
  set(EXPECT 0)
endif()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
mhaprune_gguf_model(_in)
set(_out "${WORK}/out.gguf")

set(_heads_args "")
if(DEFINED HEADS AND NOT HEADS STREQUAL "")
  string(REPLACE "/" "\\;" _spec "${HEADS}")
  set(_heads_args --heads "${_spec}")
endif()
mhaprune_split_args(PRUNE_ARGS CHECK_ARGS JUDGE_ARGS)

file(SHA256 "${_in}" _sha_before)
if(CLI STREQUAL "numpy")  # the reference pruning of numpy_prune.py, to prove the checker and the judge
  set(_cmd "${PYTHON}" "${SCRIPTS}/numpy_prune.py")
else()
  set(_cmd "${CLI}" prune)
endif()
execute_process(COMMAND ${_cmd} "${_in}" -o "${_out}" ${_heads_args} ${_PRUNE_ARGS}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _stdout ERROR_VARIABLE _stderr)
mhaprune_describe(_what "${_cmd} ${_in} -o ${_out} ${_heads_args} ${_PRUNE_ARGS}" "${_rc}" "${_stdout}" "${_stderr}")
mhaprune_expect_same_sha("${_in}" "${_sha_before}" "${_what}")
mhaprune_expect_exit("${_rc}" "${EXPECT}" "${_what}")

if(NOT EXPECT EQUAL 0)
  mhaprune_expect_error_line("${_stderr}" "${MATCH}" "${_what}")
  mhaprune_expect_empty_dir("${WORK}" "${_what}")
  string(REGEX REPLACE "\n$" "" _err "${_stderr}")
  message(STATUS "ok: exit ${_rc}: ${_err}")
  return()
endif()

if(NOT EXISTS "${_out}")
  message(FATAL_ERROR "exit 0 but no ${_out}:\n${_what}")
endif()

execute_process(COMMAND "${PYTHON}" "${SCRIPTS}/check_gguf.py" "${_in}" "${_out}" ${_heads_args} ${_CHECK_ARGS}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _o ERROR_VARIABLE _e)
message(STATUS "check_gguf.py: exit ${_rc}\n${_o}${_e}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "check_gguf.py rejected the output of:\n${_what}")
endif()

if(_heads_args)
  set(_judge_heads --heads "${_spec}")  # (a plain copy of _heads_args would split the escaped ';')
else()
  set(_judge_heads --heads-from-output)
endif()
execute_process(COMMAND "${PYTHON}" "${SCRIPTS}/judge.py" --original "${_in}" --pruned "${_out}"
                        --work "${WORK}/judge" ${_judge_heads} --node "${NODE}" --npm-prefix "${NPM_PREFIX}"
                        ${_JUDGE_ARGS}
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _o ERROR_VARIABLE _e)
message(STATUS "judge.py: exit ${_rc}\n${_o}${_e}")
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "llama.cpp does not compute the masked original's NLL with the output of:\n${_what}")
endif()
