// Coordinate-wise median and trimmed mean. Both are, per coordinate, the mean of the values
// whose ranks lie in [lo, hi] (median: the one or two middle ranks; trimmed mean: f..n-f-1),
// with non-finite values ranked last as +inf (SPEC.md section 1).
//  - n <= 32: one thread per coordinate holds the n values in registers and sorts them with a
//    bitonic network; a warp reads 32 consecutive coordinates of a row (coalesced).
//  - n > 32: a block owns 16 coordinates and finds the values of ranks lo and hi by radix
//    selection on order-preserving keys (8 bits per pass, shared histograms), then one last
//    pass sums the values between them.
#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;

__device__ __forceinline__ void cswap(float& a, float& b) {
  const float lo = fminf(a, b);
  b = fmaxf(a, b);
  a = lo;
}
__device__ __forceinline__ void cswap(double& a, double& b) {
  const double lo = fmin(a, b);
  b = fmax(a, b);
  a = lo;
}

// Bitonic sorting network, fully unrolled so v stays in registers.
template <int N, class T>
__device__ __forceinline__ void bitonic_sort(T (&v)[N]) {
#pragma unroll
  for (int k = 2; k <= N; k <<= 1) {
#pragma unroll
    for (int j = k >> 1; j > 0; j >>= 1) {
#pragma unroll
      for (int i = 0; i < N; ++i) {
        const int l = i ^ j;
        if (l > i) {
          if ((i & k) == 0) cswap(v[i], v[l]);
          else cswap(v[l], v[i]);
        }
      }
    }
  }
}

constexpr int kSmallThreads = 128;

template <class T, int N>
__global__ void __launch_bounds__(kSmallThreads)
rank_mean_small(const T* const* rows, int n, std::int64_t d, int lo, int hi, T* out) {
  __shared__ const T* srow[N];
  for (int i = threadIdx.x; i < N; i += blockDim.x) srow[i] = i < n ? rows[i] : nullptr;
  __syncthreads();
  const double count = static_cast<double>(hi - lo + 1);
  for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    T v[N];
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = i < n ? dev::finite_or_inf(__ldg(srow[i] + j)) : T(INFINITY);
    bitonic_sort(v);
    double acc = 0;
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i >= lo && i <= hi) acc += (hi == lo + 1 ? 0.5 : 1.0) * static_cast<double>(v[i]);
    out[j] = static_cast<T>(hi <= lo + 1 ? acc : acc / count);
  }
}

constexpr int kCols = 16;                       // coordinates per block
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
  if (X.n <= 32) {
    const int n = static_cast<int>(X.n);
    const unsigned blocks = ctx.blocks(X.d, kSmallThreads, 16);
    auto launch = [&](auto kernel) {
      kernel<<<blocks, kSmallThreads, 0, ctx.stream()>>>(rows, n, X.d, static_cast<int>(lo), static_cast<int>(hi), out);
      ctx.launched("rank_mean_small");
    };
    if (n <= 4) launch(rank_mean_small<T, 4>);
    else if (n <= 8) launch(rank_mean_small<T, 8>);
    else if (n <= 16) launch(rank_mean_small<T, 16>);
    else launch(rank_mean_small<T, 32>);
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
