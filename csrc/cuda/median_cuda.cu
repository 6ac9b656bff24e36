// Coordinate-wise median and trimmed mean. Both are, per coordinate, the mean of the values
// whose ranks lie in [lo, hi] (median: the one or two middle ranks; trimmed mean: f..n-f-1),
// with non-finite values ranked last as +inf (docs/spec.md#nonfinite).
//  - n <= 32: one thread per coordinate holds the values in registers and runs Batcher's
//    network pruned to the kept ranks, which are compile-time constants thanks to the padding
//    of byzcore/rank_network.h (one kernel per wire count 8/16/32 and window width); a warp
//    reads 32 consecutive coordinates of a row (coalesced). Measured on an H200 with 32 x 1e8
//    float32: 3.5 ms (~85% of the copy bandwidth) where a full sort with run-time ranks took 16.5.
//  - n > 32: a block owns 16 coordinates and finds the values of ranks lo and hi by radix
//    selection on order-preserving keys (8 bits per pass, shared histograms), then one last
//    pass sums the values between them.
#include <array>
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

template <class T>
__device__ __forceinline__ void cswap(T& a, T& b) {
  const T lo = min(a, b);  // fminf / fmin: no NaN reaches here (non-finite -> +inf on load)
  b = max(a, b);
  a = lo;
}

template <class T, int N, int W, std::size_t... I>
__device__ __forceinline__ void run_window_net(T (&v)[N], std::index_sequence<I...>) {
  using Net = rank_net::WindowNet<N, W>;
  (cswap(v[Net::net.a[I]], v[Net::net.b[I]]), ...);
}

// n <= N: one thread per coordinate holds N values in registers (the n messages between
// -inf and +inf pads, rank_network.h) and runs the network of the window of width W, whose
// ranks are compile-time constants; a warp reads 32 consecutive coordinates of a row.
constexpr int kSmallThreads = 128;

template <class T, int N, int W>
__global__ void __launch_bounds__(kSmallThreads)
    rank_mean_network(const T* const* rows, int n, int pad, std::int64_t d, T* out) {
  using Net = rank_net::WindowNet<N, W>;
  __shared__ const T* wire_row[N];
  for (int i = threadIdx.x; i < N; i += blockDim.x) wire_row[i] = (i >= pad && i < pad + n) ? rows[i - pad] : nullptr;
  __syncthreads();
  // Two copies of the loop: with no pad wire (n = N, the common sizes) the loads carry no
  // per-wire test, which the memory-bound loop notices (3.5 vs 5.4 ms on 32 x 1e8, H200).
  auto body = [&](auto padded) {
    for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
      T v[N];
#pragma unroll
      for (int i = 0; i < N; ++i) {
        if (decltype(padded)::value) {
          const T* r = wire_row[i];
          v[i] = r ? dev::finite_or_inf(__ldg(r + j)) : (i < pad ? T(-INFINITY) : T(INFINITY));
        } else {
          v[i] = dev::finite_or_inf(__ldg(wire_row[i] + j));
        }
      }
      run_window_net<T, N, W>(v, std::make_index_sequence<Net::net.m>{});
      // Combined as on the CPU: one value; 0.5 a + 0.5 b for two; else the sum over the count.
      double r;
      if (W == 1) {
        r = static_cast<double>(v[Net::lo]);
      } else if (W == 2) {
        r = 0.5 * static_cast<double>(v[Net::lo]) + 0.5 * static_cast<double>(v[Net::hi]);
      } else {
        double acc = 0;
#pragma unroll
        for (int i = Net::lo; i <= Net::hi; ++i) acc += static_cast<double>(v[i]);
        r = acc / W;
      }
      out[j] = static_cast<T>(r);
    }
  };
  if (n == N)
    body(std::false_type{});
  else
    body(std::true_type{});
}

template <class T>
using NetworkKernel = void (*)(const T* const*, int, int, std::int64_t, T*);

