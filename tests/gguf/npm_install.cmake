# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# cmake -DNPM=<npm> -DPREFIX=<dir> -DPACKAGES="name@ver;name@ver" -P npm_install.cmake
# Installs the pinned npm packages (node-llama-cpp and its prebuilt CPU binary: the real llama.cpp
# that judges the GGUF tests) into PREFIX/node_modules, once per build tree: nothing happens when
# every package is already there at its pinned version. --ignore-scripts: node-llama-cpp's
# postinstall would only probe (or, failing that, try to build) a binary; the prebuilt one is used
# as it is and llama_nll.mjs never builds or downloads anything (build: "never").

foreach(_v NPM PREFIX PACKAGES)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "npm_install.cmake: -D${_v}= is required")
  endif()
endforeach()

set(_missing "")
foreach(_pkg IN LISTS PACKAGES)
  if(NOT _pkg MATCHES "^(@?[^@]+)@(.+)$")
    message(FATAL_ERROR "npm_install.cmake: '${_pkg}' is not name@version")
  endif()
  set(_name "${CMAKE_MATCH_1}")
  set(_ver "${CMAKE_MATCH_2}")
  set(_json "${PREFIX}/node_modules/${_name}/package.json")
  set(_have "")
  if(EXISTS "${_json}")
    file(READ "${_json}" _text)
    string(JSON _have ERROR_VARIABLE _err GET "${_text}" version)
  endif()
  if(NOT _have STREQUAL _ver)
    list(APPEND _missing "${_pkg}")
  endif()
endforeach()

if(NOT _missing)
  message(STATUS "npm packages already installed in ${PREFIX}: ${PACKAGES}")
  return()
endif()

file(MAKE_DIRECTORY "${PREFIX}")
# A package.json of its own, so npm installs here and never into a project found further up.
if(NOT EXISTS "${PREFIX}/package.json")
  file(WRITE "${PREFIX}/package.json"
       "{\n  \"name\": \"mhaprune-gguf-judge\",\n  \"private\": true,\n  \"description\": \"llama.cpp for the mhaprune GGUF tests\"\n}\n")
endif()
message(STATUS "npm install ${PACKAGES} (missing or another version: ${_missing}) into ${PREFIX}")
execute_process(
  COMMAND "${NPM}" install --prefix "${PREFIX}" --save-exact --omit=optional --ignore-scripts
          --no-audit --no-fund --loglevel=error ${PACKAGES}
  WORKING_DIRECTORY "${PREFIX}"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "npm install ${PACKAGES} failed (exit ${_rc}); the GGUF tests need them (npm registry)")
endif()
foreach(_pkg IN LISTS PACKAGES)
  string(REGEX REPLACE "^(@?[^@]+)@(.+)$" "\\1" _name "${_pkg}")
  if(NOT EXISTS "${PREFIX}/node_modules/${_name}/package.json")
    message(FATAL_ERROR "npm install finished but ${PREFIX}/node_modules/${_name} is missing")
  endif()
endforeach()
