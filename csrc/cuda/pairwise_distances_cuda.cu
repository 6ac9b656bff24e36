// Pairwise squared distances through the Gram matrix: ||x_i||^2 + ||x_j||^2 - 2 <x_i, x_j>.
// A tiled kernel computes the upper triangle of G = X X^T in double on the FP64 tensor cores
// (64 x 64 output tiles, inputs staged in shared memory as double so every product is exact
// for float32), split along d so that small n still fills the GPU; each split writes its own
// partial Gram matrix and a finishing kernel adds them in a fixed order (reproducible).
// Like the CPU kernel, the rows are first centred on one finite message c (the first finite
// one among the first four; none: no centring), so the norms are at the scale of the
// distances rather than of the messages. Cancellation guard: where the Gram formula leaves
// less than kGuard of ||x_i - c||^2 + ||x_j - c||^2, the pair is recomputed directly as
// sum (x_i - x_j)^2 in double.
#include <mma.h>

#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;

constexpr int kTile = 64;      // output rows/cols per block
constexpr int kK = 32;         // depth of one staged slice
constexpr int kLd = kK + 4;    // staged row stride in doubles: rows stay 32-byte aligned for WMMA
constexpr int kThreads = 128;  // 4 warps, a 32 x 32 quarter of the tile each
constexpr double kGuard = 1.0 / 1024;

// The centre is the first of rows 0..3 whose entries are all finite (none: no centring).
// non_finite[i] (zeroed first) becomes 1 where row i holds a NaN or Inf; the whole grid scans
// the four rows (one block alone would crawl through them at a fraction of the bandwidth).
constexpr int kCenterRows = 4;
template <class T>
__global__ void flag_non_finite_kernel(const T* const* rows, int n, std::int64_t d, int* non_finite) {
  const int m = min(n, kCenterRows);
  for (std::int64_t e = dev::global_thread(); e < m * d; e += dev::grid_threads()) {
    const int i = static_cast<int>(e / d);
    if (!dev::is_finite(rows[i][e - i * d])) non_finite[i] = 1;  // every writer stores the same 1
  }
}
__device__ __forceinline__ int pick_center(const int* non_finite, int n) {
  for (int i = 0; i < min(n, kCenterRows); ++i)
    if (!non_finite[i]) return i;
  return -1;
}

