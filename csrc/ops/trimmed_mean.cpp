#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void trimmed_mean(const Messages& X, std::int64_t f, void* out) {
  check_messages("trimmed_mean", X);
  check_f_bound("trimmed_mean", Bound::more_than_2f, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, trimmed_mean(X, f, out));
}

}  // namespace byzcore