// kernels[W - 1] = the kernel of the window of width W on N wires.
template <class T, int N, int... W>
constexpr std::array<NetworkKernel<T>, N> network_kernels(std::integer_sequence<int, W...>) {
  return {rank_mean_network<T, N, W + 1>...};
}
template <class T, int N>
constexpr std::array<NetworkKernel<T>, N> kNetworkKernels = network_kernels<T, N>(std::make_integer_sequence<int, N>{});

// n > 32 (or an asymmetric window):
constexpr int kCols = 16;  // coordinates per block
constexpr int kRadixThreads = 256;
constexpr int kGroups = kRadixThreads / kCols;  // threads sharing one coordinate
constexpr int kRadixWarps = kRadixThreads / dev::kWarp;

template <class T>
__global__ void __launch_bounds__(kRadixThreads)
    rank_mean_radix(const T* const* rows, std::int64_t n, std::int64_t d, std::int64_t lo, std::int64_t hi, T* out) {
  using KT = dev::KeyTraits<T>;
  using Key = typename KT::Key;
  constexpr int kBits = 8 * sizeof(Key);
  __shared__ unsigned int hist[2][kCols][256];
  __shared__ Key prefix[2][kCols];
  __shared__ long long want[2][kCols];
  __shared__ double red_sum[kGroups][kCols];
  __shared__ long long red_le[kGroups][kCols];
  __shared__ long long red_lt[kGroups][kCols];

  const int c = threadIdx.x % kCols, g = threadIdx.x / kCols;
  const int lane = threadIdx.x % dev::kWarp, warp = threadIdx.x / dev::kWarp;
  const int nsel = lo == hi ? 1 : 2;
  const double count = static_cast<double>(hi - lo + 1);

  for (std::int64_t j0 = static_cast<std::int64_t>(blockIdx.x) * kCols; j0 < d;
       j0 += static_cast<std::int64_t>(gridDim.x) * kCols) {
    const std::int64_t j = j0 + c;
    const bool valid = j < d;
    if (threadIdx.x < 2 * kCols) {
      const int s = threadIdx.x / kCols, cc = threadIdx.x % kCols;
      prefix[s][cc] = 0;
      want[s][cc] = s == 0 ? lo : hi;
    }
    for (int shift = kBits - 8; shift >= 0; shift -= 8) {
      for (int b = threadIdx.x; b < 2 * kCols * 256; b += kRadixThreads) (&hist[0][0][0])[b] = 0;
      __syncthreads();
      const Key himask = shift + 8 >= kBits ? Key(0) : static_cast<Key>(~Key(0) << (shift + 8));
      const Key p0 = prefix[0][c], p1 = prefix[1][c];
      if (valid) {
        for (std::int64_t i = g; i < n; i += kGroups) {
          const Key k = KT::key(rows[i][j]);
          const unsigned dig = static_cast<unsigned>(k >> shift) & 255u;
          if (((k ^ p0) & himask) == 0) atomicAdd(&hist[0][c][dig], 1u);
          if (nsel == 2 && ((k ^ p1) & himask) == 0) atomicAdd(&hist[1][c][dig], 1u);
        }
      }
      __syncthreads();
      // One warp per (selection, coordinate): find the bin that holds the wanted rank.
      for (int p = warp; p < nsel * kCols; p += kRadixWarps) {
        const int s = p / kCols, cc = p % kCols;
        unsigned int cnt[8], tot = 0;
#pragma unroll
        for (int b = 0; b < 8; ++b) {
          cnt[b] = hist[s][cc][lane * 8 + b];
          tot += cnt[b];
        }
        unsigned int incl = tot;
#pragma unroll
        for (int o = 1; o < dev::kWarp; o <<= 1) {
          const unsigned int up = __shfl_up_sync(0xffffffffu, incl, o);
          if (lane >= o) incl += up;
        }
        const long long w = want[s][cc];
        const long long ex = static_cast<long long>(incl) - tot;
        __syncwarp();
        if (ex <= w && w < static_cast<long long>(incl)) {
          long long cum = ex;
#pragma unroll
          for (int b = 0; b < 8; ++b) {
            if (w < cum + cnt[b]) {
              prefix[s][cc] |= static_cast<Key>(lane * 8 + b) << shift;
              want[s][cc] = w - cum;
              break;
            }
            cum += cnt[b];
          }
        }
      }
      __syncthreads();
    }
    // prefix[s][c] is now the whole key of rank lo (s = 0) and hi (s = 1).
    const Key ka = prefix[0][c], kb = prefix[nsel - 1][c];
    double sum = 0;
    long long le = 0, lt = 0;
    if (valid && ka != kb && hi > lo + 1) {
      for (std::int64_t i = g; i < n; i += kGroups) {
        const T v = rows[i][j];
        const Key k = KT::key(v);
        le += k <= ka;
        lt += k < kb;
        if (k > ka && k < kb) sum += static_cast<double>(v);  // strictly inside: finite
      }
    }
    red_sum[g][c] = sum;
    red_le[g][c] = le;
    red_lt[g][c] = lt;
    __syncthreads();
    if (g == 0 && valid) {
      // Combined as on the CPU: one value; 0.5 a + 0.5 b for two; else sum / count.
      const double a = static_cast<double>(KT::value(ka));
      double r = a;
      if (hi == lo + 1) {
        r = 0.5 * a + 0.5 * static_cast<double>(KT::value(kb));
      } else if (ka != kb) {
        const double b = static_cast<double>(KT::value(kb));
        double s = 0;
        long long cle = 0, clt = 0;
        for (int q = 0; q < kGroups; ++q) {
          s += red_sum[q][c];
          cle += red_le[q][c];
          clt += red_lt[q][c];
        }
        // ranks lo..hi = the copies of a from rank lo on, everything strictly between, and
        // the copies of b up to rank hi.
        s += static_cast<double>(cle - lo) * a + static_cast<double>(hi + 1 - clt) * b;
        r = s / count;
      }
      out[j] = static_cast<T>(r);
    }
    __syncthreads();
  }
}

