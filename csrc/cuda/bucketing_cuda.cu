// Bucket means for bucketing: bucket b averages the messages perm[b*s .. min(n, (b+1)*s)).
// The row table is uploaded already permuted, so a bucket is a run of consecutive pointers.
#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

template <class T>
__global__ void bucket_kernel(const T* const* rows, std::int64_t n, std::int64_t d, std::int64_t s,
                              std::int64_t buckets, T* out) {
  for (std::int64_t b = blockIdx.y; b < buckets; b += gridDim.y) {
    const std::int64_t first = b * s, last = min(n, first + s);
    const double inv = 1.0 / static_cast<double>(last - first);
    for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
      double acc = 0;
      for (std::int64_t i = first; i < last; ++i) acc += static_cast<double>(rows[i][j]);
      out[b * d + j] = static_cast<T>(acc * inv);
    }
  }
}

}  // namespace

void bucket_means(const Messages& X, const std::vector<std::int64_t>& perm, std::int64_t s, void* out) {
  detail::Context ctx("bucketing", X.place);
  std::vector<const void*> permuted(perm.size());
  for (std::size_t t = 0; t < perm.size(); ++t) permuted[t] = X.rows[static_cast<std::size_t>(perm[t])];
  const void* const* rows = ctx.upload(permuted.data(), permuted.size());
  const std::int64_t buckets = (X.n + s - 1) / s;
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const std::int64_t xblocks = std::min<std::int64_t>((X.d + 255) / 256, 4096);
    const dim3 grid(static_cast<unsigned>(xblocks), detail::grid_rows(buckets));
    bucket_kernel<T><<<grid, 256, 0, ctx.stream()>>>(reinterpret_cast<const T* const*>(rows), X.n, X.d, s, buckets,
                                                     static_cast<T*>(out));
    ctx.launched("bucket_kernel");
  });
}

}  // namespace cuda
}  // namespace byzcore
