// Random-k sparsification and the seeded permutation used by bucketing.
#include <algorithm>
#include <new>
#include <numeric>

#include "byzcore/backends.h"
#include "byzcore/counter_rng.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

// The draw scans all d keys (about 8.7 s per 2**30 on one core), so d is capped at 2**32
// coordinates (16 GiB of float32): a call stays under a minute; 2**40 ran for hours.
// python/byzcore/_ops.py's _MAX_COORDINATES checks the same cap before any allocation.
constexpr std::int64_t kMaxCoordinates = std::int64_t{1} << 32;

static void check_k(const char* op, std::int64_t d, std::int64_t k) {
  if (d <= 0 || d > kMaxCoordinates)
    fail(op, "d must be in 1..2**32 (the draw scans every coordinate), got " + std::to_string(d));
  if (k < 1 || k > d) fail(op, "k must be in 1..d (d = " + std::to_string(d) + "), got " + std::to_string(k));
}

void rand_k_indices(std::int64_t d, std::int64_t k, std::uint64_t seed, const Place& place, std::int64_t* out_indices) {
  check_k("rand_k_indices", d, k);
  if (place.device == Device::cuda)
    cuda::rand_k_indices(d, k, seed, place, out_indices);
  else
    cpu::rand_k_indices(d, k, seed, place, out_indices);
}

void rand_k(const Messages& X, std::int64_t k, std::uint64_t seed, void* out) {
  check_messages("rand_k", X);
  check_k("rand_k", X.d, k);
  BYZCORE_DEVICE_SWITCH(X, rand_k(X, k, seed, out));
}

void bucket_means(const Messages& X, const std::vector<std::int64_t>& perm, std::int64_t s, void* out) {
  check_messages("bucketing", X);
  if (s < 1) fail("bucketing", "bucket size s must be >= 1, got " + std::to_string(s));
  if (static_cast<std::int64_t>(perm.size()) != X.n) fail("bucketing", "internal: permutation size != n");
  // s >= n is one bucket; passing min(s, n) keeps the kernels' ceil(n / s) from wrapping.
  const std::int64_t size = std::min(s, X.n);
  BYZCORE_DEVICE_SWITCH(X, bucket_means(X, perm, size, out));
}

std::vector<std::int64_t> random_permutation(std::int64_t n, std::uint64_t seed) {
  // Sort 0..n-1 by counter keys: the same permutation on every platform for a seed.
  // n counts messages: 2**31 - 1 is beyond any aggregation, and a larger n would sort for minutes.
  if (n < 0 || n > std::int64_t{0x7fffffff})
    fail("permutation", "n must be in 0..2**31-1 (the number of messages), got " + std::to_string(n));
  std::vector<std::int64_t> perm;
  try {
    perm.resize(static_cast<std::size_t>(n));
  } catch (const std::bad_alloc&) {
    fail("permutation", "n = " + std::to_string(n) + " does not fit in memory");
  }
  std::iota(perm.begin(), perm.end(), 0);
  std::sort(perm.begin(), perm.end(), [seed](std::int64_t a, std::int64_t b) {
    const auto ka = counter_key(seed, static_cast<std::uint64_t>(a));
    const auto kb = counter_key(seed, static_cast<std::uint64_t>(b));
    return ka != kb ? ka < kb : a < b;
  });
  return perm;
}

}  // namespace byzcore
