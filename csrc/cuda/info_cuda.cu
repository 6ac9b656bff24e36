// Build and device facts of the CUDA backend.
#include <cuda_runtime.h>

#include <string>

#include "byzcore/backends.h"

namespace byzcore {
namespace cuda {

bool compiled() { return true; }

int device_count() {
  int count = 0;
  // No driver or no GPU: report zero devices rather than failing, so CPU use is unaffected.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string describe() {
  return "CUDA " + std::to_string(CUDART_VERSION / 1000) + "." + std::to_string((CUDART_VERSION % 1000) / 10);
}

}  // namespace cuda
}  // namespace byzcore
