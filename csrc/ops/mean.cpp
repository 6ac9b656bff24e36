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
  check_weights(op, X, weights);
  BYZCORE_DEVICE_SWITCH(X, weighted_mean(X, weights, out));
}

}  // namespace byzcore
