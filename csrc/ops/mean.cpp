#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void mean(const Messages& X, void* out) {
  check_messages("mean", X);
  BYZCORE_DEVICE_SWITCH(X, mean(X, out));
}

}  // namespace byzcore
