// MoNNA and CGE: the mean of the n - f messages nearest to a point (the pivot message, or
// zero), nearest by (exact distance in double, index); a non-finite message is at +inf.
#include <cmath>
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/selection.h"
#include "cpu/rows_cpu.h"

namespace byzcore {
namespace cpu {

void monna(const Messages& X, std::int64_t f, std::int64_t pivot, void* out) {
  std::vector<double> dist;
  message_distances(X, pivot, dist);
  // A finite pivot is at distance exactly 0 from itself; anything else means a NaN/Inf in it.
  if (dist[static_cast<std::size_t>(pivot)] != 0.0)
    fail("monna", "the pivot message holds NaN or Inf; MoNNA needs an honest pivot (pass pivot= a trusted message)");
  mean_of_rows(X, smallest_keys(dist, X.n - f), {}, out);
}

void cge(const Messages& X, std::int64_t f, void* out) {
  std::vector<double> norms;
  message_norms(X, nullptr, norms);
  mean_of_rows(X, smallest_keys(norms, X.n - f), {}, out);
}

}  // namespace cpu
}  // namespace byzcore
