#!/usr/bin/env bash
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
#   tests/fuzz/run_fuzz.sh SECONDS
#
# Builds the safetensors header fuzzer with clang++ (libFuzzer + ASan + UBSan) in build-fuzz/ and
# runs it for SECONDS seconds, starting from the committed seeds in tests/fuzz/corpus/ (read only;
# new inputs go to build-fuzz/corpus/). Exits non-zero if the fuzzer finds a crash, a leak, undefined
# behaviour or a timeout; the input that did it is left in build-fuzz/ as crash-*/leak-*/timeout-*.
# Environment: CXX (default clang++), FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds="${1:?usage: tests/fuzz/run_fuzz.sh SECONDS}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "run_fuzz.sh: SECONDS must be a whole number" >&2; exit 2; }
cxx="${CXX:-clang++}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
command -v "$cxx" >/dev/null || { echo "run_fuzz.sh: $cxx not found (libFuzzer needs Clang)" >&2; exit 2; }

eigen_flags="$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)"
mkdir -p "$build/corpus"
echo "=== [fuzz] building $build/fuzz_safetensors_header"
# shellcheck disable=SC2086
"$cxx" -std=c++17 -O1 -g -Wall -Wextra -Wpedantic -Werror \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -Iinclude $eigen_flags tests/fuzz/fuzz_safetensors_header.cpp -o "$build/fuzz_safetensors_header"

echo "=== [fuzz] running for ${seconds}s"
cd "$build"
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  ./fuzz_safetensors_header -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 corpus ../tests/fuzz/corpus
echo "=== [fuzz] no crash in ${seconds}s"
