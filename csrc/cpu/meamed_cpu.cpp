// Mean around the median (MeaMed) and the second stage of Bulyan: per coordinate, the mean of
// the n - f values closest to the coordinate-wise median m (ties in distance: the smaller
// value), with non-finite values ranked last as +inf (docs/spec.md#nonfinite).
//
// The n - f closest values of a sorted column v[0..n-1] are a window v[s..s+k-1], k = n - f,
// s in 0..f. Sliding the window one step up trades v[s] for v[s+k], which pays exactly when
// v[s+k] - m < m - v[s], i.e. (v[s] + v[s+k]) / 2 < m; the left side grows with s, so the
// steps that pay are a prefix and s = #{s' < f : (v[s'] + v[s'+k]) / 2 < m}. That count and
// the masked window sum are branch-free per lane, so they run over the sorted tile that the
// rank kernels already produce: the full sorting network in registers for n <= 32, the
// unpruned runtime network for n <= 4096, std::sort of transposed columns above.
#include <algorithm>
#include <vector>

#include "byzcore/backends.h"
#include "cpu/rank_select.h"
#include "cpu/simd_vectors.h"

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;
using namespace rank_detail;

// dst[l] = MeaMed of lane l of the ascending rows s[i * W + l] (i < n), for l < len. Four
// lanes at a time in double vectors (the midpoint of two floats is exact there): the window
// start is a count kept as a double, the window a mask, so the loops are branch-free SIMD.
template <class T, i64 W>
inline void meamed_lanes(const T* s, i64 n, i64 f, i64 len, T* dst) {
  static_assert(W % 4 == 0 || W < 4, "lanes are processed four at a time");
  constexpr i64 C = W < 4 ? 1 : W / 4;  // independent 4-lane chains, interleaved
  const i64 k = n - f, lo = (n - 1) / 2, hi = n / 2;
  const v4d half = v4d{} + 0.5, zero = v4d{}, kd = v4d{} + static_cast<double>(k);
  auto at = [&](i64 i, i64 c) {
    if constexpr (W < 4) {  // 1 or 2 lanes (SSE2 doubles, the sorted-column path): the rest unused
      v4d v = zero;
      for (i64 l = 0; l < W; ++l) v[l] = static_cast<double>(s[i * W + l]);
      return v;
    } else {
      return load4(s + i * W + 4 * c);
    }
  };
  v4d m[C], start[C], acc[C];
  for (i64 c = 0; c < C; ++c) {
    m[c] = half * at(lo, c) + half * at(hi, c);
    start[c] = acc[c] = zero;
  }
  for (i64 q = 0; q < f; ++q)
    for (i64 c = 0; c < C; ++c) {
      const v4i step = (half * at(q, c) + half * at(q + k, c)) < m[c];  // -1 where the window moves up
      start[c] -= __builtin_convertvector(step, v4d);
    }
  // Every window [start, start + k) with start <= f holds the ranks f..k-1: only the 2f ranks
  // outside them need the mask (all n when k <= f, as in Bulyan's second stage).
  for (i64 i = 0; i < n; ++i) {
    if (i >= f && i < k) {
      for (i64 c = 0; c < C; ++c) acc[c] += at(i, c);
      continue;
    }
    for (i64 c = 0; c < C; ++c) {
      const v4d x = static_cast<double>(i) - start[c];
      const v4i in = (x >= zero) & (x < kd);
      // A mask, not a product: an unused +inf must not reach the sum.
      acc[c] += reinterpret_cast<v4d>(reinterpret_cast<v4i>(at(i, c)) & in);
    }
  }
  for (i64 c = 0; c < C; ++c) {
    const v4d r = acc[c] / kd;
    for (i64 l = 0; l < 4 && 4 * c + l < len; ++l) dst[4 * c + l] = static_cast<T>(r[l]);
  }
}

#if defined(BYZCORE_RANK_REGISTERS)
// n <= 32: the full sorting network on 8, 16 or 32 wires in registers (pad wires +inf).
template <class T, int N>
void meamed_registers(const Messages& X, i64 f, T* out) {
  using L = Lanes<T>;
  using Net = rank_net::SortNet<N>;
  const i64 n = X.n;
  register_tiles<T, N>(X, out, [&](const T* const* src, T* dst) {
    typename L::V v[N];
    for (int i = 0; i < N; ++i) v[i] = i < n ? L::ranked(L::load(src[i])) : L::infinity();
    apply_net<L, Net>(v, std::make_index_sequence<Net::net.m>{});
    alignas(64) T sorted[N * L::W];
    for (int i = 0; i < N; ++i) L::store(sorted + i * L::W, v[i]);
    meamed_lanes<T, L::W>(sorted, n, f, L::W, dst);
  });
}
#endif

// n > kNetworkMaxN: transposed tiles, one std::sort per coordinate.
template <class T>
void meamed_sorted_columns(const Messages& X, i64 f, T* out) {
  constexpr i64 W = 64;
  const i64 n = X.n;
  parallel_tiles(
      X.d, 16 * n,
      [&](i64 b, i64 e) {
        std::vector<T> col(static_cast<std::size_t>(n));
        for (i64 j = b; j < e; ++j) {
          for (i64 i = 0; i < n; ++i) col[static_cast<std::size_t>(i)] = load_ranked(X.row<T>(i)[j]);
          std::sort(col.begin(), col.end());  // no NaN left after load_ranked
          meamed_lanes<T, 1>(col.data(), n, f, 1, out + j);
        }
      },
      tile_for(X.d, W));
}

template <class T>
void meamed_impl(const Messages& X, i64 f, T* out) {
#if defined(BYZCORE_RANK_REGISTERS)
  if (X.n <= 8) return meamed_registers<T, 8>(X, f, out);
  if (X.n <= 16) return meamed_registers<T, 16>(X, f, out);
  if (X.n <= 32 && kRegisterMaxN >= 32) return meamed_registers<T, 32>(X, f, out);
#endif
  if (X.n > kNetworkMaxN) return meamed_sorted_columns<T>(X, f, out);
  const std::vector<Comparator> net = rank_network(X.n, 0, X.n - 1, kNetworkBlocks, /*prune=*/false);
  network_tiles<T>(X, net, out,
                   [&](const T* buf, i64 len, T* dst) { meamed_lanes<T, kNetworkLanes<T>>(buf, X.n, f, len, dst); });
}

}  // namespace

void meamed(const Messages& X, std::int64_t f, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    meamed_impl<T>(X, f, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
