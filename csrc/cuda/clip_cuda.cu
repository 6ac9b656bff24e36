// Norm clipping of each message, ARC, and centered clipping (Karimireddy et al. 2021):
// v <- v + mean_i clip(x_i - v, tau), iters times, from the given centre or zero. A message
// holding a non-finite entry is infinitely far from any centre, so it clips to zero.
#include <algorithm>
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/selection.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

// scale[i] = min(1, threshold / ||x_i||): 0 for a non-finite row and for threshold 0 (as on
// the CPU, even when the norm underflowed to zero).
__global__ void clip_scale_kernel(const double* norm, std::int64_t n, double threshold, double* scale) {
  for (std::int64_t i = dev::global_thread(); i < n; i += dev::grid_threads()) {
    const double v = norm[i];
    scale[i] = (!dev::is_finite(v) || threshold == 0.0) ? 0.0 : (v <= threshold ? 1.0 : threshold / v);
  }
}

template <class T>
__global__ void scale_rows_kernel(const T* const* rows, const double* scale, std::int64_t n, std::int64_t d, T* out) {
  for (std::int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const double s = scale[i];
    const T* x = rows[i];
    T* o = out + i * d;
    for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads())
      o[j] = s == 0.0 ? T(0) : (s == 1.0 ? x[j] : static_cast<T>(static_cast<double>(x[j]) * s));
  }
}

void scale_rows(detail::Context& ctx, const Messages& X, const void* const* rows, const double* scale, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const std::int64_t xblocks = std::min<std::int64_t>((X.d + 255) / 256, 4096);
    const dim3 grid(static_cast<unsigned>(xblocks), detail::grid_rows(X.n));
    scale_rows_kernel<T><<<grid, 256, 0, ctx.stream()>>>(reinterpret_cast<const T* const*>(rows), scale, X.n, X.d,
                                                         static_cast<T*>(out));
    ctx.launched("scale_rows_kernel");
  });
}

}  // namespace

void clip(const Messages& X, double threshold, void* out) {
  detail::Context ctx("clip", X.place);
  const void* const* rows = ctx.rows<void>(X);
  double* norm = ctx.alloc<double>(static_cast<std::size_t>(X.n));
  double* scale = ctx.alloc<double>(static_cast<std::size_t>(X.n));
  detail::row_norms(ctx, X, rows, nullptr, norm);
  clip_scale_kernel<<<ctx.blocks(X.n, 256), 256, 0, ctx.stream()>>>(norm, X.n, threshold, scale);
  ctx.launched("clip_scale_kernel");
  scale_rows(ctx, X, rows, scale, out);
}

// ARC: the norms on the GPU, the threshold (the largest norm outside the floor(2f(n-f)/n)
// largest) on the host as on the CPU, then the same clipping kernels.
void arc(const Messages& X, std::int64_t f, void* out) {
  detail::Context ctx("arc", X.place);
  const void* const* rows = ctx.rows<void>(X);
  const auto n = static_cast<std::size_t>(X.n);
  double* norm = ctx.alloc<double>(n);
  double* scale = ctx.alloc<double>(n);
  detail::row_norms(ctx, X, rows, nullptr, norm);
  std::vector<double> sorted = ctx.download(norm, n);
  const auto keep = static_cast<std::ptrdiff_t>(X.n - arc_clipped(X.n, f) - 1);
  std::nth_element(sorted.begin(), sorted.begin() + keep, sorted.end());
  clip_scale_kernel<<<ctx.blocks(X.n, 256), 256, 0, ctx.stream()>>>(norm, X.n, sorted[static_cast<std::size_t>(keep)], scale);
  ctx.launched("clip_scale_kernel");
  scale_rows(ctx, X, rows, scale, out);
}

void centered_clipping(const Messages& X, double tau, const void* center, std::int64_t iters, void* out) {
  detail::Context ctx("centered_clipping", X.place);
  const void* const* rows = ctx.rows<void>(X);
  double* v = ctx.alloc<double>(static_cast<std::size_t>(X.d));
  if (center) detail::to_double(ctx, X.dtype, center, X.d, v);
  else ctx.memset(v, static_cast<std::size_t>(X.d) * sizeof(double));
  detail::RecenterParams p;
  p.rule = detail::Recenter::centered_clipping;
  p.tau = tau;
  p.max_iter = iters;
  p.tol = -1;  // a fixed number of steps: no read-back, no synchronisation
  detail::recenter(ctx, X, rows, p, v);
  detail::from_double(ctx, X.dtype, v, X.d, out);
}

}  // namespace cuda
}  // namespace byzcore
