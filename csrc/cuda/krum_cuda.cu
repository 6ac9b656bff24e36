// Krum family: scores from the squared-distance matrix (pairwise_distances_cuda.cu), then the
// selection, all on the device. score(i) = sum of the n - f - 2 smallest distances from x_i
// to the others, found per row by block radix selection; krum copies the best row (ties: lowest
// index); multi_krum averages the m best (ranked by (score, index)), added in index order.
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

// One block per message: sum of its k smallest distances to the other messages.
__global__ void __launch_bounds__(kThreads) scores_kernel(const double* D, int n, int k, double* scores) {
  __shared__ dev::SelectShared sel;
  __shared__ double shs[kThreads / dev::kWarp];
  __shared__ long long shc[kThreads / dev::kWarp];
  for (int i = blockIdx.x; i < n; i += gridDim.x) {
    const double* row = D + static_cast<std::int64_t>(i) * n;
    auto get = [&](std::int64_t j, unsigned long long* key) {
      *key = dev::distance_key(row[j]);
      return j != i;
    };
    const unsigned long long tk = dev::block_select(n, k - 1, get, sel);
    // k smallest = everything below the k-th value, plus as many copies of it as needed.
    double s = 0;
    long long below = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const double v = row[j];
      if (j != i && dev::distance_key(v) < tk) {
        s += v;
        ++below;
      }
    }
    s = dev::block_sum(s, shs);
    below = dev::block_sum(below, shc);
    if (threadIdx.x == 0) {
      const double t = __longlong_as_double(static_cast<long long>(tk));
      scores[i] = s + static_cast<double>(k - below) * t;
    }
  }
}

// chosen[i] = 1 if (score_i, i) is among the m smallest pairs (score, index).
__global__ void rank_kernel(const double* scores, int n, int m, int* chosen) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const double si = scores[i];
    int rank = 0;
    for (int j = 0; j < n; ++j) {
      const double sj = scores[j];
      rank += (sj < si) || (sj == si && j < i);
    }
    chosen[i] = rank < m;
  }
}

// The chosen indices in ascending order (the CPU adds the rows in that order). One block.
constexpr int kListThreads = 1024;
__global__ void __launch_bounds__(kListThreads) list_kernel(const int* chosen, int n, int* best) {
  __shared__ int sh[kListThreads / dev::kWarp];
  int base = 0;
  for (int i0 = 0; i0 < n; i0 += blockDim.x) {
    const int i = i0 + threadIdx.x;
    const int c = i < n ? chosen[i] : 0;
    int total;
    const int pos = dev::block_exclusive_scan(c, sh, &total);
    if (c) best[base + pos] = i;
    base += total;
  }
}

// out[j] = mean over the m rows listed in idx (one list shared by all coordinates), weighted
// by w when given (a weight-0 row takes no part).
template <class T>
__global__ void mean_of_rows_kernel(const T* const* rows, const int* idx, const double* w, int m, std::int64_t d,
                                    T* out) {
  double total = m;
  if (w) {
    total = 0;
    for (int t = 0; t < m; ++t) total += w[t];
  }
  const double inv = 1.0 / total;
  for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    double acc = 0;
    if (w) {
      for (int t = 0; t < m; ++t)
        if (w[t] != 0.0) acc += w[t] * static_cast<double>(rows[idx[t]][j]);
    } else {
      for (int t = 0; t < m; ++t) acc += static_cast<double>(rows[idx[t]][j]);
    }
    out[j] = static_cast<T>(m == 1 && !w ? acc : acc * inv);
  }
}

template <class T>
__global__ void score_output_kernel(const double* scores, int n, T* out) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    out[i] = static_cast<T>(scores[i]);
}

// Scores (double, device) of the messages; rows stays valid for the caller.
double* compute_scores(Context& ctx, const Messages& X, const void* const* rows, std::int64_t f) {
  const int n = static_cast<int>(X.n);
  double* D = ctx.alloc<double>(static_cast<std::size_t>(X.n * X.n));
  detail::squared_distances(ctx, X, rows, D);
  double* scores = ctx.alloc<double>(n);
  scores_kernel<<<static_cast<unsigned>(std::min(n, 65535)), kThreads, 0, ctx.stream()>>>(
      D, n, static_cast<int>(X.n - f - 2), scores);
  ctx.launched("scores_kernel");
  return scores;
}

// Mean of the m best-scored messages (m = 1: Krum itself).
void select_mean(Context& ctx, const Messages& X, std::int64_t f, std::int64_t m, void* out) {
  const void* const* rows = ctx.rows<void>(X);
  const double* scores = compute_scores(ctx, X, rows, f);
  const int n = static_cast<int>(X.n);
  int* chosen = ctx.alloc<int>(static_cast<std::size_t>(n));
  int* best = ctx.alloc<int>(static_cast<std::size_t>(m));
  rank_kernel<<<ctx.blocks(n, 128), 128, 0, ctx.stream()>>>(scores, n, static_cast<int>(m), chosen);
  ctx.launched("rank_kernel");
  list_kernel<<<1, kListThreads, 0, ctx.stream()>>>(chosen, n, best);
  ctx.launched("list_kernel");
  detail::mean_of_rows(ctx, X, rows, best, nullptr, static_cast<int>(m), out);
}

}  // namespace

namespace detail {
void mean_of_rows(Context& ctx, const Messages& X, const void* const* rows, const int* idx, const double* w,
                  int m, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    mean_of_rows_kernel<T><<<ctx.blocks(X.d, 256), 256, 0, ctx.stream()>>>(
        reinterpret_cast<const T* const*>(rows), idx, w, m, X.d, static_cast<T*>(out));
    ctx.launched("mean_of_rows_kernel");
  });
}
}  // namespace detail

void krum_scores(const Messages& X, std::int64_t f, void* out) {
  Context ctx("krum_scores", X.place);
  const double* scores = compute_scores(ctx, X, ctx.rows<void>(X), f);
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    score_output_kernel<T><<<ctx.blocks(X.n, 256), 256, 0, ctx.stream()>>>(scores, static_cast<int>(X.n), static_cast<T*>(out));
    ctx.launched("score_output_kernel");
  });
}

void krum(const Messages& X, std::int64_t f, void* out) {
  Context ctx("krum", X.place);
  select_mean(ctx, X, f, 1, out);
}

void multi_krum(const Messages& X, std::int64_t f, std::int64_t m, void* out) {
  Context ctx("multi_krum", X.place);
  select_mean(ctx, X, f, m, out);
}

}  // namespace cuda
}  // namespace byzcore
