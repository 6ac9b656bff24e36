// Device helpers shared by the CUDA kernels: finiteness, order-preserving keys for radix
// selection, warp/block reductions and scans. Device code only (csrc/cuda/*.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace byzcore {
namespace cuda {
namespace dev {

constexpr int kWarp = 32;

__device__ __forceinline__ bool is_finite(float v) { return fabsf(v) <= 3.402823466e38f; }
__device__ __forceinline__ bool is_finite(double v) { return fabs(v) <= 1.7976931348623157e308; }

// docs/spec.md#nonfinite: a non-finite entry ranks above every finite value (NaN and -inf included).
template <class T>
__device__ __forceinline__ T finite_or_inf(T v) {
  return is_finite(v) ? v : T(INFINITY);
}

// Unsigned keys whose integer order is the order of the values (non-finite -> +inf first).
template <class T>
struct KeyTraits;
template <>
struct KeyTraits<float> {
  using Key = std::uint32_t;
  static __device__ __forceinline__ Key key(float v) {
    const Key u = __float_as_uint(finite_or_inf(v));
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  static __device__ __forceinline__ float value(Key k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
  }
};
template <>
struct KeyTraits<double> {
  using Key = unsigned long long;
  static __device__ __forceinline__ Key key(double v) {
    const Key u = static_cast<Key>(__double_as_longlong(finite_or_inf(v)));
    return (u >> 63) ? ~u : (u | (1ull << 63));
  }
  static __device__ __forceinline__ double value(Key k) {
    return __longlong_as_double(static_cast<long long>((k >> 63) ? (k & ~(1ull << 63)) : ~k));
  }
};

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block, returned to every thread. `sh` holds one T per warp; the reduction
// order is fixed, so results are reproducible run to run.
template <class T>
__device__ T block_sum(T v, T* sh) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
  v = warp_sum(v);
  __syncthreads();  // sh may still be read from a previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < warps; ++w) total += sh[w];
  return total;
}

// Exclusive prefix sum over the block in thread order, plus the block total. `sh` holds one
// T per warp.
template <class T>
__device__ T block_exclusive_scan(T v, T* sh, T* total) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
  T incl = v;
#pragma unroll
  for (int o = 1; o < kWarp; o <<= 1) {
    const T up = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += up;
  }
  __syncthreads();
  if (lane == kWarp - 1) sh[warp] = incl;
  __syncthreads();
  T before = 0, all = 0;
  for (int w = 0; w < warps; ++w) {
    if (w < warp) before += sh[w];
    all += sh[w];
  }
  *total = all;
  return before + incl - v;
}

// Grid-stride helpers with 64-bit indices (n * d may exceed 2^31).
__device__ __forceinline__ std::int64_t global_thread() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_threads() { return static_cast<std::int64_t>(gridDim.x) * blockDim.x; }

}  // namespace dev
}  // namespace cuda
}  // namespace byzcore
