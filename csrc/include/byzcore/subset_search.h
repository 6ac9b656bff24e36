// The host-side searches of the subset rules (MDA, SMEA, CAF, DnC), shared by both backends:
// each backend computes the n x n squared-distance matrix D (double, row-major, +inf to and
// from a non-finite message) on its own device, copies it to the host, and this code picks the
// messages and their weights from D alone; the backend then averages the rows on its device.
//
// Every covariance the rules need comes from D by double centring: for weights w summing to 1
// and mu = sum_b w_b x_b, (x_a - mu).(x_c - mu) = -(D_ac - r_a - r_c + s) / 2 with
// r_a = sum_b w_b D_ab and s = sum_a w_a r_a; the nonzero eigenvalues of the d x d covariance
// sum_a w_a (x_a - mu)(x_a - mu)^T are those of the small matrix W^1/2 G W^1/2.
#pragma once

#include <cstdint>
#include <vector>

namespace byzcore {
namespace subset {

// Per-message weights of the final mean (zero: left out; they sum to 1).
using Weights = std::vector<double>;

// MDA: the lexicographically first (by sorted index tuple) of the n - f subsets of smallest
// diameter max_{a,b in S} D_ab.
Weights min_diameter(const double* D, std::int64_t n, std::int64_t f);

// SMEA: the lexicographically first n - f subset whose scatter matrix has the smallest largest
// eigenvalue (exact up to the rounding of the eigenvalues); non-finite messages never chosen
// while n - f finite ones exist.
Weights min_max_eigenvalue(const double* D, const std::vector<char>& finite, std::int64_t n, std::int64_t f);

// CAF: the weights c / sum c of the filter iteration whose weighted covariance had the smallest
// largest eigenvalue.
Weights covariance_filter(const double* D, const std::vector<char>& finite, std::int64_t n, std::int64_t f);

// One DnC round on the distances of the subsampled messages: keep[i] = 0 for the `remove`
// messages with the largest squared projection on the top principal direction (non-finite
// first, ties: the higher index goes first).
void dnc_round(const double* Dsub, const std::vector<char>& finite, std::int64_t n, std::int64_t remove,
               std::vector<char>& keep);

}  // namespace subset
}  // namespace byzcore
