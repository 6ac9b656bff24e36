#include <cmath>
#include <string>

#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void mean(const Messages& X, void* out) {
  check_messages("mean", X);
  BYZCORE_DEVICE_SWITCH(X, mean(X, out));
}

void weighted_mean(const Messages& X, const std::vector<double>& weights, void* out) {
  const char* op = "mean";
  check_messages(op, X);
  if (static_cast<std::int64_t>(weights.size()) != X.n)
    fail(op, "weights must have one entry per message (n = " + std::to_string(X.n) + "), got " +
                 std::to_string(weights.size()));
  double total = 0;
  for (double w : weights) {
    if (!(w >= 0) || !std::isfinite(w)) fail(op, "weights must be finite and >= 0 (example counts, for instance)");
    total += w;
  }
  if (!(total > 0) || !std::isfinite(total)) fail(op, "weights must not all be zero and must sum to a finite number");
  BYZCORE_DEVICE_SWITCH(X, weighted_mean(X, weights, out));
}

}  // namespace byzcore
