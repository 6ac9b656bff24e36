// Smoothed Weiszfeld (RFA): start at the coordinate-wise median, then repeat
// w_i = a_i / max(nu, ||x_i - z||), z = sum w_i x_i / sum w_i until ||z_new - z|| <= tol ||z_new||
// or max_iter steps. The centre is kept in double on the device; each step is one fused pass
// over X (recenter_cuda.cu) and one 16-byte read-back to test convergence.
#include "byzcore/backends.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"

namespace byzcore {
namespace cuda {

std::int64_t geometric_median(const Messages& X, const std::vector<double>& weights, double nu, std::int64_t max_iter,
                              double tol, void* out) {
  detail::Context ctx("geometric_median", X.place);
  const void* const* rows = ctx.rows<void>(X);
  // The starting point: the coordinate-wise median, written straight into out.
  detail::rank_mean(ctx, X, rows, (X.n - 1) / 2, X.n / 2, out);
  if (max_iter == 0) return 0;
  double* z = ctx.alloc<double>(static_cast<std::size_t>(X.d));
  detail::to_double(ctx, X.dtype, out, X.d, z);
  detail::RecenterParams p;
  p.rule = detail::Recenter::weiszfeld;
  p.nu = nu;
  p.a = weights.empty() ? nullptr : ctx.upload(weights.data(), weights.size());
  p.max_iter = max_iter;
  p.tol = tol;
  const std::int64_t steps = detail::recenter(ctx, X, rows, p, z);
  detail::from_double(ctx, X.dtype, z, X.d, out);
  return steps;
}

}  // namespace cuda
}  // namespace byzcore