template <class T>
void rank_mean_impl(Context& ctx, const Messages& X, const T* const* rows, std::int64_t lo, std::int64_t hi, T* out) {
  if (const int N = X.n <= 8 ? 8 : X.n <= 16 ? 16 : 32; rank_net::window_fits(N, X.n, lo, hi)) {
    const NetworkKernel<T> kernel = N == 8    ? kNetworkKernels<T, 8>[hi - lo]
                                    : N == 16 ? kNetworkKernels<T, 16>[hi - lo]
                                              : kNetworkKernels<T, 32>[hi - lo];
    const unsigned blocks = ctx.blocks(X.d, kSmallThreads, 16);
    kernel<<<blocks, kSmallThreads, 0, ctx.stream()>>>(rows, static_cast<int>(X.n),
                                                       static_cast<int>(rank_net::pad_below(N, lo, hi)), X.d, out);
    ctx.launched("rank_mean_network");
  } else {
    const std::int64_t tiles = (X.d + kCols - 1) / kCols;
    const unsigned blocks = static_cast<unsigned>(std::min<std::int64_t>(tiles, std::int64_t(ctx.sm_count()) * 4));
    rank_mean_radix<T><<<blocks, kRadixThreads, 0, ctx.stream()>>>(rows, X.n, X.d, lo, hi, out);
    ctx.launched("rank_mean_radix");
  }
}

}  // namespace

namespace detail {
void rank_mean(Context& ctx, const Messages& X, const void* const* rows, std::int64_t lo, std::int64_t hi, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rank_mean_impl<T>(ctx, X, reinterpret_cast<const T* const*>(rows), lo, hi, static_cast<T*>(out));
  });
}
}  // namespace detail

void median(const Messages& X, void* out) {
  Context ctx("median", X.place);
  detail::rank_mean(ctx, X, ctx.rows<void>(X), (X.n - 1) / 2, X.n / 2, out);
}

void trimmed_mean(const Messages& X, std::int64_t f, void* out) {
  Context ctx("trimmed_mean", X.place);
  detail::rank_mean(ctx, X, ctx.rows<void>(X), f, X.n - f - 1, out);
}

}  // namespace cuda
}  // namespace byzcore
