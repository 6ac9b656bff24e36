// The subset rules (MDA, SMEA, CAF, DnC) on the GPU: the squared distances from the CUDA Gram
// kernel (pairwise_distances_cuda.cu), the small n x n search on the host (subset_search.cpp,
// shared with the CPU backend), and the weighted mean of the chosen rows on the device.
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/counter_rng.h"
#include "byzcore/subset_search.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;
using i64 = std::int64_t;

// out[j] = sum_t w[t] rows[idx[t]][j], added in the order of idx (ascending, as on the CPU);
// w == nullptr: equal weights, the sum divided by m (as the CPU backend does).
template <class T>
__global__ void weighted_mean_kernel(const T* const* rows, const int* idx, const double* w, int m, i64 d, T* out) {
  for (i64 j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    double acc = 0;
    for (int t = 0; t < m; ++t) acc += (w ? w[t] : 1.0) * static_cast<double>(rows[idx[t]][j]);
    out[j] = static_cast<T>(w ? acc : acc / m);
  }
}

// finite[i] = 0 once a non-finite entry of row i is seen (every writer stores the same 0).
template <class T>
__global__ void finite_rows_kernel(const T* const* rows, i64 n, i64 d, int* finite) {
  for (i64 t = dev::global_thread(); t < n * d; t += dev::grid_threads())
    if (!dev::is_finite(rows[t / d][t % d])) finite[t / d] = 0;
}

// sub[i * b + q] = rows[i][idx[q]]: the subsample DnC works on, as a contiguous n x b block.
template <class T>
__global__ void gather_kernel(const T* const* rows, i64 n, const std::int64_t* idx, i64 b, T* sub) {
  for (i64 t = dev::global_thread(); t < n * b; t += dev::grid_threads()) sub[t] = rows[t / b][idx[t % b]];
}

template <class T>
std::vector<T> download(Context& ctx, const T* dev, std::size_t count) {
  std::vector<T> host(count);
  ctx.check(cudaMemcpyAsync(host.data(), dev, count * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()),
            "cudaMemcpyAsync (device to host)");
  ctx.check(cudaStreamSynchronize(ctx.stream()), "cudaStreamSynchronize");
  return host;
}

// The squared distances (and finiteness flags) of Y, on the host.
std::vector<double> host_distances(Context& ctx, const Messages& Y, const void* const* rows, std::vector<char>* finite) {
  double* D = ctx.alloc<double>(static_cast<std::size_t>(Y.n * Y.n));
  int* fin = finite ? ctx.alloc<int>(static_cast<std::size_t>(Y.n)) : nullptr;
  detail::squared_distances(ctx, Y, rows, D, fin);
  if (finite) {
    const std::vector<int> f = download(ctx, fin, static_cast<std::size_t>(Y.n));
    finite->assign(f.begin(), f.end());
  }
  return download(ctx, D, static_cast<std::size_t>(Y.n * Y.n));
}

void write_mean(Context& ctx, const Messages& X, const void* const* rows, const subset::Weights& w, void* out) {
  std::vector<int> idx;
  std::vector<double> wt;
  for (i64 i = 0; i < X.n; ++i)
    if (w[i] != 0) idx.push_back(static_cast<int>(i)), wt.push_back(w[i]);
  bool uniform = true;
  for (double v : wt) uniform = uniform && v == wt[0];
  const int* didx = ctx.upload(idx.data(), idx.size());
  const double* dw = uniform ? nullptr : ctx.upload(wt.data(), wt.size());
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    weighted_mean_kernel<T><<<ctx.blocks(X.d, 256), 256, 0, ctx.stream()>>>(
        reinterpret_cast<const T* const*>(rows), didx, dw, static_cast<int>(idx.size()), X.d, static_cast<T*>(out));
    ctx.launched("weighted_mean_kernel");
  });
}

