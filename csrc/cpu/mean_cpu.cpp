#include "cpu/cpu_common.h"
#include "byzcore/backends.h"
#include "cpu/rows_cpu.h"

#include <numeric>
#include <vector>

namespace byzcore {
namespace cpu {

namespace {
template <class T>
void mean_impl(const Messages& X, T* out) {
  // Accumulate in double per tile: exact enough for huge n and never overflows float range early.
  parallel_tiles(X.d, X.n, [&](std::int64_t b, std::int64_t e) {
    double acc[kTile];
    const std::int64_t len = e - b;
    std::fill(acc, acc + len, 0.0);
    for (std::int64_t i = 0; i < X.n; ++i) {
      const T* r = X.row<T>(i) + b;
      for (std::int64_t j = 0; j < len; ++j) acc[j] += static_cast<double>(r[j]);
    }
    const double inv = 1.0 / static_cast<double>(X.n);
    for (std::int64_t j = 0; j < len; ++j) out[b + j] = static_cast<T>(acc[j] * inv);
  });
}
}  // namespace

void mean(const Messages& X, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    mean_impl<T>(X, static_cast<T*>(out));
  });
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
