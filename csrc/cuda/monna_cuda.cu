// MoNNA and CGE on the GPU: distances to the pivot (or norms) from the CUDA norm kernel, the
// n-sized choice on the host (byzcore/selection.h, as on the CPU), then the mean of the rows.
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/selection.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"

namespace byzcore {
namespace cuda {

namespace {

void nearest_mean(detail::Context& ctx, const Messages& X, const void* const* rows, const double* z, std::int64_t f,
                  std::int64_t pivot, void* out) {
  double* dist = ctx.alloc<double>(static_cast<std::size_t>(X.n));
  detail::row_norms(ctx, X, rows, z, dist);
  const std::vector<double> host = ctx.download(dist, static_cast<std::size_t>(X.n));
  if (pivot >= 0 && host[static_cast<std::size_t>(pivot)] != 0.0)
    fail("monna", "the pivot message holds NaN or Inf; MoNNA needs an honest pivot (pass pivot= a trusted message)");
  std::vector<int> idx;
  for (std::int64_t i : smallest_keys(host, X.n - f)) idx.push_back(static_cast<int>(i));
  detail::mean_of_rows(ctx, X, rows, ctx.upload(idx.data(), idx.size()), nullptr, static_cast<int>(idx.size()), out);
}

}  // namespace

void monna(const Messages& X, std::int64_t f, std::int64_t pivot, void* out) {
  detail::Context ctx("monna", X.place);
  double* z = ctx.alloc<double>(static_cast<std::size_t>(X.d));
  detail::to_double(ctx, X.dtype, X.rows[static_cast<std::size_t>(pivot)], X.d, z);
  nearest_mean(ctx, X, ctx.rows<void>(X), z, f, pivot, out);
}

void cge(const Messages& X, std::int64_t f, void* out) {
  detail::Context ctx("cge", X.place);
  nearest_mean(ctx, X, ctx.rows<void>(X), nullptr, f, -1, out);
}

}  // namespace cuda
}  // namespace byzcore