template <class T>
__global__ void __launch_bounds__(kThreads) gram_kernel(const T* const* rows, int n, std::int64_t d, int tiles,
                                                        std::int64_t chunk, const int* non_finite, double* partial) {
  using namespace nvcuda;
  // Two staged slices [row][k] (A: tile I, B: tile J), later reused for the 64 x 64 result.
  __shared__ __align__(32) double smem[2 * kTile * kLd];
  double* As = smem;
  double* Bs = smem + kTile * kLd;
  // Block -> tile pair (I, J), I <= J, in row-major order of the upper triangle.
  int t = blockIdx.x, I = 0;
  while (t >= tiles - I) {
    t -= tiles - I;
    ++I;
  }
  const int J = I + t;
  const bool diagonal = I == J;  // B = A: load once
  const double* Bsrc = diagonal ? As : Bs;
  const std::int64_t k_begin = static_cast<std::int64_t>(blockIdx.y) * chunk;
  const std::int64_t k_end = min(d, k_begin + chunk);
  // Loader mapping: a warp reads 32 consecutive elements of one row (coalesced); thread
  // (lr, lk) stages rows lr, lr + 4, ... of both tiles.
  const int lk = threadIdx.x % kK, lr = threadIdx.x / kK;
  constexpr int kRowsPerThread = kTile / (kThreads / kK);
  __shared__ const T* tile_row[2][kTile];  // nullptr past n (and for B on the diagonal)
  for (int r = threadIdx.x; r < kTile; r += kThreads) {
    tile_row[0][r] = I * kTile + r < n ? rows[I * kTile + r] : nullptr;
    tile_row[1][r] = (!diagonal && J * kTile + r < n) ? rows[J * kTile + r] : nullptr;
  }
  __syncthreads();
  const int ci = pick_center(non_finite, n);
  const T* crow = ci >= 0 ? rows[ci] : nullptr;
  T ra[kRowsPerThread], rb[kRowsPerThread], rc;
  auto fetch = [&](std::int64_t k0) {
    const std::int64_t k = k0 + lk;
    const bool kin = k < k_end;
    rc = (kin && crow) ? crow[k] : T(0);
#pragma unroll
    for (int q = 0; q < kRowsPerThread; ++q) {
      const T* a = tile_row[0][lr + q * (kThreads / kK)];
      const T* b = tile_row[1][lr + q * (kThreads / kK)];
      ra[q] = (kin && a) ? a[k] : T(0);
      rb[q] = (kin && b) ? b[k] : T(0);
    }
  };
  const int warp = threadIdx.x / dev::kWarp;
  const int wy = warp / 2, wx = warp % 2;  // this warp's 32 x 32 quarter
  wmma::fragment<wmma::accumulator, 8, 8, 4, double> acc[4][4];
#pragma unroll
  for (int p = 0; p < 4; ++p)
#pragma unroll
    for (int q = 0; q < 4; ++q) wmma::fill_fragment(acc[p][q], 0.0);

  if (k_begin < k_end) fetch(k_begin);
  for (std::int64_t k0 = k_begin; k0 < k_end; k0 += kK) {
    __syncthreads();  // the previous slice has been multiplied
    const bool kin = k0 + lk < k_end;
    const double c = static_cast<double>(rc);
#pragma unroll
    for (int q = 0; q < kRowsPerThread; ++q) {
      const int r = lr + q * (kThreads / kK);
      // Zero rows past n and columns past the chunk: they add nothing to any product.
      As[r * kLd + lk] = (kin && tile_row[0][r]) ? static_cast<double>(ra[q]) - c : 0.0;
      if (!diagonal) Bs[r * kLd + lk] = (kin && tile_row[1][r]) ? static_cast<double>(rb[q]) - c : 0.0;
    }
    __syncthreads();
    if (k0 + kK < k_end) fetch(k0 + kK);  // in flight while the tensor cores work
#pragma unroll
    for (int kk = 0; kk < kK; kk += 4) {
      wmma::fragment<wmma::matrix_a, 8, 8, 4, double, wmma::row_major> a[4];
      wmma::fragment<wmma::matrix_b, 8, 8, 4, double, wmma::col_major> b[4];
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        wmma::load_matrix_sync(a[p], As + (wy * 32 + p * 8) * kLd + kk, kLd);
        wmma::load_matrix_sync(b[p], Bsrc + (wx * 32 + p * 8) * kLd + kk, kLd);  // B(k, j) = row j, col k
      }
#pragma unroll
      for (int p = 0; p < 4; ++p)
#pragma unroll
        for (int q = 0; q < 4; ++q) wmma::mma_sync(acc[p][q], a[p], b[q], acc[p][q]);
    }
  }
  __syncthreads();
  double* C = smem;  // 64 x 64, row-major
#pragma unroll
  for (int p = 0; p < 4; ++p)
#pragma unroll
    for (int q = 0; q < 4; ++q)
      wmma::store_matrix_sync(C + (wy * 32 + p * 8) * kTile + wx * 32 + q * 8, acc[p][q], kTile, wmma::mem_row_major);
  __syncthreads();
  double* P = partial + static_cast<std::int64_t>(blockIdx.y) * n * n;
  for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) {
    const int i = I * kTile + e / kTile, j = J * kTile + e % kTile;
    if (i < n && j < n) P[static_cast<std::int64_t>(i) * n + j] = C[e];
  }
}

