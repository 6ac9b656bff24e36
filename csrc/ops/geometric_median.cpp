#include <cmath>

#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

std::int64_t geometric_median(const Messages& X, const std::vector<double>& weights, double nu,
                              std::int64_t max_iter, double tol, void* out) {
  const char* op = "geometric_median";
  check_messages(op, X);
  check_positive(op, "nu", nu);
  check_iterations(op, "max_iter", max_iter, 0);
  if (!(tol >= 0)) fail(op, "tol must be >= 0, got " + std::to_string(tol));
  if (!weights.empty()) check_weights(op, X, weights);
  return BYZCORE_DEVICE_SWITCH(X, geometric_median(X, weights, nu, max_iter, tol, out));
}

}  // namespace byzcore
