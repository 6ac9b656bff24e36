// Block-wide radix selection over 64-bit keys: the key of a given rank among `count` keys
// that a functor produces on the fly (a row of the distance matrix, for instance). Eight
// passes of 8 bits with a shared 256-bin histogram; ties keep their multiplicity, so callers
// get "the k-th smallest" exactly as a sort would define it. Device code only.
#pragma once

#include <cstdint>

#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {
namespace dev {

struct SelectShared {
  unsigned int hist[256];
  unsigned long long prefix;
  long long want;
};

// get(j, &key) returns false for entries to skip. Every thread of the block must call this.
// Returns the key of rank `rank` (0-based) among the valid keys; rank must be < their count.
template <class Get>
__device__ unsigned long long block_select(std::int64_t count, std::int64_t rank, Get get, SelectShared& sh) {
  const int lane = threadIdx.x % kWarp;
  __syncthreads();  // every thread has read the result of a previous call
  if (threadIdx.x == 0) {
    sh.prefix = 0;
    sh.want = rank;
  }
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) sh.hist[b] = 0;
    __syncthreads();
    const unsigned long long prefix = sh.prefix;
    const unsigned long long himask = shift == 56 ? 0ull : (~0ull << (shift + 8));
    for (std::int64_t j = threadIdx.x; j < count; j += blockDim.x) {
      unsigned long long key;
      if (get(j, &key) && ((key ^ prefix) & himask) == 0) atomicAdd(&sh.hist[(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x < kWarp) {
      unsigned int c[8], s = 0;
#pragma unroll
      for (int b = 0; b < 8; ++b) {
        c[b] = sh.hist[lane * 8 + b];
        s += c[b];
      }
      unsigned int incl = s;
#pragma unroll
      for (int o = 1; o < kWarp; o <<= 1) {
        const unsigned int up = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += up;
      }
      const long long want = sh.want;
      const long long ex = static_cast<long long>(incl) - s;
      __syncwarp();  // every lane has read sh.want before the one lane that owns the bin rewrites it
      if (ex <= want && want < static_cast<long long>(incl)) {
        long long cum = ex;
#pragma unroll
        for (int b = 0; b < 8; ++b) {
          if (want < cum + c[b]) {
            sh.prefix = prefix | (static_cast<unsigned long long>(lane * 8 + b) << shift);
            sh.want = want - cum;
            break;
          }
          cum += c[b];
        }
      }
    }
    __syncthreads();
  }
  return sh.prefix;
}

// Squared distances are never negative, so their IEEE bits already sort as integers.
__device__ __forceinline__ unsigned long long distance_key(double v) {
  return static_cast<unsigned long long>(__double_as_longlong(v));
}

}  // namespace dev
}  // namespace cuda
}  // namespace byzcore
