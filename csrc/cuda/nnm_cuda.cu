// Nearest-neighbour mixing: row i of the result is the mean of the m = n - f messages nearest
// to x_i (itself included), nearest by (squared distance, index). As on the CPU, a message
// holding a non-finite entry is infinitely far from all: its neighbours are the finite
// messages, lowest indices first (then the non-finite ones if too few are finite). Per row, a block radix-selects
// the m-th smallest distance and lists the chosen indices in index order; a second kernel
// averages the listed rows, a block reading each coordinate tile once into L1 for all rows.
#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/select.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    neighbours_kernel(const double* D, const int* finite, int n, int m, int* nb) {
  __shared__ dev::SelectShared sel;
  __shared__ int scan_sh[kThreads / dev::kWarp];
  __shared__ int base_less, base_tie;
  for (int i = blockIdx.x; i < n; i += gridDim.x) {
    const double* row = D + static_cast<std::int64_t>(i) * n;
    const bool self_finite = finite[i] != 0;
    auto key_of = [&](std::int64_t j) {
      return self_finite ? dev::distance_key(row[j]) : dev::distance_key(finite[j] ? 0.0 : INFINITY);
    };
    auto get = [&](std::int64_t j, unsigned long long* key) {
      *key = key_of(j);
      return true;
    };
    const unsigned long long tk = dev::block_select(n, m - 1, get, sel);
    // Chosen: every j below the threshold, and the lowest-indexed copies of it. Count those
    // below first, then walk j in order, so ties go to the lowest indices.
    int below = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) below += key_of(j) < tk;
    below = dev::block_sum(below, scan_sh);
    const int ties_wanted = m - below;
    if (threadIdx.x == 0) {
      base_less = 0;
      base_tie = 0;
    }
    __syncthreads();
    int* out = nb + static_cast<std::int64_t>(i) * m;
    for (int j0 = 0; j0 < n; j0 += blockDim.x) {
      const int j = j0 + threadIdx.x;
      const unsigned long long key = j < n ? key_of(j) : ~0ull;
      const int is_less = j < n && key < tk, is_tie = j < n && key == tk;
      int tot_less, tot_tie;
      const int ex_less = dev::block_exclusive_scan(is_less, scan_sh, &tot_less);
      const int ex_tie = dev::block_exclusive_scan(is_tie, scan_sh, &tot_tie);
      const int bl = base_less, bt = base_tie;
      const int tie_rank = bt + ex_tie;
      if (is_less || (is_tie && tie_rank < ties_wanted)) out[bl + ex_less + min(tie_rank, ties_wanted)] = j;
      __syncthreads();
      if (threadIdx.x == 0) {
        base_less = bl + tot_less;
        base_tie = bt + tot_tie;
      }
      __syncthreads();
    }
  }
}

// out[i][j] = mean over nb[i][0..m) of x[.][j]. A block covers 32 coordinates x 8 rows at a time,
// so the x values of a tile are shared through L1 by all the rows that need them.
template <class T>
__global__ void mix_kernel(const T* const* rows, const int* nb, int n, int m, std::int64_t d, T* out) {
  const double inv = 1.0 / m;
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= d) return;
  for (int i = blockIdx.y * blockDim.y + threadIdx.y; i < n; i += gridDim.y * blockDim.y) {
    const int* list = nb + static_cast<std::int64_t>(i) * m;
    double acc = 0;
    for (int t = 0; t < m; ++t) acc += static_cast<double>(rows[list[t]][j]);
    out[static_cast<std::int64_t>(i) * d + j] = static_cast<T>(m == 1 ? acc : acc * inv);
  }
}

}  // namespace

void nnm(const Messages& X, std::int64_t f, void* out) {
  Context ctx("nnm", X.place);
  const int n = static_cast<int>(X.n), m = static_cast<int>(X.n - f);
  const void* const* rows = ctx.rows<void>(X);
  double* D = ctx.alloc<double>(static_cast<std::size_t>(X.n * X.n));
  int* finite = ctx.alloc<int>(static_cast<std::size_t>(n));
  detail::squared_distances(ctx, X, rows, D, finite);
  int* nb = ctx.alloc<int>(static_cast<std::size_t>(X.n * m));
  neighbours_kernel<<<static_cast<unsigned>(std::min(n, 65535)), kThreads, 0, ctx.stream()>>>(D, finite, n, m, nb);
  ctx.launched("neighbours_kernel");
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const dim3 block(32, 8);
    const std::int64_t xblocks = (X.d + 31) / 32;
    if (xblocks > 0x7fffffff) throw std::invalid_argument("[nnm] messages too long for the CUDA kernel");
    const dim3 grid(static_cast<unsigned>(xblocks), std::min<unsigned>(detail::grid_rows((n + 7) / 8), 64u));
    mix_kernel<T><<<grid, block, 0, ctx.stream()>>>(reinterpret_cast<const T* const*>(rows), nb, n, m, X.d,
                                                    static_cast<T*>(out));
    ctx.launched("mix_kernel");
  });
}

}  // namespace cuda
}  // namespace byzcore
