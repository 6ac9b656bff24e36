// Per-message distances to a centre, and the centre iterations shared by the smoothed
// Weiszfeld geometric median and centered clipping. One step reads X once: a block takes a
// tile of 512 coordinates, computes the new centre there (double accumulation over the n
// messages), then, while the tile is still in cache, each warp adds (x_ij - z_new_j)^2 for its
// messages: the distances the next step needs (the fused distance + weighted sum). Every
// per-message partial has a single owner (block, warp), and partials are added in a fixed
// order, so results do not change from run to run.
#include <cmath>
#include <utility>

#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;
using detail::Recenter;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / dev::kWarp;
constexpr int kTileD = 512;                    // coordinates per tile
constexpr int kPerLane = kTileD / dev::kWarp;  // coordinates a lane covers in the distance pass
constexpr int kPerThread = kTileD / kThreads;  // coordinates a thread covers in the update

// Adds sum_j (x_ij - z_j)^2 over the tile to part[i] for the messages of this warp.
template <class T>
__device__ __forceinline__ void tile_distances(const T* const* rows, std::int64_t n, std::int64_t d, std::int64_t tile0,
                                               const double* ztile, bool first, double* part) {
  const int lane = threadIdx.x % dev::kWarp, warp = threadIdx.x / dev::kWarp;
  double zr[kPerLane];
#pragma unroll
  for (int q = 0; q < kPerLane; ++q) zr[q] = ztile ? ztile[lane + dev::kWarp * q] : 0.0;
  for (std::int64_t i = warp; i < n; i += kWarps) {
    const T* x = rows[i] + tile0;
    double acc = 0;
#pragma unroll
    for (int q = 0; q < kPerLane; ++q) {
      const std::int64_t jj = lane + dev::kWarp * q;
      if (tile0 + jj < d) {
        const double diff = static_cast<double>(x[jj]) - zr[q];
        acc = fma(diff, diff, acc);
      }
    }
    acc = dev::warp_sum(acc);
    if (lane == 0) part[i] = first ? acc : part[i] + acc;
  }
}

// part[blockIdx.x * n + i] = the block's share of ||x_i - z||^2 (z == nullptr: zero).
template <class T>
__global__ void __launch_bounds__(kThreads)
    row_dist_kernel(const T* const* rows, std::int64_t n, std::int64_t d, const double* z, double* part) {
  __shared__ double ztile[kTileD];
  double* my = part + static_cast<std::int64_t>(blockIdx.x) * n;
  for (std::int64_t t = blockIdx.x; t * kTileD < d; t += gridDim.x) {
    const std::int64_t tile0 = t * kTileD;
    if (z) {
      for (int q = threadIdx.x; q < kTileD; q += kThreads) ztile[q] = tile0 + q < d ? z[tile0 + q] : 0.0;
      __syncthreads();
    }
    tile_distances(rows, n, d, tile0, z ? ztile : nullptr, t == blockIdx.x, my);
    __syncthreads();
  }
}

// norm[i] = sqrt(sum over blocks of part). A non-finite sum means a non-finite entry, or for
// float64 possibly squares that overflowed: those rows get -1 and norm_rescue_kernel decides.
__global__ void row_norm_finish(const double* part, int blocks, std::int64_t n, bool rescue, double* norm) {
  for (std::int64_t i = dev::global_thread(); i < n; i += dev::grid_threads()) {
    double s = 0;
    for (int b = 0; b < blocks; ++b) s += part[b * n + i];
    norm[i] = dev::is_finite(s) ? sqrt(s) : (rescue ? -1.0 : INFINITY);
  }
}

