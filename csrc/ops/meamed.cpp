// Mean around the median and Bulyan. The bounds are compared without arithmetic on f, which
// could wrap for an adversarial f near 2^63.
#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void meamed(const Messages& X, std::int64_t f, void* out) {
  check_messages("meamed", X);
  check_f_bound("meamed", Bound::more_than_2f, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, meamed(X, f, out));
}

void bulyan(const Messages& X, std::int64_t f, void* out) {
  check_messages("bulyan", X);
  check_f_bound("bulyan", Bound::at_least_4f_plus_3, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, bulyan(X, f, out));
}

}  // namespace byzcore
