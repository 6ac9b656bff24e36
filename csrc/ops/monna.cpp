// The rules that average the n - f messages nearest to a point: MoNNA (the pivot message) and
// CGE (zero). Bounds compared without arithmetic on f (an adversarial f could wrap).
#include <string>

#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void monna(const Messages& X, std::int64_t f, std::int64_t pivot, void* out) {
  check_messages("monna", X);
  check_f_bound("monna", Bound::more_than_2f, X.n, f);
  if (pivot < 0 || pivot >= X.n)
    fail("monna", "pivot must be a message index in 0..n-1 (n = " + std::to_string(X.n) + "), got " +
                      std::to_string(pivot));
  BYZCORE_DEVICE_SWITCH(X, monna(X, f, pivot, out));
}

void cge(const Messages& X, std::int64_t f, void* out) {
  check_messages("cge", X);
  check_f_bound("cge", Bound::more_than_2f, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, cge(X, f, out));
}

}  // namespace byzcore
