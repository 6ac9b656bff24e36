// Mean around the median (MeaMed) and the second stage of Bulyan: per coordinate, the mean of
// the n - f values closest to the coordinate-wise median m (ties in distance: the smaller
// value), with non-finite values ranked last as +inf (SPEC.md section 1).
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

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;
using namespace rank_detail;

// dst[l] = MeaMed of lane l of the ascending rows s[i * W + l] (i < n), for l < len. The
// comparisons and the sum are in double: the midpoint of two floats is exact there.
template <class T, i64 W>
inline void meamed_lanes(const T* s, i64 n, i64 f, i64 len, T* dst) {
  const i64 k = n - f, lo = (n - 1) / 2, hi = n / 2;
  double m[W], acc[W];
  i64 start[W];
  for (i64 l = 0; l < W; ++l) {
    m[l] = 0.5 * static_cast<double>(s[lo * W + l]) + 0.5 * static_cast<double>(s[hi * W + l]);
    start[l] = 0;
    acc[l] = 0;
  }
  for (i64 q = 0; q < f; ++q)
    for (i64 l = 0; l < W; ++l)
      start[l] += (0.5 * static_cast<double>(s[q * W + l]) + 0.5 * static_cast<double>(s[(q + k) * W + l])) < m[l];
  for (i64 i = 0; i < n; ++i)
    for (i64 l = 0; l < W; ++l)  // a select, not a product: an unused +inf must not reach the sum
      acc[l] += (i >= start[l] && i < start[l] + k) ? static_cast<double>(s[i * W + l]) : 0.0;
  for (i64 l = 0; l < len; ++l) dst[l] = static_cast<T>(acc[l] / static_cast<double>(k));
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
  parallel_tiles(X.d, 16 * n, [&](i64 b, i64 e) {
    std::vector<T> col(static_cast<std::size_t>(n));
    for (i64 j = b; j < e; ++j) {
      for (i64 i = 0; i < n; ++i) col[static_cast<std::size_t>(i)] = load_ranked(X.row<T>(i)[j]);
      std::sort(col.begin(), col.end());  // no NaN left after load_ranked
      meamed_lanes<T, 1>(col.data(), n, f, 1, out + j);
    }
  }, tile_for(X.d, W));
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
  network_tiles<T>(X, net, out, [&](const T* buf, i64 len, T* dst) {
    meamed_lanes<T, kNetworkLanes<T>>(buf, X.n, f, len, dst);
  });
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
