// Host-side plumbing shared by the CUDA kernels (included by csrc/cuda/*.cu only): the device
// guard, the caller's stream, stream-ordered scratch memory, the device copy of the row
// pointer table, and error checks that name the operation.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {
namespace cuda {
namespace detail {

[[noreturn]] inline void cuda_fail(const char* op, const char* what, cudaError_t err) {
  throw std::runtime_error(std::string("[") + op + "] CUDA error in " + what + ": " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

// Everything one operation needs on the GPU. Construction makes X's device current (the
// previous one is restored on exit); scratch comes from cudaMallocAsync on the caller's stream
// and goes back with cudaFreeAsync on the same stream, so it is stream-ordered and never
// forces a synchronisation.
class Context {
 public:
  Context(const char* op, const Place& place)
      : op_(op), stream_(reinterpret_cast<cudaStream_t>(place.stream)), device_(place.index) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device_) check(cudaSetDevice(device_), "cudaSetDevice");
    check(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_),
          "cudaDeviceGetAttribute");
  }
  ~Context() {
    // Errors here cannot be thrown; a failed free leaves memory in the pool, never a wrong result.
    for (auto it = scratch_.rbegin(); it != scratch_.rend(); ++it) cudaFreeAsync(*it, stream_);
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const char* op() const { return op_; }
  cudaStream_t stream() const { return stream_; }
  int sm_count() const { return sm_count_; }

  void check(cudaError_t err, const char* what) const {
    if (err != cudaSuccess) cuda_fail(op_, what, err);
  }
  // After every launch: a bad configuration is reported here, a fault at the next sync.
  void launched(const char* kernel) const { check(cudaGetLastError(), kernel); }

  template <class T>
  T* alloc(std::size_t count) {
    void* p = nullptr;
    check(cudaMallocAsync(&p, std::max<std::size_t>(count, 1) * sizeof(T), stream_), "cudaMallocAsync");
    scratch_.push_back(p);
    return static_cast<T*>(p);
  }

  // A host array copied into scratch memory (small tables: row pointers, weights).
  template <class T>
  T* upload(const T* host, std::size_t count) {
    T* dev = alloc<T>(count);
    if (count > 0)
      check(cudaMemcpyAsync(dev, host, count * sizeof(T), cudaMemcpyHostToDevice, stream_),
            "cudaMemcpyAsync (host to device)");
    return dev;
  }

  // The n row pointers as a device table the kernels index.
  template <class T>
  const T* const* rows(const Messages& X) {
    return reinterpret_cast<const T* const*>(upload(X.rows.data(), X.rows.size()));
  }

  // A small device array (n norms, an n x n distance matrix) copied to the host: the one
  // synchronisation of the rules whose subset search runs on the host.
  template <class T>
  std::vector<T> download(const T* dev, std::size_t count) {
    std::vector<T> host(count);
    if (count > 0) {
      check(cudaMemcpyAsync(host.data(), dev, count * sizeof(T), cudaMemcpyDeviceToHost, stream_),
            "cudaMemcpyAsync (device to host)");
      check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }
    return host;
  }

  void memset(void* p, std::size_t bytes) {
    check(cudaMemsetAsync(p, 0, bytes, stream_), "cudaMemsetAsync");
  }

  // Blocks for a grid-stride loop over `items`: enough to fill the GPU, no more.
  unsigned blocks(std::int64_t items, int threads, int per_sm = 8) const {
    const std::int64_t need = (items + threads - 1) / threads;
    return static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>(need, std::int64_t(sm_count_) * per_sm)));
  }

 private:
  const char* op_;
  cudaStream_t stream_;
  int device_;
  int previous_ = 0;
  int sm_count_ = 1;
  std::vector<void*> scratch_;
};

// Grid y extent for a loop over rows (CUDA caps gridDim.y at 65535).
inline unsigned grid_rows(std::int64_t n) {
  return static_cast<unsigned>(std::min<std::int64_t>(n, 65535));
}

}  // namespace detail
}  // namespace cuda
}  // namespace byzcore
