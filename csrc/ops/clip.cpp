// Norm clipping, adaptive robust clipping (ARC) and centered clipping.
#include <cmath>

#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void clip(const Messages& X, double threshold, void* out) {
  check_messages("clip", X);
  if (!(threshold >= 0)) fail("clip", "threshold must be >= 0 (inf disables clipping), got " + std::to_string(threshold));
  BYZCORE_DEVICE_SWITCH(X, clip(X, threshold, out));
}

void arc(const Messages& X, std::int64_t f, void* out) {
  check_messages("arc", X);
  check_f_bound("arc", Bound::more_than_2f, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, arc(X, f, out));
}

void centered_clipping(const Messages& X, double tau, const void* center, std::int64_t iters,
                       void* out) {
  check_messages("centered_clipping", X);
  if (!(tau >= 0)) fail("centered_clipping", "tau must be >= 0, got " + std::to_string(tau));
  check_iterations("centered_clipping", "iters", iters, 1);
  BYZCORE_DEVICE_SWITCH(X, centered_clipping(X, tau, center, iters, out));
}

}  // namespace byzcore
