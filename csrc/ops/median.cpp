#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void median(const Messages& X, void* out) {
  check_messages("median", X);
  BYZCORE_DEVICE_SWITCH(X, median(X, out));
}

}  // namespace byzcore
