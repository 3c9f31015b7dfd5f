# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# mhaprune_numpy_python(<var> <who needs it>): sets <var> to a python3 that can `import numpy`, for
# the tests whose checks are numpy scripts (tests/pycheck, tests/inc_parity, the --grads CLI tests in
# tests/cli/grads.cmake). MHAPRUNE_PYCHECK_PYTHON, when set, is used as it is; otherwise Debian's
# /usr/bin/python3 is tried first (an earlier python3 on PATH, such as a pyenv shim, often has no
# numpy), then find_package(Python3)'s interpreter. None with numpy: configuring fails with
# "mhaprune: <who needs it> a python3 with numpy ...".

set(MHAPRUNE_PYCHECK_PYTHON "" CACHE FILEPATH "python3 with numpy for tests/pycheck (empty: search)")

function(mhaprune_numpy_python var who)
  set(_py "${MHAPRUNE_PYCHECK_PYTHON}")
  if(NOT _py)
    set(_candidates "")
    if(EXISTS /usr/bin/python3)
      list(APPEND _candidates /usr/bin/python3)
    endif()
    find_package(Python3 COMPONENTS Interpreter QUIET)
    if(Python3_Interpreter_FOUND)
      list(APPEND _candidates "${Python3_EXECUTABLE}")
    endif()
    foreach(_candidate IN LISTS _candidates)
      execute_process(COMMAND "${_candidate}" -c "import numpy" RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
      if(_rc EQUAL 0)
        set(_py "${_candidate}")
        break()
      endif()
    endforeach()
  endif()
  if(NOT _py)
    message(FATAL_ERROR "mhaprune: ${who} a python3 with numpy (Debian: python3-numpy; or set "
                        "MHAPRUNE_PYCHECK_PYTHON)")
  endif()
  set(${var} "${_py}" PARENT_SCOPE)
endfunction()
