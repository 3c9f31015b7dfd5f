// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace mhaprune::io::detail {

/// Asks the kernel to back the whole 2 MiB pages inside [data, data + bytes) of a fresh heap
/// buffer with transparent huge pages (Linux `MADV_HUGEPAGE`), before anything is written to it.
/// A block's weights read into floats are hundreds of MiB of new anonymous memory per block; with
/// 4 KiB pages each page is one fault (half a million per GiB, most of the CPU time of reading a
/// block), with huge pages one per 2 MiB. Only advice: below 4 MiB, without THP, or if `madvise`
/// fails, nothing changes; the bytes are the same either way.
inline void advise_huge_pages(void* data, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  if (data == nullptr || bytes < 2 * huge) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + huge - 1) / huge * huge, last = (begin + bytes) / huge * huge;
  if (first < last) (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace mhaprune::io::detail
