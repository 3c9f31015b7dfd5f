# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# Included from tests/cli/CMakeLists.txt. `mhaprune prune` stopped in the middle of writing its output
# (interrupted_write.py), for a safetensors checkpoint directory and a GGUF file, each case a test:
#   cli_interrupted_kill_<format>       SIGKILL at random delays (seed printed) during the write
#   cli_interrupted_fsize_<format>      a file-size limit (ulimit -f): SIGXFSZ, or EFBIG when ignored
#   cli_interrupted_full_disk_<format>  a small tmpfs in a private mount namespace (unshare), then a
#                                       dead writer's temporary filling it
# Each checks: nothing under the output's name, the input byte-identical, and the same command run
# again succeeds, writes the uninterrupted run's bytes and leaves no temporary of the stopped run.
# The inputs (~230 MB, numpy) are made once by a fixture and removed by another.

execute_process(COMMAND "${MHAPRUNE_GGUF_PYTHON}" -c "import numpy" RESULT_VARIABLE _rc ERROR_QUIET)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "mhaprune CLI tests: ${MHAPRUNE_GGUF_PYTHON} cannot 'import numpy' (Debian: python3-numpy), "
                      "needed by tests/cli/interrupted_write.py")
endif()
find_program(MHAPRUNE_UNSHARE unshare)
if(NOT MHAPRUNE_UNSHARE)
  message(FATAL_ERROR "mhaprune CLI tests: the full-disk tests need unshare (Debian: util-linux)")
endif()

set(_interrupted "${CMAKE_CURRENT_SOURCE_DIR}/interrupted_write.py")
set(_interrupted_work "${_work}/interrupted")
add_test(NAME cli_interrupted_make_inputs
         COMMAND "${MHAPRUNE_GGUF_PYTHON}" "${_interrupted}" make-inputs "${_interrupted_work}")
add_test(NAME cli_interrupted_remove_inputs COMMAND "${CMAKE_COMMAND}" -E rm -rf "${_interrupted_work}")
set_tests_properties(cli_interrupted_make_inputs PROPERTIES FIXTURES_SETUP mhaprune_interrupted_inputs)
set_tests_properties(cli_interrupted_remove_inputs PROPERTIES FIXTURES_CLEANUP mhaprune_interrupted_inputs)
set_tests_properties(cli_interrupted_make_inputs cli_interrupted_remove_inputs
                     PROPERTIES LABELS cli TIMEOUT 120 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
foreach(_format safetensors gguf)
  foreach(_case kill fsize full-disk)
    string(REPLACE "-" "_" _name "cli_interrupted_${_case}_${_format}")
    add_test(NAME ${_name} COMMAND "${MHAPRUNE_GGUF_PYTHON}" "${_interrupted}" ${_case} --cli "${_cli}"
                                   --work "${_interrupted_work}" --format ${_format})
    set_tests_properties(${_name} PROPERTIES LABELS cli TIMEOUT 180 FIXTURES_REQUIRED mhaprune_interrupted_inputs
                                             ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
  endforeach()
endforeach()
