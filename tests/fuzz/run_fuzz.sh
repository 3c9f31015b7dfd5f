#!/usr/bin/env bash
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#
#   tests/fuzz/run_fuzz.sh SECONDS [TARGET...]
#
# Builds the fuzzers with clang++ (libFuzzer + ASan + UBSan) in build-fuzz/ and runs them for SECONDS
# seconds in total, split evenly between them (CI: 60 s, so 30 s each), each starting from its
# committed seeds (read only; new inputs go to build-fuzz/corpus_<target>/):
#   safetensors_header  seeds tests/fuzz/corpus/
#   gguf_header         seeds tests/fuzz/gguf_corpus/
# TARGET limits the run to the named fuzzers (e.g. `run_fuzz.sh 120 gguf_header`). Exits non-zero if
# a fuzzer finds a crash, a leak, undefined behaviour or a timeout; the input that did it is left in
# build-fuzz/ as crash-*/leak-*/timeout-*.
# Environment: CXX (default clang++), FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds="${1:?usage: tests/fuzz/run_fuzz.sh SECONDS [TARGET...]}"
shift
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "run_fuzz.sh: SECONDS must be a whole number" >&2; exit 2; }
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(safetensors_header gguf_header)
cxx="${CXX:-clang++}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
command -v "$cxx" >/dev/null || { echo "run_fuzz.sh: $cxx not found (libFuzzer needs Clang)" >&2; exit 2; }

corpus_of() {
  case "$1" in
    safetensors_header) echo tests/fuzz/corpus ;;
    gguf_header) echo tests/fuzz/gguf_corpus ;;
    *) echo "run_fuzz.sh: unknown target $1 (safetensors_header, gguf_header)" >&2; exit 2 ;;
  esac
}
for t in "${targets[@]}"; do corpus_of "$t" >/dev/null; done

eigen_flags="$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)"
mkdir -p "$build"
for t in "${targets[@]}"; do
  echo "=== [fuzz] building $build/fuzz_$t"
  # shellcheck disable=SC2086
  "$cxx" -std=c++17 -O1 -g -Wall -Wextra -Wpedantic -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -Iinclude $eigen_flags "tests/fuzz/fuzz_$t.cpp" -o "$build/fuzz_$t"
done

each=$(( seconds / ${#targets[@]} ))
(( each > 0 )) || each=1
for t in "${targets[@]}"; do
  corpus="$PWD/$(corpus_of "$t")"  # absolute: the fuzzer runs inside $build
  echo "=== [fuzz] running fuzz_$t for ${each}s"
  mkdir -p "$build/corpus_$t"
  (
    cd "$build"
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
      "./fuzz_$t" -max_total_time="$each" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus_$t" "$corpus"
  )
  echo "=== [fuzz] fuzz_$t: no crash in ${each}s"
done
