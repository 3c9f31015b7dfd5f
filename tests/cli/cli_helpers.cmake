# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# The helpers the `cmake -P` test scripts share: include()d by tests/cli/{end_to_end,inc_config,slim,
# run_case,slim_gguf}.cmake and tests/gguf/run_scenario.cmake. They check the tool's contract as a
# user sees it: the exit code, a failure's stderr being one "mhaprune: error:" line, nothing written
# by a run that writes nothing, inputs unchanged. (The tool runs in the callers' own execute_process,
# or in run() below, never through a further function: each function call splits "\;" once more, and
# --heads specs carry one.)
#
#   run(<expected exit code> <args...>)      ${CLI} <args>: the exit code; a failure's stderr is one
#                                            error line; exit codes in RUN_SILENT_EXITS (set by the
#                                            caller, default none) must leave stderr empty. Sets OUT, ERR.
#   mhaprune_require(<script> <vars...>)     each -D<var>= given, or "<script>: -D<var>= is required"
#   mhaprune_split_args(<vars...>)           _<var>: the list <var> gives with "|" between items
#                                            (";" separates -D values), empty when <var> is not given
#   mhaprune_gguf_model(<var>)              <var> = ${MODELS}/${MODEL}.gguf, which the gguf_make_models
#                                            fixture of tests/gguf must have made
#   mhaprune_describe(<var> <command> <rc> <stdout> <stderr>)   the text failure messages end with
#   mhaprune_expect_exit(<rc> <expected> <description>)
#   mhaprune_expect_error_line(<stderr> <regex or ""> <description>)   one line, "mhaprune: error: ", regex
#   mhaprune_expect_empty_dir(<dir> <description>)                     no file, no temporary
#   mhaprune_expect_same_sha(<file> <SHA-256 before> <description>)
#   expect_match(<text> <regex> <what>), expect_equal(<got> <want> <what>), expect_absent(<path> <what>)
#   check_command(<what> <command...>)       exit 0, or fail with its output
#   check_pruned(<dir> <heads removed>)      ${CHECKER} ${MODEL} <dir> --expect-removed <n>
#   hash_tree(<var> <dir>)                   every path under <dir> with its SHA-256

if(COMMAND mhaprune_expect_exit)
  return()
endif()

function(mhaprune_require script)
  foreach(_v IN LISTS ARGN)
    if(NOT DEFINED ${_v})
      message(FATAL_ERROR "${script}: -D${_v}= is required")
    endif()
  endforeach()
endfunction()

function(mhaprune_split_args)
  foreach(_v IN LISTS ARGN)
    set(_list "")
    if(DEFINED ${_v})
      string(REPLACE "|" ";" _list "${${_v}}")
    endif()
    set(_${_v} "${_list}" PARENT_SCOPE)
  endforeach()
endfunction()

function(mhaprune_gguf_model var)
  set(_model "${MODELS}/${MODEL}.gguf")
  if(NOT EXISTS "${_model}")
    message(FATAL_ERROR "${_model} does not exist (made by the gguf_make_models fixture)")
  endif()
  set(${var} "${_model}" PARENT_SCOPE)
endfunction()

function(mhaprune_describe var command rc stdout stderr)
  set(${var} "${command}\n  exit ${rc}\n  stderr: ${stderr}\n  stdout: ${stdout}" PARENT_SCOPE)
endfunction()

function(mhaprune_expect_exit rc expect what)
  if(NOT "${rc}" STREQUAL "${expect}")
    message(FATAL_ERROR "expected exit ${expect}:\n${what}")
  endif()
endfunction()

function(mhaprune_expect_error_line stderr match what)
  string(REGEX REPLACE "\n$" "" _err "${stderr}")
  if(_err MATCHES "\n")
    message(FATAL_ERROR "stderr must be one line:\n${what}")
  endif()
  if(NOT _err MATCHES "^mhaprune: error: ")
    message(FATAL_ERROR "stderr must start with 'mhaprune: error: ':\n${what}")
  endif()
  if(NOT match STREQUAL "" AND NOT _err MATCHES "${match}")
    message(FATAL_ERROR "stderr does not match '${match}':\n${what}")
  endif()
endfunction()

function(mhaprune_expect_empty_dir dir what)
  file(GLOB _left LIST_DIRECTORIES true "${dir}/*" "${dir}/.*")
  if(_left)
    message(FATAL_ERROR "nothing should have been written, but found: ${_left}\n${what}")
  endif()
endfunction()

function(mhaprune_expect_same_sha file before what)
  file(SHA256 "${file}" _after)
  if(NOT before STREQUAL _after)
    message(FATAL_ERROR "the input model changed:\n${what}")
  endif()
endfunction()

function(run expect)
  execute_process(COMMAND "${CLI}" ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  mhaprune_describe(_what "mhaprune ${ARGN}" "${_rc}" "${_out}" "${_err}")
  mhaprune_expect_exit("${_rc}" "${expect}" "${_what}")
  list(FIND RUN_SILENT_EXITS "${expect}" _silent)
  if(_silent GREATER -1)
    if(NOT _err STREQUAL "")
      message(FATAL_ERROR "stderr must be empty:\n${_what}")
    endif()
  elseif(NOT expect EQUAL 0)
    mhaprune_expect_error_line("${_err}" "" "${_what}")
  endif()
  set(OUT "${_out}" PARENT_SCOPE)
  set(ERR "${_err}" PARENT_SCOPE)
  message(STATUS "ok: mhaprune ${ARGN} -> ${_rc}")
endfunction()

function(expect_match text regex what)
  if(NOT "${text}" MATCHES "${regex}")
    message(FATAL_ERROR "${what}: does not match '${regex}':\n${text}")
  endif()
endfunction()

function(expect_equal got want what)
  if(NOT "${got}" STREQUAL "${want}")
    message(FATAL_ERROR "${what}: got '${got}', expected '${want}'")
  endif()
endfunction()

function(expect_absent path what)
  if(EXISTS "${path}")
    message(FATAL_ERROR "${what}: ${path} exists, but nothing should have been written")
  endif()
endfunction()

function(check_command what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (exit ${_rc}):\n${_out}\n${_err}")
  endif()
  message(STATUS "ok: ${what}: ${_out}")
endfunction()

function(check_pruned dir removed)
  execute_process(COMMAND "${CHECKER}" "${MODEL}" "${dir}" --expect-removed ${removed}
                  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "check_pruned ${dir}: ${_err}\n${_out}")
  endif()
  message(STATUS "ok: check_pruned ${dir}: ${_out}")
endfunction()

function(hash_tree var dir)
  file(GLOB_RECURSE _files LIST_DIRECTORIES true RELATIVE "${dir}" "${dir}/*")
  list(SORT _files)
  set(_list "")
  foreach(_f IN LISTS _files)
    if(IS_DIRECTORY "${dir}/${_f}")
      list(APPEND _list "${_f}/")
    else()
      file(SHA256 "${dir}/${_f}" _h)
      list(APPEND _list "${_f}=${_h}")
    endif()
  endforeach()
  set(${var} "${_list}" PARENT_SCOPE)
endfunction()
