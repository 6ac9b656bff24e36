// Counter-based random numbers: the value for (seed, i) is a pure function, so CPU and CUDA
// threads draw exactly the same numbers in any order. rand_k keeps the k coordinates with the
// smallest keys (ties broken by index), which is a uniform draw without replacement.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define BYZCORE_HOST_DEVICE __host__ __device__
#else
#define BYZCORE_HOST_DEVICE
#endif

namespace byzcore {

// SplitMix64 finaliser applied to a Weyl sequence keyed by the seed (Steele et al. 2014).
BYZCORE_HOST_DEVICE inline std::uint64_t counter_key(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed * 0xD1B54A32D192ED03ull + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  // second round: decorrelates nearby seeds
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace byzcore