// Squared norms from the diagonal of the partial Gram matrices; finite[i] (if given) = 1 for
// a message whose entries are all finite.
__global__ void norms_kernel(const double* partial, int n, int splits, double* norms, int* finite) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    double s = 0;
    for (int q = 0; q < splits; ++q) s += partial[(static_cast<std::int64_t>(q) * n + i) * n + i];
    norms[i] = s;
    if (finite) finite[i] = dev::is_finite(s);
  }
}

// D from the Gram entries; pairs that lose too much to cancellation go to a list.
__global__ void finish_kernel(const double* partial, const double* norms, int n, int splits, double* D, int2* redo,
                              unsigned int* redo_count) {
  const std::int64_t total = static_cast<std::int64_t>(n) * n;
  for (std::int64_t e = dev::global_thread(); e < total; e += dev::grid_threads()) {
    const int i = static_cast<int>(e / n), j = static_cast<int>(e % n);
    if (i == j) {
      D[e] = 0.0;
      continue;
    }
    const int a = min(i, j), b = max(i, j);
    const double na = norms[a], nb = norms[b];
    if (!dev::is_finite(na) || !dev::is_finite(nb)) {
      D[e] = INFINITY;  // a message with a non-finite entry is infinitely far from the others
      continue;
    }
    double g = 0;
    for (int q = 0; q < splits; ++q) g += partial[(static_cast<std::int64_t>(q) * n + a) * n + b];
    const double d2 = na + nb - 2.0 * g;
    if (d2 <= kGuard * (na + nb)) {
      if (i < j) redo[atomicAdd(redo_count, 1u)] = make_int2(i, j);
      continue;  // written by redo_kernel
    }
    D[e] = d2;
  }
}

constexpr int kRedoThreads = 256;

template <class T>
__global__ void __launch_bounds__(kRedoThreads)
    redo_kernel(const T* const* rows, int n, std::int64_t d, const int2* redo, const unsigned int* redo_count,
                double* D) {
  __shared__ double sh[kRedoThreads / dev::kWarp];
  const unsigned int count = *redo_count;
  for (unsigned int p = blockIdx.x; p < count; p += gridDim.x) {
    const int2 ij = redo[p];
    const T* xi = rows[ij.x];
    const T* xj = rows[ij.y];
    double s = 0;
    for (std::int64_t k = threadIdx.x; k < d; k += blockDim.x) {
      const double diff = static_cast<double>(xi[k]) - static_cast<double>(xj[k]);
      s = fma(diff, diff, s);
    }
    s = dev::block_sum(s, sh);
    if (threadIdx.x == 0) {
      D[static_cast<std::int64_t>(ij.x) * n + ij.y] = s;
      D[static_cast<std::int64_t>(ij.y) * n + ij.x] = s;
    }
  }
}

template <class T>
__global__ void output_kernel(const double* D, std::int64_t total, bool squared, T* out) {
  for (std::int64_t e = dev::global_thread(); e < total; e += dev::grid_threads()) {
    const double v = D[e];
    out[e] = static_cast<T>(squared ? v : sqrt(v));
  }
}

