// Bulyan: theta = n - 2f messages chosen by iterated Krum on the exact squared distances
// (byzcore/selection.h), then per coordinate the mean of the beta = theta - 2f values closest
// to the median of the chosen ones: MeaMed of the selection with 2f left out.
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/selection.h"
#include "cpu/distance_cpu.h"

namespace byzcore {
namespace cpu {

void bulyan(const Messages& X, std::int64_t f, void* out) {
  std::vector<double> D(static_cast<std::size_t>(X.n * X.n));
  squared_distances(X, D.data());
  Messages chosen = X;
  chosen.rows.clear();
  for (std::int64_t i : iterated_krum(D, X.n, f)) chosen.rows.push_back(X.rows[static_cast<std::size_t>(i)]);
  chosen.n = static_cast<std::int64_t>(chosen.rows.size());
  meamed(chosen, 2 * f, out);
}

}  // namespace cpu
}  // namespace byzcore
