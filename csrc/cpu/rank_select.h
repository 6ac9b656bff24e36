// Coordinate-wise order statistics: for every coordinate j, the average of the values of
// ranks lo..hi (0-based, ascending) among X[0][j] .. X[n-1][j]. The median is lo = (n-1)/2,
// hi = n/2; the trimmed mean is lo = f, hi = n-f-1.
//
// Non-finite entries (NaN, +-Inf) are mapped to +inf on load, so they rank above every finite
// value: with at most f of them and n > 2f the kept ranks are all finite.
//
// Four paths:
// - median, n <= 32 (x86): the pruned median network entirely in SIMD registers, one
//   vector of coordinates per message, comparator indices fixed at compile time.
// - trimmed mean, n <= 32 (x86): likewise; the whole sorting network on 8 or 16 wires, and
//   for 17 <= n <= 32 the 32-wire network pruned for the window, -inf / +inf pad wires
//   putting the kept ranks on a compile-time window (byzcore/rank_network.h).
// - n <= kNetworkMaxN (4096): a tile of the input, columns j..j+W, is n short row segments.
//   Blocks of 16 segments are sorted in registers as they are loaded (x86), then the rest
//   of a sorting network runs across the n segments held in an L1/L2 buffer, with
//   elementwise min/max over the W lanes (each lane one coordinate). The loops over W have
//   a fixed trip count, so the compiler emits SIMD min/max (vminps/vmaxps under
//   -march=x86-64-v3). The network is Batcher's odd-even merge sort, pruned backwards to
//   the comparators that can change which values land in ranks lo..hi. Branch-free, it beats
//   nth_element per coordinate by 3-5x even at n = 1000.
// - larger n: the tile is transposed so each coordinate's n values are contiguous, and
//   std::nth_element selects the kept ranks per coordinate.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "byzcore/backends.h"
#include "byzcore/rank_network.h"
#include "cpu/cpu_common.h"