// For the rows marked -1 (as on the CPU): +inf if the message holds a non-finite entry, else
// the norm with every term divided by the largest |x_ij - z_j|. One block per row.
constexpr int kRescueThreads = 256;
template <class T>
__global__ void __launch_bounds__(kRescueThreads)
    norm_rescue_kernel(const T* const* rows, std::int64_t n, std::int64_t d, const double* z, double* norm) {
  __shared__ double red[kRescueThreads / dev::kWarp];
  __shared__ double red_max[kRescueThreads / dev::kWarp];
  for (std::int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    if (norm[i] >= 0) continue;  // the same for the whole block
    const T* x = rows[i];
    double m = 0, bad = 0;
    for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      if (!dev::is_finite(x[j]))
        bad = 1;
      else
        m = fmax(m, fabs(static_cast<double>(x[j]) - (z ? z[j] : 0.0)));
    }
    bad = dev::block_sum(bad, red);
    // block maximum through the same fixed-order pattern
    for (int o = dev::kWarp / 2; o > 0; o >>= 1) m = fmax(m, __shfl_xor_sync(0xffffffffu, m, o));
    __syncthreads();
    if (threadIdx.x % dev::kWarp == 0) red_max[threadIdx.x / dev::kWarp] = m;
    __syncthreads();
    for (int w = 0; w < kRescueThreads / dev::kWarp; ++w) m = fmax(m, red_max[w]);
    double s = 0;
    if (bad == 0 && m > 0 && dev::is_finite(m)) {
      for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        const double v = (static_cast<double>(x[j]) - (z ? z[j] : 0.0)) / m;
        s = fma(v, v, s);
      }
    }
    s = dev::block_sum(s, red);
    if (threadIdx.x == 0) norm[i] = bad != 0 ? INFINITY : (m > 0 && dev::is_finite(m) ? m * sqrt(s) : m);
  }
}

struct StepParams {
  double s;  // z_new = s * z + beta * sum_i c_i (x_i - s * z)
  double beta;
};

// One centre step (see the file comment). scal[blockIdx.x] gets the block's share of
// ||z_new - z||^2 and ||z_new||^2.
template <class T>
__global__ void __launch_bounds__(kThreads)
    step_kernel(const T* const* rows, std::int64_t n, std::int64_t d, const double* z, double* znew, const double* coef,
                const StepParams* params, bool need_dist, double* part, double2* scal) {
  __shared__ double ztile[kTileD];
  __shared__ double red[kWarps];
  const double s = params->s, beta = params->beta;
  double chg = 0, nrm = 0;
  double* my = part + static_cast<std::int64_t>(blockIdx.x) * n;
  for (std::int64_t t = blockIdx.x; t * kTileD < d; t += gridDim.x) {
    const std::int64_t tile0 = t * kTileD;
    double zq[kPerThread], acc[kPerThread];
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      const std::int64_t j = tile0 + threadIdx.x + kThreads * q;
      zq[q] = j < d ? s * z[j] : 0.0;
      acc[q] = 0;
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const double c = coef[i];
      if (c == 0) continue;  // weight zero, e.g. a non-finite message: never read
      const T* x = rows[i] + tile0;
#pragma unroll
      for (int q = 0; q < kPerThread; ++q) {
        const std::int64_t jj = threadIdx.x + kThreads * q;
        if (tile0 + jj < d) acc[q] = fma(c, static_cast<double>(x[jj]) - zq[q], acc[q]);
      }
    }
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      const int jj = threadIdx.x + kThreads * q;
      const std::int64_t j = tile0 + jj;
      if (j < d) {
        const double v = zq[q] + beta * acc[q];
        const double dz = v - z[j];
        chg = fma(dz, dz, chg);
        nrm = fma(v, v, nrm);
        znew[j] = v;
        ztile[jj] = v;
      }
    }
    if (need_dist) {
      __syncthreads();
      tile_distances(rows, n, d, tile0, ztile, t == blockIdx.x, my);
    }
    __syncthreads();
  }
  chg = dev::block_sum(chg, red);
  nrm = dev::block_sum(nrm, red);
  if (threadIdx.x == 0) scal[blockIdx.x] = make_double2(chg, nrm);
}

