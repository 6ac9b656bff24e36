#include <numeric>
#include <vector>

#include "byzcore/backends.h"
#include "cpu/cpu_common.h"
#include "cpu/rows_cpu.h"

namespace byzcore {
namespace cpu {

// The plain mean is the unit-weight mean of every row (krum_cpu.cpp), accumulated in double.
void mean(const Messages& X, void* out) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(X.n));
  std::iota(all.begin(), all.end(), 0);
  mean_of_rows(X, all, {}, out);
}

// sum_i w_i x_i / sum_i w_i (weights checked in csrc/ops/mean.cpp); a weight-0 message is skipped.
void weighted_mean(const Messages& X, const std::vector<double>& weights, void* out) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(X.n));
  std::iota(all.begin(), all.end(), 0);
  mean_of_rows(X, all, weights, out);
}

int num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace cpu
}  // namespace byzcore