template <class Search>
void distance_rule(const char* op, const Messages& X, void* out, Search&& search) {
  Context ctx(op, X.place);
  const void* const* rows = ctx.rows<void>(X);
  std::vector<char> finite;
  const std::vector<double> D = host_distances(ctx, X, rows, &finite);
  write_mean(ctx, X, rows, search(D.data(), finite), out);
}

template <class T>
void dnc_impl(Context& ctx, const Messages& X, const void* const* rows, i64 remove, i64 iters, i64 sub_dim,
              std::uint64_t seed, void* out) {
  const i64 n = X.n, b = std::min(sub_dim, X.d);
  const T* const* trows = reinterpret_cast<const T* const*>(rows);
  int* fin = ctx.alloc<int>(static_cast<std::size_t>(n));
  const std::vector<int> ones(static_cast<std::size_t>(n), 1);
  ctx.check(cudaMemcpyAsync(fin, ones.data(), ones.size() * sizeof(int), cudaMemcpyHostToDevice, ctx.stream()),
            "cudaMemcpyAsync (host to device)");
  finite_rows_kernel<T><<<ctx.blocks(n * X.d, 256), 256, 0, ctx.stream()>>>(trows, n, X.d, fin);
  ctx.launched("finite_rows_kernel");
  const std::vector<int> fin_host = download(ctx, fin, static_cast<std::size_t>(n));
  const std::vector<char> finite(fin_host.begin(), fin_host.end());
  std::int64_t* idx = ctx.alloc<std::int64_t>(static_cast<std::size_t>(b));
  T* sub = ctx.alloc<T>(static_cast<std::size_t>(n * b));
  Messages Y;
  Y.n = n, Y.d = b, Y.dtype = X.dtype, Y.place = X.place;
  for (i64 i = 0; i < n; ++i) Y.rows.push_back(sub + i * b);
  const void* const* yrows = ctx.rows<void>(Y);
  std::vector<char> good(static_cast<std::size_t>(n), 1), keep;
  for (i64 t = 0; t < iters; ++t) {
    rand_k_indices(X.d, b, counter_key(seed, static_cast<std::uint64_t>(t)), X.place, idx);
    gather_kernel<T><<<ctx.blocks(n * b, 256), 256, 0, ctx.stream()>>>(trows, n, idx, b, sub);
    ctx.launched("gather_kernel");
    const std::vector<double> D = host_distances(ctx, Y, yrows, nullptr);
    subset::dnc_round(D.data(), finite, n, remove, keep);
    for (i64 i = 0; i < n; ++i) good[i] = good[i] && keep[i];
  }
  i64 count = 0;
  for (char g : good) count += g;
  subset::Weights w(static_cast<std::size_t>(n), 0.0);
  for (i64 i = 0; i < n; ++i) w[i] = good[i] ? 1.0 / static_cast<double>(count) : 0.0;
  write_mean(ctx, X, rows, w, out);
}

}  // namespace

void mda(const Messages& X, std::int64_t f, void* out) {
  distance_rule("mda", X, out, [&](const double* D, const std::vector<char>&) { return subset::min_diameter(D, X.n, f); });
}

void smea(const Messages& X, std::int64_t f, void* out) {
  distance_rule("smea", X, out, [&](const double* D, const std::vector<char>& finite) {
    return subset::min_max_eigenvalue(D, finite, X.n, f);
  });
}

void caf(const Messages& X, std::int64_t f, void* out) {
  distance_rule("caf", X, out, [&](const double* D, const std::vector<char>& finite) {
    return subset::covariance_filter(D, finite, X.n, f);
  });
}

void dnc(const Messages& X, std::int64_t remove, std::int64_t iters, std::int64_t sub_dim, std::uint64_t seed,
         void* out) {
  Context ctx("dnc", X.place);
  const void* const* rows = ctx.rows<void>(X);
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dnc_impl<T>(ctx, X, rows, remove, iters, sub_dim, seed, out);
  });
}

}  // namespace cuda
}  // namespace byzcore
