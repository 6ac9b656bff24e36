// Bulyan on the GPU: the squared distances from the CUDA Gram kernel, the n x n iterated-Krum
// search on the host (byzcore/selection.h, the CPU's code), then the MeaMed kernel on the
// chosen rows leaving 2f out.
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/selection.h"
#include "cuda/device/context.cuh"
#include "cuda/device/internal.cuh"

namespace byzcore {
namespace cuda {

void bulyan(const Messages& X, std::int64_t f, void* out) {
  detail::Context ctx("bulyan", X.place);
  const auto nn = static_cast<std::size_t>(X.n * X.n);
  double* D = ctx.alloc<double>(nn);
  detail::squared_distances(ctx, X, ctx.rows<void>(X), D);
  const std::vector<double> host = ctx.download(D, nn);
  Messages chosen = X;
  chosen.rows.clear();
  for (std::int64_t i : iterated_krum(host, X.n, f)) chosen.rows.push_back(X.rows[static_cast<std::size_t>(i)]);
  chosen.n = static_cast<std::int64_t>(chosen.rows.size());
  detail::meamed(ctx, chosen, ctx.rows<void>(chosen), 2 * f, out);
}

}  // namespace cuda
}  // namespace byzcore
