// Mean around the median (MeaMed) and the second stage of Bulyan on the GPU, with the CPU's
// definition (csrc/cpu/meamed_cpu.cpp): per coordinate the mean of the n - f values closest
// to the median, ties in distance to the smaller value, non-finite values ranked as +inf.
//  - n <= 32: one thread per coordinate sorts its values in registers with the full sorting
//    network of byzcore/rank_network.h (pad wires +inf), stores them to its column of shared
//    memory (run-time indices would spill registers to local memory), then slides the window
//    as the CPU does: start = #{q < f : (v[q] + v[q+k]) / 2 < m}.
//  - n > 32: one thread per coordinate ranks every value by counting (O(n^2) reads that hit
//    L1), the median from the ranks (n-1)/2 and n/2, then keeps the values whose key
//    (|v - m|, v, index) is among the k smallest. Exact, but quadratic in n.
#include <type_traits>
#include <utility>

#include "byzcore/backends.h"
#include "byzcore/rank_network.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;

constexpr int kThreads = 128;

template <class T>
__device__ __forceinline__ void cswap(T& a, T& b) {
  const T lo = min(a, b);  // no NaN here: non-finite -> +inf on load
  b = max(a, b);
  a = lo;
}

template <class T, int N, std::size_t... I>
__device__ __forceinline__ void run_sort_net(T (&v)[N], std::index_sequence<I...>) {
  using Net = rank_net::SortNet<N>;
  (cswap(v[Net::net.a[I]], v[Net::net.b[I]]), ...);
}

template <class T, int N>
__global__ void __launch_bounds__(kThreads)
meamed_network(const T* const* rows, int n, int f, std::int64_t d, T* out) {
  __shared__ T col[N][kThreads];
  const int k = n - f, lo = (n - 1) / 2, hi = n / 2;
  const int t = threadIdx.x;
  // The grid-stride loop runs the same trip count in the whole block only per thread, so no
  // __syncthreads: each thread reads back only its own shared column.
  for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    T v[N];
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = i < n ? dev::finite_or_inf(__ldg(rows[i] + j)) : T(INFINITY);
    run_sort_net<T, N>(v, std::make_index_sequence<rank_net::SortNet<N>::net.m>{});
#pragma unroll
    for (int i = 0; i < N; ++i) col[i][t] = v[i];
    const double m = 0.5 * static_cast<double>(col[lo][t]) + 0.5 * static_cast<double>(col[hi][t]);
    int start = 0;
    for (int q = 0; q < f; ++q)
      start += (0.5 * static_cast<double>(col[q][t]) + 0.5 * static_cast<double>(col[q + k][t])) < m;
    double acc = 0;
    for (int i = start; i < start + k; ++i) acc += static_cast<double>(col[i][t]);
    out[j] = static_cast<T>(acc / k);
  }
}

template <class T>
__global__ void meamed_counting(const T* const* rows, std::int64_t n, std::int64_t f, std::int64_t d, T* out) {
  const std::int64_t k = n - f, lo = (n - 1) / 2, hi = n / 2;
  for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    double a = 0, b = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const T vi = dev::finite_or_inf(rows[i][j]);
      std::int64_t r = 0;
      for (std::int64_t p = 0; p < n; ++p) {
        const T vp = dev::finite_or_inf(rows[p][j]);
        r += vp < vi || (vp == vi && p < i);
      }
      if (r == lo) a = static_cast<double>(vi);
      if (r == hi) b = static_cast<double>(vi);
    }
    const double m = 0.5 * a + 0.5 * b;
    double acc = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double vi = static_cast<double>(dev::finite_or_inf(rows[i][j]));
      const double di = fabs(vi - m);
      std::int64_t before = 0;
      for (std::int64_t p = 0; p < n && before < k; ++p) {
        const double vp = static_cast<double>(dev::finite_or_inf(rows[p][j]));
        const double dp = fabs(vp - m);
        before += dp < di || (dp == di && (vp < vi || (vp == vi && p < i)));
      }
      if (before < k) acc += vi;
    }
    out[j] = static_cast<T>(acc / static_cast<double>(k));
  }
}

template <class T>
void meamed_impl(Context& ctx, const Messages& X, const T* const* rows, std::int64_t f, T* out) {
  const int n = static_cast<int>(X.n), ff = static_cast<int>(f);
  const unsigned blocks = ctx.blocks(X.d, kThreads, 16);
  if (X.n <= 8)
    meamed_network<T, 8><<<blocks, kThreads, 0, ctx.stream()>>>(rows, n, ff, X.d, out);
  else if (X.n <= 16)
    meamed_network<T, 16><<<blocks, kThreads, 0, ctx.stream()>>>(rows, n, ff, X.d, out);
  else if (X.n <= 32)
    meamed_network<T, 32><<<blocks, kThreads, 0, ctx.stream()>>>(rows, n, ff, X.d, out);
  else
    meamed_counting<T><<<blocks, kThreads, 0, ctx.stream()>>>(rows, X.n, f, X.d, out);
  ctx.launched("meamed");
}

}  // namespace

namespace detail {
void meamed(Context& ctx, const Messages& X, const void* const* rows, std::int64_t f, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    meamed_impl<T>(ctx, X, reinterpret_cast<const T* const*>(rows), f, static_cast<T*>(out));
  });
}
}  // namespace detail

void meamed(const Messages& X, std::int64_t f, void* out) {
  Context ctx("meamed", X.place);
  detail::meamed(ctx, X, ctx.rows<void>(X), f, out);
}

}  // namespace cuda
}  // namespace byzcore
