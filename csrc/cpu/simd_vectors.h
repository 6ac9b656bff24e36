// GCC/Clang vector types and the few helpers the distance kernels (pairwise distances,
// Weiszfeld) share: loads that widen float to double, and a fixed-order lane sum. Plain
// vector extensions, so each ISA module compiles them to its own instructions.
#pragma once

#include <cstdint>
#include <cstring>

namespace byzcore {
namespace cpu {

typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef std::int32_t v8i __attribute__((vector_size(32)));
typedef std::int64_t v4i __attribute__((vector_size(32)));

// Four consecutive values as doubles (unaligned load; float widened exactly).
inline v4d load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, v4d);
}
inline v4d load4(const double* p) {
  v4d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The lanes summed in a fixed order, so results do not depend on the compiler.
inline double lane_sum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

}  // namespace cpu
}  // namespace byzcore
