// Plain coordinate-wise mean (the non-robust baseline): one thread per coordinate sums the n
// rows in double, so a warp reads 32 consecutive values of each row (coalesced). NaN/Inf
// propagate, as on the CPU.
#include <vector>

#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

template <class T>
__global__ void mean_kernel(const T* const* rows, std::int64_t n, std::int64_t d, T* out) {
  const double inv = 1.0 / static_cast<double>(n);
  for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    double acc = 0;
    std::int64_t i = 0;
    // Four independent loads in flight per thread.
    for (; i + 4 <= n; i += 4) {
      const double a = static_cast<double>(__ldg(rows[i] + j)), b = static_cast<double>(__ldg(rows[i + 1] + j));
      const double c = static_cast<double>(__ldg(rows[i + 2] + j)), e = static_cast<double>(__ldg(rows[i + 3] + j));
      acc += a;
      acc += b;
      acc += c;
      acc += e;
    }
    for (; i < n; ++i) acc += static_cast<double>(__ldg(rows[i] + j));
    out[j] = static_cast<T>(acc * inv);
  }
}

}  // namespace

void mean(const Messages& X, void* out) {
  detail::Context ctx("mean", X.place);
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    mean_kernel<T><<<ctx.blocks(X.d, 256), 256, 0, ctx.stream()>>>(ctx.rows<T>(X), X.n, X.d, static_cast<T*>(out));
    ctx.launched("mean_kernel");
  });
}

void weighted_mean(const Messages& X, const std::vector<double>& weights, void* out) {
  detail::Context ctx("mean", X.place);
  std::vector<int> all(static_cast<std::size_t>(X.n));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  detail::mean_of_rows(ctx, X, ctx.rows<void>(X), ctx.upload(all.data(), all.size()),
                       ctx.upload(weights.data(), weights.size()), static_cast<int>(X.n), out);
}

}  // namespace cuda
}  // namespace byzcore
