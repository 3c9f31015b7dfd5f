# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
# mhaprune_set_warnings(<target>)
#
# Applies the project's strict warning flags (and, when MHAPRUNE_SANITIZE is ON,
# the ASan/UBSan flags) to one of the project's OWN targets: tests, examples,
# benchmarks, the header self-containment check. Never call it on the
# `mhaprune` INTERFACE target: consumers must not inherit our warning policy.
#
#   MHAPRUNE_WERROR   (default ON)  turn warnings into errors
#   MHAPRUNE_SANITIZE (default OFF) -fsanitize=address,undefined on compile+link

include_guard(GLOBAL)

function(mhaprune_set_warnings target)
  if(NOT TARGET ${target})
    message(FATAL_ERROR "mhaprune_set_warnings: '${target}' is not a target")
  endif()
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "INTERFACE_LIBRARY")
    message(FATAL_ERROR "mhaprune_set_warnings: refusing to put warning flags on INTERFACE target '${target}'")
  endif()

  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(MHAPRUNE_WERROR)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
    if(MHAPRUNE_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()

  if(MHAPRUNE_SANITIZE)
    if(MSVC)
      message(FATAL_ERROR "MHAPRUNE_SANITIZE is only supported with GCC/Clang")
    endif()
    set(_san -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_compile_options(${target} PRIVATE ${_san})
    # OBJECT libraries are not linked; their objects end up in sanitized targets anyway.
    if(NOT _type STREQUAL "OBJECT_LIBRARY")
      target_link_options(${target} PRIVATE ${_san})
    endif()
  endif()
endfunction()
