// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// Heap accounting for the benchmark binaries.
///
/// heap_counter.cpp replaces the C allocator (malloc, calloc, realloc, free, aligned_alloc,
/// posix_memalign, memalign, valloc, pvalloc, reallocarray) and every global operator new/delete in
/// the executable it is linked into, forwarding to glibc's `__libc_*` entry points and counting the
/// bytes each live block really occupies (`malloc_usable_size`). Both sides are needed: Eigen
/// allocates matrices with `std::malloc`/`std::realloc`, not operator new, and a realloc that shrinks
/// a matrix must show up as bytes given back, not as a new allocation.
///
/// A realloc that moves a block is counted as "new block live, then old block freed", so a shrink that
/// silently copies into a fresh buffer shows up as a peak of the new size; an in-place shrink (or an
/// mremap of a large mapped chunk) only lowers the count.
///
/// Linux/glibc only, and not with AddressSanitizer/ThreadSanitizer/MemorySanitizer, which replace the
/// allocator themselves (heap_counter.cpp refuses to compile there; tests/bench/CMakeLists.txt does not
/// build the benchmarks when MHAPRUNE_SANITIZE is ON).

#include <cstdint>

namespace mhaprune_bench {

/// Bytes held by live heap blocks right now, counted since program start. Blocks freed that were
/// allocated before the counter existed (by the dynamic loader) can make it drift low; only
/// differences are meaningful.
std::int64_t live_heap_bytes() noexcept;

/// Number of allocation calls counted so far (malloc, realloc, operator new, ...).
std::uint64_t heap_allocation_calls() noexcept;

/// True when this binary's allocations go through the counter: it makes one allocation through a
/// path the compiler cannot elide and checks that it was counted. Call it once in `main` and refuse
/// to report heap figures when it is false.
bool heap_counter_active() noexcept;

/// Measures the peak heap growth over a region: construct it right before the region, read
/// `peak_extra_bytes()` right after.
///
/// Thread-safe counting (atomics), so allocations on other threads during the region are counted too.
/// Scopes nest when they are properly nested on one thread: an inner scope restarts the peak at its
/// own start and, when it ends, folds its peak back into the enclosing scope's.
class HeapScope {
 public:
  HeapScope() noexcept;
  ~HeapScope();
  HeapScope(const HeapScope&) = delete;
  HeapScope& operator=(const HeapScope&) = delete;

  /// Highest `live_heap_bytes()` reached since construction, minus its value at construction; 0 when
  /// the region only freed memory.
  std::int64_t peak_extra_bytes() const noexcept;
  /// `live_heap_bytes()` now minus at construction (negative when the region gave memory back).
  std::int64_t extra_bytes() const noexcept;
  /// Allocation calls made since construction.
  std::uint64_t allocation_calls() const noexcept;

 private:
  std::int64_t start_live_;
  std::int64_t saved_peak_;
  std::uint64_t start_calls_;
};

}  // namespace mhaprune_bench
