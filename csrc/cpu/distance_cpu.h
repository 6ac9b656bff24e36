// Internal interface of the distance-based CPU kernels (pairwise distances, Krum, NNM,
// geometric median): the one squared-distance matrix they all start from.
#pragma once

#include <cstdint>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {
namespace cpu {

// D[n*n] (row-major, double): squared Euclidean distances, exactly symmetric, exact zero
// diagonal, never negative; a message holding a NaN/Inf is at +inf from every other message.
// Accurate to a float64 reference (see pairwise_distances_cpu.cpp for the error bound).
// finite (optional, n entries) receives 1 for messages whose entries are all finite.
void squared_distances(const Messages& X, double* D, std::vector<char>* finite = nullptr);

// Order of the neighbours of message i by (distance, index): the sort key Krum and NNM use.
// Returns the indices 0..n-1 except `skip` (pass -1 to keep all) sorted by D[i*n + j], ties
// broken by the lower index, so equal inputs always give the same choice.
void sorted_neighbours(const double* Drow, std::int64_t n, std::int64_t skip, std::int64_t* idx);

}  // namespace cpu
}  // namespace byzcore
