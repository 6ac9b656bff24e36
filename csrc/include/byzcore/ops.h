// The operations of docs/spec.md#rules, as the bindings call them. Each one is defined in
// csrc/ops/<op>.cpp, which checks its arguments and holds the one device switch: CPU inputs
// go to cpu::<op> (csrc/cpu/<op>_cpu.cpp), CUDA inputs to cuda::<op> (csrc/cuda/<op>_cuda.cu).
// Output pointers live on the messages' device and have the messages' dtype unless stated.
#pragma once

#include <cstdint>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {

// out[d]: plain average (propagates NaN/Inf).
void mean(const Messages& X, void* out);
// out[d]: coordinate-wise median (even n: mean of the two middle values).
void median(const Messages& X, void* out);
// out[d]: per coordinate drop f smallest and f largest, average the rest; n > 2f.
void trimmed_mean(const Messages& X, std::int64_t f, void* out);
// out[n*n]: (squared) Euclidean distances, zero diagonal, symmetric, >= 0; a message with
// a non-finite entry is at distance +inf from every other message.
void pairwise_distances(const Messages& X, bool squared, void* out);
// out[n]: sum of the n-f-2 smallest squared distances to the other messages; n >= f+3.
void krum_scores(const Messages& X, std::int64_t f, void* out);
// out[d]: the message with the lowest Krum score (ties: lowest index).
void krum(const Messages& X, std::int64_t f, void* out);
// out[d]: mean of the m messages with the lowest Krum scores.
void multi_krum(const Messages& X, std::int64_t f, std::int64_t m, void* out);
// out[d]: smoothed Weiszfeld from the coordinate-wise median; weights may be empty (all 1).
// Returns the number of iterations run.
std::int64_t geometric_median(const Messages& X, const std::vector<double>& weights, double nu,
                              std::int64_t max_iter, double tol, void* out);
// out[n*d]: each row scaled by min(1, threshold/||x_i||); a row with a non-finite entry,
// being infinitely far from zero, becomes all zeros.
void clip(const Messages& X, double threshold, void* out);
// out_indices[k] (int64, on X's device): the k coordinates of 0..d-1 drawn uniformly without
// replacement for `seed`, ascending. The same on every device (counter-based generator).
void rand_k_indices(std::int64_t d, std::int64_t k, std::uint64_t seed, const Place& place,
                    std::int64_t* out_indices);
// out[n*d]: each row keeps the rand_k_indices(d, k, seed) coordinates scaled by d/k, zero elsewhere.
void rand_k(const Messages& X, std::int64_t k, std::uint64_t seed, void* out);
// out[d]: v <- v + mean_i clip(x_i - v, tau), iters times, from center (nullptr: zero).
void centered_clipping(const Messages& X, double tau, const void* center, std::int64_t iters,
                       void* out);
// out[ceil(n/s)*d]: bucket means of the messages taken in the order perm (a permutation of 0..n-1).
void bucket_means(const Messages& X, const std::vector<std::int64_t>& perm, std::int64_t s,
                  void* out);
// out[n*d]: row i replaced by the mean of its n-f nearest messages (itself included).
void nnm(const Messages& X, std::int64_t f, void* out);
// out[d]: the subset rules (docs/rules.md#subset-rules-mda-smea-caf-dnc), each the (weighted) mean of the messages it
// keeps. mda: the n-f subset of smallest diameter; smea: the n-f subset whose covariance has
// the smallest largest eigenvalue; caf: the covariance filter; dnc: divide-and-conquer, which
// drops floor(c f) messages per round for `iters` rounds on sub_dim random coordinates.
void mda(const Messages& X, std::int64_t f, void* out);
void smea(const Messages& X, std::int64_t f, void* out);
void caf(const Messages& X, std::int64_t f, void* out);
void dnc(const Messages& X, std::int64_t f, std::int64_t iters, std::int64_t sub_dim, double c,
         std::uint64_t seed, void* out);
// out[d]: sum_i w_i x_i / sum_i w_i; weights finite, >= 0, not all zero; a weight-0 message is
// left out (even a non-finite one), the others propagate NaN/Inf as mean does.
void weighted_mean(const Messages& X, const std::vector<double>& weights, void* out);
// out[d]: per coordinate, the mean of the n-f values closest to the median (ties in distance:
// the smaller value); n > 2f.
void meamed(const Messages& X, std::int64_t f, void* out);
// out[d]: Bulyan: theta = n-2f messages by iterated Krum, then MeaMed of them leaving 2f out;
// n >= 4f+3.
void bulyan(const Messages& X, std::int64_t f, void* out);
// out[d]: mean of the n-f messages nearest to message `pivot` (ties: lower index); n > 2f.
void monna(const Messages& X, std::int64_t f, std::int64_t pivot, void* out);
// out[d]: mean of the n-f messages of smallest norm (ties: lower index); n > 2f.
void cge(const Messages& X, std::int64_t f, void* out);
// out[n*d]: ARC: the floor(2f(n-f)/n) largest-norm messages clipped to the largest remaining
// norm (a non-finite message becomes zeros, as in clip); n > 2f.
void arc(const Messages& X, std::int64_t f, void* out);

// The seeded permutation of 0..n-1 that bucketing uses (same generator as rand_k).
std::vector<std::int64_t> random_permutation(std::int64_t n, std::uint64_t seed);

}  // namespace byzcore
