// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/criteria/reduction.hpp"

/// The inner loops of element-wise scoring: one contiguous run of a weight (and the matching run of
/// its gradient, contiguous or strided) turned into a partial reduction, or into an update of a
/// per-element state. Not for users; `ElementWise` and `SnipMomentum` call them.
///
/// Why they look like this: scoring a LLaMA-7B block reads 4 x 64 MiB (fp32) once, so it must run at
/// memory speed. Each element is widened where it is read (a bf16 is the top half of a float: one
/// shift), goes through the element function (an inline static function, never a virtual call), and
/// lands in one of `kLanes` independent accumulators, a loop shape the compiler vectorises; a single
/// accumulator would be bound by the latency of one add per element, and a separate conversion pass
/// would cost a second trip through L1. Runs are cut into blocks of `kRunBlock` elements whose float
/// lane partials are added in double: float partials over at most 64 elements per lane stay within
/// ~1e-6 relative of an exact sum, and the double total does not drift over millions of elements.
namespace mhaprune::detail {

inline constexpr Index kRunBlock = 1024;

/// The arithmetic type for a weight type `W` and gradient type `G`: double if either is, else float.
template <typename W, typename G>
using compute_t = std::conditional_t<std::is_same_v<W, double> || std::is_same_v<G, double>, double, float>;

/// One element widened to T.
template <typename T, typename S>
T load_as(const S* p) noexcept {
  if constexpr (std::is_same_v<S, Eigen::bfloat16>) {
    return static_cast<T>(Eigen::numext::bit_cast<float>(static_cast<std::uint32_t>(p->value) << 16));
  } else if constexpr (std::is_floating_point_v<S>) {
    return static_cast<T>(*p);
  } else {
    return static_cast<T>(static_cast<float>(*p));
  }
}

/// dst[i] = src[i * stride] widened to T, for i < n.
template <typename T, typename S>
void load_block(const S* src, Index stride, Index n, T* dst) noexcept {
  for (Index i = 0; i < n; ++i) dst[i] = load_as<T>(src + i * stride);
}

template <Reduction R, typename T>
void accumulate(T& acc, T x) noexcept {
  if constexpr (R == Reduction::max) {
    acc = acc < x ? x : acc;
  } else if constexpr (R == Reduction::l2) {
    acc += x * x;
  } else {
    acc += x;
  }
}

/// `Fn::apply` of element k of the run (weight contiguous, gradient `g_stride` apart).
template <typename Fn, typename T, typename W, typename G>
T element(const W* w, const G* g, Index k, Index g_stride) noexcept {
  T wv{0}, gv{0};
  if constexpr (Fn::uses_weight) wv = load_as<T>(w + k);
  if constexpr (Fn::uses_gradient) gv = load_as<T>(g + k * g_stride);
  return static_cast<T>(Fn::apply(wv, gv));
}

/// One step of every lane, written out (not a loop over lanes) so that it is a straight-line block
/// the compiler vectorises at -O2 as well as -O3.
template <typename Fn, Reduction R, typename T, typename W, typename G, int... L>
void lanes_step(T* acc, const W* w, const G* g, std::integer_sequence<int, L...>) noexcept {
  (accumulate<R>(acc[L], element<Fn, T>(w, g, L, 1)), ...);
}

/// The reduction `R` of `Fn::apply(w, g)` over one run of n elements, before the final step
/// (`mean` and `sum` return the sum, `l2` the sum of squares, `max` the maximum).
/// `w` is contiguous; `g` (read only when `Fn::uses_gradient`) steps by `g_stride`.
template <typename Fn, Reduction R, typename W, typename G>
double reduce_run(const W* w, const G* g, Index g_stride, Index n) noexcept {
  using T = compute_t<W, G>;
  constexpr int kLanes = std::is_same_v<T, float> ? 16 : 8;
  const T init = R == Reduction::max ? -std::numeric_limits<T>::infinity() : T(0);
  double total = R == Reduction::max ? -std::numeric_limits<double>::infinity() : 0.0;
  const bool contiguous = !Fn::uses_gradient || g_stride == 1;
  for (Index i = 0; i < n; i += kRunBlock) {
    const Index m = std::min(kRunBlock, n - i);
    const W* wb = w + i;
    const G* gb = Fn::uses_gradient ? g + i * g_stride : g;
    T acc[kLanes];
    for (T& a : acc) a = init;
    Index j = 0;
    if (contiguous) {
      for (; j + kLanes <= m; j += kLanes) {
        lanes_step<Fn, R>(acc, wb + j, Fn::uses_gradient ? gb + j : gb,
                          std::make_integer_sequence<int, kLanes>{});
      }
    }
    for (; j < m; ++j) accumulate<R>(acc[0], element<Fn, T>(wb, gb, j, g_stride));
    for (const T a : acc) {
      if constexpr (R == Reduction::max) {
        total = std::max(total, static_cast<double>(a));
      } else {
        total += static_cast<double>(a);
      }
    }
  }
  return total;
}

/// state[k] = alpha * state[k] + beta * Fn::apply(w, g)[k] over one run of n elements (momentum).
template <typename Fn, typename W, typename G>
void momentum_run(const W* w, const G* g, Index g_stride, Index n, float* state, double alpha,
                  double beta) noexcept {
  using T = compute_t<W, G>;
  const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
  if (!Fn::uses_gradient || g_stride == 1) {
    for (Index k = 0; k < n; ++k)
      state[k] = a * state[k] + b * static_cast<float>(element<Fn, T>(w, g, k, 1));
  } else {
    for (Index k = 0; k < n; ++k)
      state[k] = a * state[k] + b * static_cast<float>(element<Fn, T>(w, g, k, g_stride));
  }
}

/// The element function that reads the weight as it is (to reduce a stored state array).
struct IdentityFn {
  static constexpr const char* name = "identity";
  static constexpr bool uses_weight = true;
  static constexpr bool uses_gradient = false;
  template <typename T>
  static T apply(T w, T) noexcept {
    return w;
  }
};

}  // namespace mhaprune::detail
