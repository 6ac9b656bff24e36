// Helpers shared by the CPU kernels: threading over coordinate tiles and finiteness tests.
// This file is compiled once per ISA module (see CMakeLists.txt), so plain loops written
// here are vectorised for AVX2 or AVX-512 by the compiler in those modules.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "byzcore/messages.h"

namespace byzcore {
namespace cpu {

// Columns per tile: a tile of n rows x kTile columns stays in L1/L2 while a kernel works on it.
constexpr std::int64_t kTile = 1024;

// Runs body(begin, end) over [0, d) in tiles of `tile` coordinates, split across threads.
// Small problems run on the calling thread: a parallel region costs more than it saves.
// descending: each thread walks its tiles from the last to the first. A second pass over the
// rows right after a first ascending one (norms or Gram, then the chosen rows' mean) then
// starts on the coordinates the first pass read last, which are still in the last-level cache.
template <class Body>
void parallel_tiles(std::int64_t d, std::int64_t work_per_coord, Body&& body, std::int64_t tile = kTile,
                    bool descending = false) {
  const std::int64_t tiles = (d + tile - 1) / tile;
  auto run = [&](std::int64_t t) {
    const std::int64_t q = descending ? tiles - 1 - t : t;
    body(q * tile, std::min(d, (q + 1) * tile));
  };
#if defined(_OPENMP)
  if (tiles > 1 && d * work_per_coord > (1 << 15)) {
#pragma omp parallel for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) run(t);
    return;
  }
#endif
  for (std::int64_t t = 0; t < tiles; ++t) run(t);
}

// Prefetches the row segments of the next tile, [begin, end), one row after another while the
// current tile is computed. Kernels that read n rows in lockstep present n concurrent streams
// to the hardware prefetchers, which give up well before n = 32 (on the 2-core CI machine a
// plain sum over 32 rows of 1e6 floats reads at 12 GB/s against 27 GB/s for one stream); one
// sequential stream at a time, a tile ahead, runs at full speed. Call step() once per vector
// step of the current tile with the cache lines that step should request.
template <class T>
class NextTilePrefetcher {
 public:
  NextTilePrefetcher(const Messages& X, std::int64_t begin, std::int64_t end)
      : X_(X), begin_(begin), len_(end - begin) {}
  void step(std::int64_t lines) {
    for (std::int64_t q = 0; q < lines && row_ < X_.n && len_ > 0; ++q) {
      __builtin_prefetch(X_.row<T>(row_) + begin_ + col_, 0, 3);
      col_ += kLine;
      if (col_ >= len_) {
        col_ = 0;
        ++row_;
      }
    }
  }
  // Lines per step so that a tile of `tile` coordinates, walked `step` at a time, requests all
  // n rows of the next one (rounded up: it finishes a little early).
  static std::int64_t lines_per_step(std::int64_t n, std::int64_t tile, std::int64_t step) {
    const std::int64_t lines = n * ((tile + kLine - 1) / kLine), steps = std::max<std::int64_t>(1, tile / step);
    return (lines + steps - 1) / steps;
  }

 private:
  static constexpr std::int64_t kLine = 64 / sizeof(T);  // elements per cache line
  const Messages& X_;
  std::int64_t begin_, len_, row_ = 0, col_ = 0;
};

// This thread's index and the team size inside a parallel region (0 and 1 without OpenMP),
// so kernels that split work by hand need no #if of their own.
inline int thread_index() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int thread_count() {
#if defined(_OPENMP)
  return omp_get_num_threads();
#else
  return 1;
#endif
}

template <class T>
inline bool is_finite(T v) {
  // |v| <= max is false for NaN and +-Inf, and vectorises (unlike std::isfinite under -ffast-math).
  return std::abs(v) <= std::numeric_limits<T>::max();
}

}  // namespace cpu
}  // namespace byzcore