// After a distance pass: the coefficients and step parameters of the next step, and (when
// scal is given) ||z_new - z||^2, ||z_new||^2 of the step just taken into stats. One block.
constexpr int kCoefThreads = 256;
__global__ void __launch_bounds__(kCoefThreads)
    coef_kernel(const double* norm, std::int64_t n, Recenter rule, double nu, const double* a, double tau, double* coef,
                StepParams* params, const double2* scal, int blocks, double* stats) {
  __shared__ double red[kCoefThreads / dev::kWarp];
  double total = 0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double dist = norm[i];
    double c = 0;  // a non-finite message is infinitely far: weight zero
    if (dev::is_finite(dist)) {
      if (rule == Recenter::weiszfeld)
        c = (a ? a[i] : 1.0) / fmax(nu, dist);
      else if (tau > 0)
        c = dist <= tau ? 1.0 : tau / dist;  // min(1, tau / ||x_i - v||)
    }
    coef[i] = c;
    total += c;
  }
  total = dev::block_sum(total, red);
  if (threadIdx.x == 0) {
    stats[2] = total;
    if (rule == Recenter::weiszfeld) {
      // All weights zero (every message non-finite): the host stops before the next step.
      *params = total > 0 ? StepParams{0.0, 1.0 / total} : StepParams{1.0, 0.0};
    } else {
      *params = StepParams{1.0, 1.0 / static_cast<double>(n)};
    }
    if (scal) {
      double c2 = 0, z2 = 0;
      for (int b = 0; b < blocks; ++b) {
        c2 += scal[b].x;
        z2 += scal[b].y;
      }
      stats[0] = c2;
      stats[1] = z2;
    }
  }
}

template <class T>
__global__ void convert_kernel(const T* in, std::int64_t count, double* out) {
  for (std::int64_t j = dev::global_thread(); j < count; j += dev::grid_threads()) out[j] = static_cast<double>(in[j]);
}
template <class T>
__global__ void convert_back_kernel(const double* in, std::int64_t count, T* out) {
  for (std::int64_t j = dev::global_thread(); j < count; j += dev::grid_threads()) out[j] = static_cast<T>(in[j]);
}

unsigned tile_blocks(const Context& ctx, std::int64_t d, std::int64_t n) {
  const std::int64_t tiles = (d + kTileD - 1) / kTileD;
  // Persistent blocks: two per SM, fewer when n is so large that the partials would be big.
  std::int64_t blocks = std::min<std::int64_t>(tiles, std::int64_t(ctx.sm_count()) * 2);
  blocks = std::min<std::int64_t>(blocks, std::max<std::int64_t>(1, (std::int64_t(1) << 24) / n));
  return static_cast<unsigned>(blocks);
}

// norm[i] = ||x_i - z|| from the per-block partials in part (see row_norm_finish).
template <class T>
void finish_norms(Context& ctx, const Messages& X, const T* const* rows, const double* part, unsigned blocks,
                  const double* z, bool allow_rescue, double* norm) {
  const bool rescue = allow_rescue && sizeof(T) == 8;  // float32 squares cannot overflow a double sum
  row_norm_finish<<<ctx.blocks(X.n, 256), 256, 0, ctx.stream()>>>(part, static_cast<int>(blocks), X.n, rescue, norm);
  ctx.launched("row_norm_finish");
  if (rescue) {
    norm_rescue_kernel<T><<<detail::grid_rows(X.n), kRescueThreads, 0, ctx.stream()>>>(rows, X.n, X.d, z, norm);
    ctx.launched("norm_rescue_kernel");
  }
}

template <class T>
void row_norms_impl(Context& ctx, const Messages& X, const T* const* rows, const double* z, double* out) {
  const unsigned blocks = tile_blocks(ctx, X.d, X.n);
  double* part = ctx.alloc<double>(static_cast<std::size_t>(blocks * X.n));
  row_dist_kernel<T><<<blocks, kThreads, 0, ctx.stream()>>>(rows, X.n, X.d, z, part);
  ctx.launched("row_dist_kernel");
  finish_norms(ctx, X, rows, part, blocks, z, true, out);
}

