// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The allocator replacement behind heap_counter.hpp. Linked as an object file into every benchmark
// executable, so its malloc/free/operator new interpose on every shared library of the process
// (libstdc++, libbenchmark, glibc's own internal calls), as glibc documents for "Replacing malloc".

#include "heap_counter.hpp"

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#if !defined(__GLIBC__) || !defined(__linux__)
#error "tests/bench/heap_counter.cpp replaces malloc through glibc's __libc_* entry points: Linux/glibc only"
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#error \
    "heap_counter.cpp replaces malloc and cannot coexist with ASan/TSan: build the benchmarks without -fsanitize"
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#error "heap_counter.cpp replaces malloc and cannot coexist with a sanitizer's allocator"
#endif
#endif

// glibc's real allocator, exported for exactly this purpose.
extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* ptr, std::size_t size) noexcept;
void __libc_free(void* ptr) noexcept;
void* __libc_memalign(std::size_t alignment, std::size_t size) noexcept;
void* __libc_valloc(std::size_t size) noexcept;
void* __libc_pvalloc(std::size_t size) noexcept;
}

namespace {

// Constant-initialised, so they are valid before any constructor runs: the dynamic loader and static
// initialisers allocate long before main.
std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};
std::atomic<std::uint64_t> g_calls{0};

void raise_peak(std::int64_t value) noexcept {
  std::int64_t seen = g_peak.load(std::memory_order_relaxed);
  while (value > seen && !g_peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

std::int64_t usable(void* p) noexcept { return p ? static_cast<std::int64_t>(malloc_usable_size(p)) : 0; }

void add_live(std::int64_t delta) noexcept {
  const std::int64_t now = g_live.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0) raise_peak(now);
}

void* counted(void* p) noexcept {
  if (p) {
    g_calls.fetch_add(1, std::memory_order_relaxed);
    add_live(usable(p));
  }
  return p;
}

void* counted_realloc(void* old, std::size_t size) noexcept {
  const std::int64_t old_bytes = usable(old);
  void* p = __libc_realloc(old, size);
  if (p == nullptr) {
    // realloc(p, 0) frees p and returns null; any other null result leaves `old` untouched.
    if (old != nullptr && size == 0) add_live(-old_bytes);
    return p;
  }
  g_calls.fetch_add(1, std::memory_order_relaxed);
  if (p == old) {
    add_live(usable(p) - old_bytes);
  } else {
    // Moved: both blocks existed at once while the data was copied.
    add_live(usable(p));
    add_live(-old_bytes);
  }
  return p;
}

void* counted_memalign(std::size_t alignment, std::size_t size) noexcept {
  return counted(__libc_memalign(alignment, size));
}

bool valid_alignment(std::size_t alignment) noexcept {
  return alignment != 0 && (alignment & (alignment - 1)) == 0;
}

void* new_or_throw(std::size_t size, std::size_t alignment) {
  if (size == 0) size = 1;
  for (;;) {
    void* p = alignment ? counted_memalign(alignment, size) : counted(__libc_malloc(size));
    if (p) return p;
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

void* new_or_null(std::size_t size, std::size_t alignment) noexcept {
  try {
    return new_or_throw(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

// --- The C allocator -----------------------------------------------------------------------------
extern "C" {

void* malloc(std::size_t size) noexcept { return counted(__libc_malloc(size)); }

void* calloc(std::size_t count, std::size_t size) noexcept { return counted(__libc_calloc(count, size)); }

void* realloc(void* ptr, std::size_t size) noexcept { return counted_realloc(ptr, size); }

void* reallocarray(void* ptr, std::size_t count, std::size_t size) noexcept {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return counted_realloc(ptr, bytes);
}

void free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  add_live(-usable(ptr));
  __libc_free(ptr);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept { return counted_memalign(alignment, size); }

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  if (!valid_alignment(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return counted_memalign(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  if (!valid_alignment(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* p = counted_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

void* valloc(std::size_t size) noexcept { return counted(__libc_valloc(size)); }

void* pvalloc(std::size_t size) noexcept { return counted(__libc_pvalloc(size)); }

}  // extern "C"

// --- Global operator new/delete --------------------------------------------------------------------
void* operator new(std::size_t size) { return new_or_throw(size, 0); }
void* operator new[](std::size_t size) { return new_or_throw(size, 0); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return new_or_null(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return new_or_null(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return new_or_throw(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return new_or_throw(size, static_cast<std::size_t>(al));
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return new_or_null(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return new_or_null(size, static_cast<std::size_t>(al));
}

void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, std::size_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t) noexcept { free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { free(p); }
void operator delete(void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { free(p); }

// --- Public API --------------------------------------------------------------------------------------
namespace mhaprune_bench {

std::int64_t live_heap_bytes() noexcept { return g_live.load(std::memory_order_relaxed); }

std::uint64_t heap_allocation_calls() noexcept { return g_calls.load(std::memory_order_relaxed); }

bool heap_counter_active() noexcept {
  // strdup allocates inside glibc, so this also proves that glibc's internal calls reach the
  // replacement; the volatile pointer keeps the compiler from folding the strdup/free pair away.
  char* (*volatile dup)(const char*) = &strdup;
  const std::uint64_t calls = heap_allocation_calls();
  const std::int64_t live = live_heap_bytes();
  char* s = dup("mhaprune heap counter self-test: at least sixty-four bytes long, to be sure.");
  const bool counted_it = s != nullptr && heap_allocation_calls() > calls && live_heap_bytes() >= live + 64;
  std::free(s);
  return counted_it;
}

HeapScope::HeapScope() noexcept
    : start_live_(live_heap_bytes()),
      saved_peak_(g_peak.exchange(start_live_, std::memory_order_relaxed)),
      start_calls_(heap_allocation_calls()) {}

HeapScope::~HeapScope() { raise_peak(saved_peak_); }

std::int64_t HeapScope::peak_extra_bytes() const noexcept {
  const std::int64_t extra = g_peak.load(std::memory_order_relaxed) - start_live_;
  return extra > 0 ? extra : 0;
}

std::int64_t HeapScope::extra_bytes() const noexcept { return live_heap_bytes() - start_live_; }

std::uint64_t HeapScope::allocation_calls() const noexcept { return heap_allocation_calls() - start_calls_; }

}  // namespace mhaprune_bench
