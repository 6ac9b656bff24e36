// The twin backends behind the device switch in csrc/ops/: byzcore::cpu (csrc/cpu/) and
// byzcore::cuda (csrc/cuda/, or the stand-in csrc/cuda/no_cuda.cpp when built without CUDA).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {
namespace cpu {
#include "byzcore/backend_ops.inc"
int num_threads();
}  // namespace cpu
namespace cuda {
#include "byzcore/backend_ops.inc"
bool compiled();         // false in the stand-in build
int device_count();      // 0 without a CUDA build or driver
std::string describe();  // toolkit / architectures, for build_info()
}  // namespace cuda

// Sends X to the backend of its device: the one device switch every op in csrc/ops/ uses.
#define BYZCORE_DEVICE_SWITCH(X, call) ((X).on_cuda() ? ::byzcore::cuda::call : ::byzcore::cpu::call)

}  // namespace byzcore