namespace byzcore {
namespace cpu {
namespace rank_detail {

// Up to this n the network (O(n log^2 n) comparators per coordinate, but branch-free and
// W coordinates per instruction) beats nth_element per coordinate (measured 3-5x at n = 1000).
#ifndef BYZCORE_RANK_NETMAX
#define BYZCORE_RANK_NETMAX 4096
#endif
constexpr std::int64_t kNetworkMaxN = BYZCORE_RANK_NETMAX;

struct Comparator {
  std::int32_t a, b;   // wire indices, a < b: after it, wire a holds the min, wire b the max
  std::int32_t phase;  // Batcher phase p: the comparator stays inside an aligned block of 2p wires
};

// Batcher's odd-even merge sort on n wires (generated for the next power of two; a
// comparator touching a wire >= n is dropped, which is exact because padding wires would
// hold +inf and never move), then pruned for ranks lo..hi. Pruning walks backwards keeping,
// per wire, whether its value at that point goes straight to the output ("terminal") and
// whether that output is used. A comparator whose two outputs go straight to unused ranks,
// or straight to two kept ranks (the sum does not care which is which), is dropped.
// With sorted_blocks = B > 1, the comparators inside aligned B-wire blocks (phases p < B)
// are left out: the caller has sorted those blocks already (a superset of what pruning kept
// there, which is exact).
// With prune = false nothing is pruned (only the sorted blocks are left out): every rank
// comes out in order, which MeaMed needs (it compares the values of individual ranks).
inline std::vector<Comparator> rank_network(std::int64_t n, std::int64_t lo, std::int64_t hi,
                                            std::int64_t sorted_blocks = 1, bool prune = true) {
  std::vector<Comparator> net;
  std::int64_t p2 = 1;
  while (p2 < n) p2 <<= 1;
  for (std::int64_t p = 1; p < p2; p <<= 1)
    for (std::int64_t k = p; k >= 1; k >>= 1)
      for (std::int64_t j = k % p; j + k < p2; j += 2 * k)
        for (std::int64_t i = 0; i < k && i + j + k < p2; ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n)
            net.push_back(
                {static_cast<std::int32_t>(i + j), static_cast<std::int32_t>(i + j + k), static_cast<std::int32_t>(p)});

  std::vector<char> terminal(static_cast<std::size_t>(n), 1), kept_rank(static_cast<std::size_t>(n), 0);
  for (std::int64_t w = lo; w <= hi; ++w) kept_rank[static_cast<std::size_t>(w)] = 1;
  std::vector<Comparator> pruned;
  for (auto it = net.rbegin(); it != net.rend(); ++it) {
    const auto a = static_cast<std::size_t>(it->a), b = static_cast<std::size_t>(it->b);
    if (prune && terminal[a] && terminal[b] && kept_rank[a] == kept_rank[b]) continue;
    terminal[a] = terminal[b] = 0;
    if (it->phase >= sorted_blocks) pruned.push_back(*it);
  }
  std::reverse(pruned.begin(), pruned.end());
  return pruned;
}

// Tiles of at most kTile coordinates, but small enough (a multiple of W) that every thread
// gets a few: with large n and small d one 1024-wide tile would leave all but one idle.
inline std::int64_t tile_for(std::int64_t d, std::int64_t W) {
  const std::int64_t parts = 4 * static_cast<std::int64_t>(num_threads());
  const std::int64_t t = (d + parts - 1) / parts;
  return std::max(W, std::min(kTile, (t + W - 1) / W * W));
}

template <class T>
inline T load_ranked(T v) {
  return is_finite(v) ? v : std::numeric_limits<T>::infinity();
}

// ------------------------------------------------------------------ SIMD registers
// For small n the whole network runs in SIMD registers: one vector per message holds W
// coordinates, and the comparator indices are compile-time constants (the network is built
// by a constexpr function per n), so the compiler keeps the n vectors in registers and each
// comparator costs one vmin + one vmax. Built on x86 (SSE2 in the generic module, AVX in the
// AVX2/AVX-512 ones); elsewhere the runtime network above serves every n.
#if defined(__SSE2__)
#define BYZCORE_RANK_REGISTERS 1
#ifndef BYZCORE_RANK_REGMAX
#define BYZCORE_RANK_REGMAX 32
#endif
constexpr int kRegisterMaxN = BYZCORE_RANK_REGMAX;
static_assert(kRegisterMaxN <= rank_net::kMaxWires, "register networks are generated for up to 32 wires");

// The four Lanes<> specialisations are laid out as parallel one-line tables (the same
// operation on the same line in each) so the ISA variants read side by side: not reformatted.
// clang-format off
template <class T> struct Lanes;
#if defined(__AVX__)
template <> struct Lanes<float> {
  using V = __m256;
  static constexpr std::int64_t W = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V half_sum(V a, V b) { const V h = _mm256_set1_ps(0.5f); return _mm256_add_ps(_mm256_mul_ps(a, h), _mm256_mul_ps(b, h)); }
  // NaN and +-Inf -> +inf: |x| <= FLT_MAX is false exactly for those.
  static V infinity() { return _mm256_set1_ps(std::numeric_limits<float>::infinity()); }
  static V ranked(V x) {
    const V mag = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const V ok = _mm256_cmp_ps(mag, _mm256_set1_ps(std::numeric_limits<float>::max()), _CMP_LE_OQ);
    return _mm256_blendv_ps(_mm256_set1_ps(std::numeric_limits<float>::infinity()), x, ok);
  }
  static V neg_infinity() { return _mm256_set1_ps(-std::numeric_limits<float>::infinity()); }
  // Sums in double, lane by lane, for the trimmed mean's kept ranks.
  struct Acc { __m256d lo, hi; };
  static Acc acc_zero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static void acc_add(Acc& a, V v) {
    a.lo = _mm256_add_pd(a.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a.hi = _mm256_add_pd(a.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  static void store_mean(float* p, const Acc& a, double count) {
    const __m256d c = _mm256_set1_pd(count);
    _mm256_storeu_ps(p, _mm256_set_m128(_mm256_cvtpd_ps(_mm256_div_pd(a.hi, c)), _mm256_cvtpd_ps(_mm256_div_pd(a.lo, c))));
  }
};
template <> struct Lanes<double> {
  using V = __m256d;
  static constexpr std::int64_t W = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V half_sum(V a, V b) { const V h = _mm256_set1_pd(0.5); return _mm256_add_pd(_mm256_mul_pd(a, h), _mm256_mul_pd(b, h)); }
  static V infinity() { return _mm256_set1_pd(std::numeric_limits<double>::infinity()); }
  static V ranked(V x) {
    const V mag = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
    const V ok = _mm256_cmp_pd(mag, _mm256_set1_pd(std::numeric_limits<double>::max()), _CMP_LE_OQ);
    return _mm256_blendv_pd(_mm256_set1_pd(std::numeric_limits<double>::infinity()), x, ok);
  }
  static V neg_infinity() { return _mm256_set1_pd(-std::numeric_limits<double>::infinity()); }
  using Acc = __m256d;
  static Acc acc_zero() { return _mm256_setzero_pd(); }
  static void acc_add(Acc& a, V v) { a = _mm256_add_pd(a, v); }
  static void store_mean(double* p, const Acc& a, double count) { _mm256_storeu_pd(p, _mm256_div_pd(a, _mm256_set1_pd(count))); }
};
#else
template <> struct Lanes<float> {
  using V = __m128;
  static constexpr std::int64_t W = 4;
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, V v) { _mm_storeu_ps(p, v); }
  static V min(V a, V b) { return _mm_min_ps(a, b); }
  static V max(V a, V b) { return _mm_max_ps(a, b); }
  static V half_sum(V a, V b) { const V h = _mm_set1_ps(0.5f); return _mm_add_ps(_mm_mul_ps(a, h), _mm_mul_ps(b, h)); }
  static V infinity() { return _mm_set1_ps(std::numeric_limits<float>::infinity()); }
  static V ranked(V x) {
    const V mag = _mm_andnot_ps(_mm_set1_ps(-0.0f), x);
    const V ok = _mm_cmple_ps(mag, _mm_set1_ps(std::numeric_limits<float>::max()));
    return _mm_or_ps(_mm_and_ps(ok, x), _mm_andnot_ps(ok, _mm_set1_ps(std::numeric_limits<float>::infinity())));
  }
  static V neg_infinity() { return _mm_set1_ps(-std::numeric_limits<float>::infinity()); }
  struct Acc { __m128d lo, hi; };
  static Acc acc_zero() { return {_mm_setzero_pd(), _mm_setzero_pd()}; }
  static void acc_add(Acc& a, V v) {
    a.lo = _mm_add_pd(a.lo, _mm_cvtps_pd(v));
    a.hi = _mm_add_pd(a.hi, _mm_cvtps_pd(_mm_movehl_ps(v, v)));
  }
  static void store_mean(float* p, const Acc& a, double count) {
    const __m128d c = _mm_set1_pd(count);
    _mm_storeu_ps(p, _mm_movelh_ps(_mm_cvtpd_ps(_mm_div_pd(a.lo, c)), _mm_cvtpd_ps(_mm_div_pd(a.hi, c))));
  }
};
template <> struct Lanes<double> {
  using V = __m128d;
  static constexpr std::int64_t W = 2;
  static V load(const double* p) { return _mm_loadu_pd(p); }
  static void store(double* p, V v) { _mm_storeu_pd(p, v); }
  static V min(V a, V b) { return _mm_min_pd(a, b); }
  static V max(V a, V b) { return _mm_max_pd(a, b); }
  static V half_sum(V a, V b) { const V h = _mm_set1_pd(0.5); return _mm_add_pd(_mm_mul_pd(a, h), _mm_mul_pd(b, h)); }
  static V infinity() { return _mm_set1_pd(std::numeric_limits<double>::infinity()); }
  static V ranked(V x) {
    const V mag = _mm_andnot_pd(_mm_set1_pd(-0.0), x);
    const V ok = _mm_cmple_pd(mag, _mm_set1_pd(std::numeric_limits<double>::max()));
    return _mm_or_pd(_mm_and_pd(ok, x), _mm_andnot_pd(ok, _mm_set1_pd(std::numeric_limits<double>::infinity())));
  }
  static V neg_infinity() { return _mm_set1_pd(-std::numeric_limits<double>::infinity()); }
  using Acc = __m128d;
  static Acc acc_zero() { return _mm_setzero_pd(); }
  static void acc_add(Acc& a, V v) { a = _mm_add_pd(a, v); }
  static void store_mean(double* p, const Acc& a, double count) { _mm_storeu_pd(p, _mm_div_pd(a, _mm_set1_pd(count))); }
};
#endif
// clang-format on

// The network of rank_network() as a constexpr table for a compile-time n (shared with the
// CUDA twin, byzcore/rank_network.h): sorting (kMedian = false) or pruned to the median ranks.
template <int N, bool kMedian>
using NetFor = std::conditional_t<kMedian, rank_net::MedianNet<N>, rank_net::SortNet<N>>;

// Runs Net::net (a constexpr rank_net::Net) over v, one vmin + one vmax per comparator.
template <class L>
inline void compare_swap(typename L::V& a, typename L::V& b) {
  const typename L::V lo = L::min(a, b);
  b = L::max(a, b);
  a = lo;
}
template <class L, class Net, std::size_t... I>
inline void apply_net(typename L::V* v, std::index_sequence<I...>) {
  (void)v;  // n = 1: no comparator
  (compare_swap<L>(v[Net::net.a[I]], v[Net::net.b[I]]), ...);
}

// dst = the mean of the ranked vectors v[lo..hi], combined as on every path: one value;
// 0.5 a + 0.5 b for two; else the sum in double, in rank order, over the count.
template <class L, class T>
inline void store_rank_mean(const typename L::V* v, std::int64_t lo, std::int64_t hi, T* dst) {
  if (hi == lo) {
    L::store(dst, v[lo]);
  } else if (hi == lo + 1) {
    L::store(dst, L::half_sum(v[lo], v[hi]));
  } else {
    auto acc = L::acc_zero();
    for (std::int64_t i = lo; i <= hi; ++i) L::acc_add(acc, v[i]);
    L::store_mean(dst, acc, static_cast<double>(hi - lo + 1));
  }
}

// Sorts each aligned block of B messages in registers while loading a tile: the first
// phases of Batcher's network (the comparators inside B-wire blocks) never touch memory.
// src[i] points at W coordinates of message i; buf gets n rows of W ranked values.
#ifndef BYZCORE_RANK_BLOCK
#define BYZCORE_RANK_BLOCK 16
#endif
constexpr int kSortedBlock = BYZCORE_RANK_BLOCK;
template <class T, std::int64_t W>
inline void load_tile_sorted(const T* const* src, std::int64_t n, T* buf) {
  using L = Lanes<T>;
  constexpr int B = kSortedBlock;
  for (std::int64_t blk = 0; blk < n; blk += B) {
    const std::int64_t rows = std::min<std::int64_t>(B, n - blk);
    for (std::int64_t v = 0; v < W; v += L::W) {
      typename L::V x[B];
      for (int r = 0; r < B; ++r) x[r] = r < rows ? L::ranked(L::load(src[blk + r] + v)) : L::infinity();
      apply_net<L, NetFor<B, false>>(x, std::make_index_sequence<NetFor<B, false>::net.m>{});
      for (int r = 0; r < rows; ++r) L::store(buf + (blk + r) * W + v, x[r]);
    }
  }
}
#endif  // __SSE2__

// One comparator over W lanes: min to a, max to b. restrict: a != b, so the compiler emits
// plain vector loads, vminps/vmaxps and stores (no aliasing checks, no masked stores).
template <class T, std::int64_t W>
inline void compare_exchange(T* __restrict pa, T* __restrict pb) {
  for (std::int64_t l = 0; l < W; ++l) {
    const T x = pa[l], y = pb[l];
    pa[l] = std::min(x, y);
    pb[l] = std::max(x, y);
  }
}

// Network path. W lanes per tile: 128 bytes, four AVX2 registers per row segment; the
// tile (n x 128 bytes, at most 16 KiB) stays in L1 while the comparators run over it.
template <class T>
constexpr std::int64_t kNetworkLanes = 128 / sizeof(T);
#if defined(BYZCORE_RANK_REGISTERS)
constexpr std::int64_t kNetworkBlocks = kSortedBlock;
#else
constexpr std::int64_t kNetworkBlocks = 1;
#endif

// The tile walk of the network path: per tile of W coordinates the n ranked row segments go
// through `net` (built with sorted_blocks = kNetworkBlocks), then finish(buf, len, dst)
// turns the n x W buffer into len results at dst.
template <class T, class Finish>
void network_tiles(const Messages& X, const std::vector<Comparator>& net, T* out, Finish&& finish) {
  constexpr std::int64_t W = kNetworkLanes<T>;
  constexpr std::int64_t kPrefetch = 4 * W;
  const std::int64_t n = X.n, d = X.d;
  parallel_tiles(
      d, n,
      [&](std::int64_t b, std::int64_t e) {
        // Heap, not stack: at n = 4096 the tile is 512 KiB (it lives in L2 then).
        struct alignas(64) Row {
          T v[W];
        };
        std::vector<Row> rows_buf(static_cast<std::size_t>(2 * n));
        T* buf = rows_buf[0].v;
        T* pad = rows_buf[static_cast<std::size_t>(n)].v;
        std::vector<const T*> src_buf(static_cast<std::size_t>(n));
        const T** src = src_buf.data();
        for (std::int64_t j0 = b; j0 < e; j0 += W) {
          const std::int64_t len = std::min(W, e - j0);
          if (len == W) {
            for (std::int64_t i = 0; i < n; ++i) {
              src[i] = X.row<T>(i) + j0;
              // A few tiles ahead of this row: the hardware prefetcher alone restarts at every
              // 4 KiB page on n streams at once.
              if (j0 + kPrefetch + W <= d) {
                __builtin_prefetch(src[i] + kPrefetch, 0, 0);
                __builtin_prefetch(src[i] + kPrefetch + 64 / sizeof(T), 0, 0);
              }
            }
          } else {  // the last few coordinates: through a zero-padded copy
            for (std::int64_t i = 0; i < n; ++i) {
              T* p = pad + i * W;
              std::copy(X.row<T>(i) + j0, X.row<T>(i) + j0 + len, p);
              std::fill(p + len, p + W, T(0));
              src[i] = p;
            }
          }
#if defined(BYZCORE_RANK_REGISTERS)
          load_tile_sorted<T, W>(src, n, buf);
#else
          for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t l = 0; l < W; ++l) buf[i * W + l] = load_ranked(src[i][l]);
#endif
          for (const Comparator& c : net) compare_exchange<T, W>(buf + c.a * W, buf + c.b * W);
          finish(static_cast<const T*>(buf), len, out + j0);
        }
      },
      tile_for(d, W));
}

template <class T>
void rank_mean_network(const Messages& X, std::int64_t lo, std::int64_t hi, T* out) {
  constexpr std::int64_t W = kNetworkLanes<T>;
  const std::vector<Comparator> net = rank_network(X.n, lo, hi, kNetworkBlocks);
  const double count = static_cast<double>(hi - lo + 1);
  network_tiles<T>(X, net, out, [&](const T* buf, std::int64_t len, T* dst) {
    if (hi == lo) {
      const T* s = buf + lo * W;
      for (std::int64_t l = 0; l < len; ++l) dst[l] = s[l];
    } else if (hi == lo + 1) {
      const T* s = buf + lo * W;
      const T* t = buf + hi * W;
      for (std::int64_t l = 0; l < len; ++l)
        dst[l] = static_cast<T>(0.5 * static_cast<double>(s[l]) + 0.5 * static_cast<double>(t[l]));
    } else {
      double acc[W];
      std::fill(acc, acc + W, 0.0);
      for (std::int64_t w = lo; w <= hi; ++w) {
        const T* s = buf + w * W;
        for (std::int64_t l = 0; l < W; ++l) acc[l] += static_cast<double>(s[l]);
      }
      for (std::int64_t l = 0; l < len; ++l) dst[l] = static_cast<T>(acc[l] / count);
    }
  });
}

// Selection path for large n: transpose a tile, then nth_element per coordinate.
template <class T>
void rank_mean_select(const Messages& X, std::int64_t lo, std::int64_t hi, T* out) {
  constexpr std::int64_t W = 64;
  const std::int64_t n = X.n, d = X.d;
  const double count = static_cast<double>(hi - lo + 1);
  auto less = [](T x, T y) { return x < y; };  // no NaN left after load_ranked
  parallel_tiles(
      d, 8 * n,
      [&](std::int64_t b, std::int64_t e) {
        std::vector<T> tb(static_cast<std::size_t>(W * n));
        for (std::int64_t j0 = b; j0 < e; j0 += W) {
          const std::int64_t len = std::min(W, e - j0);
          for (std::int64_t i = 0; i < n; ++i) {
            const T* r = X.row<T>(i) + j0;
            for (std::int64_t l = 0; l < len; ++l) tb[static_cast<std::size_t>(l * n + i)] = load_ranked(r[l]);
          }
          for (std::int64_t l = 0; l < len; ++l) {
            T* c = tb.data() + l * n;
            double s;
            if (hi == lo || hi == lo + 1) {
              std::nth_element(c, c + hi, c + n, less);
              s = static_cast<double>(c[hi]);
              if (hi != lo) s = 0.5 * s + 0.5 * static_cast<double>(*std::max_element(c, c + hi, less));
              out[j0 + l] = static_cast<T>(s);
              continue;
            }
            std::nth_element(c, c + lo, c + n, less);
            std::nth_element(c + lo + 1, c + hi, c + n, less);
            s = 0;
            for (std::int64_t w = lo; w <= hi; ++w) s += static_cast<double>(c[w]);
            out[j0 + l] = static_cast<T>(s / count);
          }
        }
      },
      tile_for(d, W));
}

#if defined(BYZCORE_RANK_REGISTERS)
// ------------------------------------------------------------------ median, n <= 32
// The whole pruned median network in registers: one vector per message holds L::W
// coordinates, and with compile-time comparator indices the compiler keeps the n vectors
// in registers (spilling a few past 16), so a comparator is one vmin + one vmax.
// rows[i] points at W coordinates of message i; dst gets their W medians.
template <class T, int N>
inline void median_tile(const T* const* rows, T* dst) {
  using L = Lanes<T>;
  typename L::V v[N];
  for (int i = 0; i < N; ++i) v[i] = L::ranked(L::load(rows[i]));
  apply_net<L, NetFor<N, true>>(v, std::make_index_sequence<NetFor<N, true>::net.m>{});
  store_rank_mean<L>(v, (N - 1) / 2, N / 2, dst);
}

// The walk shared by the register kernels: tiles of coordinates across threads, the next
// tile's rows prefetched one row after another, and per vector step `tile_fn(src, dst)` with
// src[i] pointing at W coordinates of message i (i < n) and dst at W results. The last few
// coordinates go through a zero-padded copy.
template <class T, int N, class TileFn>
void register_tiles(const Messages& X, T* out, TileFn&& tile_fn) {
  using L = Lanes<T>;
  constexpr std::int64_t W = L::W;
  const std::int64_t d = X.d, n = X.n;  // every caller has n <= N
  const std::int64_t tile = tile_for(d, W);
  const std::int64_t lines = NextTilePrefetcher<T>::lines_per_step(n, tile, W);
  parallel_tiles(
      d, N,
      [&](std::int64_t b, std::int64_t e) {
        // Zeroed: only the first n are set.
        const T* rows[N] = {};
        const T* tail_rows[N] = {};
        alignas(64) T tail[N * W];
        alignas(64) T res[W];
        NextTilePrefetcher<T> next(X, e, std::min(d, e + (e - b)));
        for (std::int64_t j0 = b; j0 < e; j0 += W) {
          next.step(lines);
          const std::int64_t len = std::min(W, e - j0);
          if (len == W) {
            for (int i = 0; i < N && i < n; ++i) rows[i] = X.row<T>(i) + j0;  // i < N: for the compiler
          } else {
            for (int i = 0; i < N && i < n; ++i) {
              std::fill(tail + i * W, tail + (i + 1) * W, T(0));
              std::copy(X.row<T>(i) + j0, X.row<T>(i) + j0 + len, tail + i * W);
              tail_rows[i] = tail + i * W;
            }
          }
          tile_fn(len == W ? rows : tail_rows, len == W ? out + j0 : res);
          if (len < W) std::copy(res, res + len, out + j0);
        }
      },
      tile);
}

template <class T, int N>
void median_registers(const Messages& X, T* out) {
  register_tiles<T, N>(X, out, [](const T* const* src, T* dst) { median_tile<T, N>(src, dst); });
}

template <class T, int... Ns>
void median_small(const Messages& X, T* out, std::integer_sequence<int, Ns...>) {
  ((void)(X.n == Ns + 1 ? (median_registers<T, Ns + 1>(X, out), 0) : 0), ...);
}

// ------------------------------------------------------------------ trimmed mean, n <= 32
// n <= 16: the full sorting network on 8 or 16 wires in registers (wires past n hold +inf
// and never move), then the kept ranks. One network per wire count rather than one per
// window keeps the instantiations (and the compile time) small where the network is short.
template <class T, int N>
void sorted_registers(const Messages& X, std::int64_t lo, std::int64_t hi, T* out) {
  using L = Lanes<T>;
  using Net = rank_net::SortNet<N>;
  const std::int64_t n = X.n;
  register_tiles<T, N>(X, out, [&](const T* const* src, T* dst) {
    typename L::V v[N];
    for (int i = 0; i < N; ++i) v[i] = i < n ? L::ranked(L::load(src[i])) : L::infinity();
    apply_net<L, Net>(v, std::make_index_sequence<Net::net.m>{});
    store_rank_mean<L>(v, lo, hi, dst);
  });
}

// 17 <= n <= 32: the network on 32 wires pruned for the trimmed mean's window of width Wd
// (byzcore/rank_network.h, shared with the CUDA twin): the n messages sit between `pad` wires
// of -inf and 32 - n - pad wires of +inf, so ranks lo..hi land on the network's compile-time
// window. Pruning drops 15-50% of the comparators, which the compute-bound loop feels (f = 1:
// 6.3 ms against 17 ms for the full 32-wire sort); one instantiation per width (32) is the
// compile-time budget, so smaller n take the full sort.
template <class T, int N, int Wd>
inline void window_tile(const T* const* src, std::int64_t pad, std::int64_t n, T* dst) {
  using L = Lanes<T>;
  using Net = rank_net::WindowNet<N, Wd>;
  typename L::V v[N];
  for (int i = 0; i < N; ++i)
    v[i] = i < pad ? L::neg_infinity() : i < pad + n ? L::ranked(L::load(src[i - pad])) : L::infinity();
  apply_net<L, Net>(v, std::make_index_sequence<Net::net.m>{});
  store_rank_mean<L>(v, Net::lo, Net::hi, dst);
}

template <class T, int N, int Wd>
void window_registers(const Messages& X, std::int64_t pad, T* out) {
  const std::int64_t n = X.n;
  register_tiles<T, N>(X, out, [&](const T* const* src, T* dst) { window_tile<T, N, Wd>(src, pad, n, dst); });
}

template <class T, int N, int... Ws>
void window_small(const Messages& X, std::int64_t lo, std::int64_t hi, T* out, std::integer_sequence<int, Ws...>) {
  const std::int64_t pad = rank_net::pad_below(N, lo, hi);
  ((void)(hi - lo + 1 == Ws + 1 ? (window_registers<T, N, Ws + 1>(X, pad, out), 0) : 0), ...);
}

// Ranks lo..hi through a sorting network in registers when n <= 32.
template <class T>
bool sorted_registers_path(const Messages& X, std::int64_t lo, std::int64_t hi, T* out) {
  if (X.n <= 8)
    sorted_registers<T, 8>(X, lo, hi, out);
  else if (X.n <= 16)
    sorted_registers<T, 16>(X, lo, hi, out);
  else if (X.n <= 32 && kRegisterMaxN >= 32 && rank_net::window_fits(32, X.n, lo, hi))
    window_small<T, 32>(X, lo, hi, out, std::make_integer_sequence<int, 32>{});
  else  // larger n, or a window that is not symmetric: the runtime network serves any ranks
    return false;
  return true;
}
#endif  // BYZCORE_RANK_REGISTERS

// kMedian: lo, hi are the median's ranks. Each caller instantiates only its own register
// path (the median's per-n networks, or the trimmed mean's sorting and window networks):
// they are the bulk of the compile time.
template <class T, bool kMedian>
void rank_mean(const Messages& X, std::int64_t lo, std::int64_t hi, T* out) {
#if defined(BYZCORE_RANK_REGISTERS)
  if constexpr (kMedian) {
    if (X.n <= kRegisterMaxN) {
      median_small<T>(X, out, std::make_integer_sequence<int, kRegisterMaxN>{});
      return;
    }
  } else {
    if (sorted_registers_path<T>(X, lo, hi, out)) return;
  }
#endif
  if (X.n <= kNetworkMaxN)
    rank_mean_network<T>(X, lo, hi, out);
  else
    rank_mean_select<T>(X, lo, hi, out);
}

}  // namespace rank_detail
}  // namespace cpu
}  // namespace byzcore