template <class T>
void squared_distances_impl(Context& ctx, const Messages& X, const T* const* rows, double* D, int* finite) {
  if (X.n > (1 << 30) / kTile)
    throw std::invalid_argument(std::string("[") + ctx.op() + "] too many messages for the CUDA distance kernel");
  const int n = static_cast<int>(X.n);
  const int tiles = (n + kTile - 1) / kTile;
  const std::int64_t pairs = static_cast<std::int64_t>(tiles) * (tiles + 1) / 2;
  // Split d so the blocks fill whole waves of the GPU (pairs * splits close to a multiple of
  // the resident blocks: a last, mostly idle wave costs as much as a full one), each split over
  // at least 64 slices, the partial Gram matrices under 512 MiB.
  const std::int64_t nn = static_cast<std::int64_t>(n) * n;
  int resident = 1;
  ctx.check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, gram_kernel<T>, kThreads, 0),
            "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const std::int64_t wave = std::int64_t(ctx.sm_count()) * std::max(1, resident);
  std::int64_t max_splits = (X.d + 64 * kK - 1) / (64 * kK);
  max_splits = std::min<std::int64_t>(max_splits, std::max<std::int64_t>(1, (std::int64_t(512) << 20) / (nn * 8)));
  max_splits = std::max<std::int64_t>(1, std::min<std::int64_t>({max_splits, 65535, 4 * wave}));
  std::int64_t splits = 1;
  double best = -1;
  for (std::int64_t s = 1; s <= max_splits; ++s) {
    const std::int64_t blocks = pairs * s, waves = (blocks + wave - 1) / wave;
    const double use = static_cast<double>(blocks) / static_cast<double>(waves * wave);
    if (use > best + 0.02) {  // a clearly fuller last wave; otherwise fewer partial matrices
      best = use;
      splits = s;
    }
    if (blocks >= 4 * wave) break;
  }
  std::int64_t chunk = (X.d + splits - 1) / splits;
  chunk = (chunk + kK - 1) / kK * kK;
  splits = (X.d + chunk - 1) / chunk;

  double* partial = ctx.alloc<double>(static_cast<std::size_t>(splits * nn));
  double* norms = ctx.alloc<double>(n);
  int2* redo = ctx.alloc<int2>(static_cast<std::size_t>(std::max<std::int64_t>(1, nn / 2)));
  unsigned int* redo_count = ctx.alloc<unsigned int>(1);
  ctx.memset(redo_count, sizeof(unsigned int));
  int* non_finite = ctx.alloc<int>(kCenterRows);
  ctx.memset(non_finite, kCenterRows * sizeof(int));
  flag_non_finite_kernel<T>
      <<<ctx.blocks(std::min(n, kCenterRows) * X.d, 256), 256, 0, ctx.stream()>>>(rows, n, X.d, non_finite);
  ctx.launched("flag_non_finite_kernel");

  gram_kernel<T><<<dim3(static_cast<unsigned>(pairs), static_cast<unsigned>(splits)), kThreads, 0, ctx.stream()>>>(
      rows, n, X.d, tiles, chunk, non_finite, partial);
  ctx.launched("gram_kernel");
  norms_kernel<<<ctx.blocks(n, 256), 256, 0, ctx.stream()>>>(partial, n, static_cast<int>(splits), norms, finite);
  ctx.launched("norms_kernel");
  finish_kernel<<<ctx.blocks(nn, 256), 256, 0, ctx.stream()>>>(partial, norms, n, static_cast<int>(splits), D, redo,
                                                               redo_count);
  ctx.launched("finish_kernel");
  // The pair count stays on the device: blocks loop over however many pairs were listed.
  redo_kernel<T>
      <<<static_cast<unsigned>(ctx.sm_count()) * 4, kRedoThreads, 0, ctx.stream()>>>(rows, n, X.d, redo, redo_count, D);
  ctx.launched("redo_kernel");
}

}  // namespace

namespace detail {
void squared_distances(Context& ctx, const Messages& X, const void* const* rows, double* D, int* finite) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    squared_distances_impl<T>(ctx, X, reinterpret_cast<const T* const*>(rows), D, finite);
  });
}
}  // namespace detail

void pairwise_distances(const Messages& X, bool squared, void* out) {
  Context ctx("pairwise_distances", X.place);
  const std::int64_t nn = X.n * X.n;
  double* D = ctx.alloc<double>(static_cast<std::size_t>(nn));
  detail::squared_distances(ctx, X, ctx.rows<void>(X), D);
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    output_kernel<T><<<ctx.blocks(nn, 256), 256, 0, ctx.stream()>>>(D, nn, squared, static_cast<T*>(out));
    ctx.launched("output_kernel");
  });
}

}  // namespace cuda
}  // namespace byzcore