template <class T>
std::int64_t recenter_impl(Context& ctx, const Messages& X, const T* const* rows, const detail::RecenterParams& p,
                           double* z) {
  const std::int64_t n = X.n, d = X.d;
  const unsigned blocks = tile_blocks(ctx, d, n);
  double* part = ctx.alloc<double>(static_cast<std::size_t>(blocks * n));
  double2* scal = ctx.alloc<double2>(blocks);
  double* coef = ctx.alloc<double>(static_cast<std::size_t>(n));
  double* norm = ctx.alloc<double>(static_cast<std::size_t>(n));
  StepParams* params = ctx.alloc<StepParams>(1);
  double* stats = ctx.alloc<double>(3);
  double* other = ctx.alloc<double>(static_cast<std::size_t>(d));
  double* cur = z;

  // Norms to the current centre (from the partials of the last pass), then the coefficients.
  auto coefficients = [&](const double2* with_stats, bool fresh_norms) {
    // Weiszfeld, as on the CPU, gives weight zero to a distance that overflows; centered
    // clipping, like clip, rescales it.
    if (fresh_norms) finish_norms(ctx, X, rows, part, blocks, cur, p.rule == Recenter::centered_clipping, norm);
    coef_kernel<<<1, kCoefThreads, 0, ctx.stream()>>>(norm, n, p.rule, p.nu, p.a, p.tau, coef, params, with_stats,
                                                      static_cast<int>(blocks), stats);
    ctx.launched("coef_kernel");
  };

  // Weiszfeld reads back ||z_new - z||^2, ||z_new||^2 and the next weight total: one
  // synchronisation per step (and one before the first), as the convergence test needs.
  double host[3] = {0, 0, 1};
  auto read_stats = [&]() {
    ctx.check(cudaMemcpyAsync(host, stats, sizeof(host), cudaMemcpyDeviceToHost, ctx.stream()),
              "cudaMemcpyAsync (convergence test)");
    ctx.check(cudaStreamSynchronize(ctx.stream()), "cudaStreamSynchronize");
  };
  // No finite message at a finite distance (all weights zero): stop, as the CPU does.
  auto no_weight = [&]() { return !(host[2] > 0) || !std::isfinite(host[2]); };

  std::int64_t steps = 0;
  if (p.max_iter > 0) {
    row_dist_kernel<T><<<blocks, kThreads, 0, ctx.stream()>>>(rows, n, d, cur, part);
    ctx.launched("row_dist_kernel");
    coefficients(nullptr, true);
    if (p.tol >= 0) read_stats();
  }
  for (std::int64_t it = 0; it < p.max_iter; ++it) {
    if (p.tol >= 0 && no_weight()) break;
    const bool last = it + 1 == p.max_iter;
    step_kernel<T><<<blocks, kThreads, 0, ctx.stream()>>>(rows, n, d, cur, other, coef, params, !last, part, scal);
    ctx.launched("step_kernel");
    std::swap(cur, other);
    ++steps;
    if (p.tol < 0) {
      if (!last) coefficients(nullptr, true);
      continue;
    }
    coefficients(scal, !last);
    read_stats();
    if (std::sqrt(host[0]) <= p.tol * std::sqrt(host[1])) break;
  }
  if (cur != z)
    ctx.check(
        cudaMemcpyAsync(z, cur, static_cast<std::size_t>(d) * sizeof(double), cudaMemcpyDeviceToDevice, ctx.stream()),
        "cudaMemcpyAsync (device to device)");
  return steps;
}

}  // namespace

namespace detail {

void row_norms(Context& ctx, const Messages& X, const void* const* rows, const double* z, double* out_n) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    row_norms_impl<T>(ctx, X, reinterpret_cast<const T* const*>(rows), z, out_n);
  });
}

std::int64_t recenter(Context& ctx, const Messages& X, const void* const* rows, const RecenterParams& p, double* z) {
  return dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return recenter_impl<T>(ctx, X, reinterpret_cast<const T* const*>(rows), p, z);
  });
}

void to_double(Context& ctx, DType t, const void* in, std::int64_t count, double* out) {
  dispatch_float(t, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    convert_kernel<T><<<ctx.blocks(count, 256), 256, 0, ctx.stream()>>>(static_cast<const T*>(in), count, out);
    ctx.launched("convert_kernel");
  });
}

void from_double(Context& ctx, DType t, const double* in, std::int64_t count, void* out) {
  dispatch_float(t, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    convert_back_kernel<T><<<ctx.blocks(count, 256), 256, 0, ctx.stream()>>>(in, count, static_cast<T*>(out));
    ctx.launched("convert_back_kernel");
  });
}

}  // namespace detail

}  // namespace cuda
}  // namespace byzcore
