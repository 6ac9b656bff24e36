// Entry points one CUDA source offers another (csrc/cuda/*.cu only): typed on the messages'
// dtype at run time, so each kernel is compiled in exactly one translation unit.
#pragma once

#include <cstdint>

#include "byzcore/messages.h"
#include "cuda/device/context.cuh"

namespace byzcore {
namespace cuda {
namespace detail {

// out[d] (X's dtype): per coordinate, the mean of the values whose ranks lie in [lo, hi]
// (non-finite values rank last, as +inf). median_cuda.cu.
void rank_mean(Context& ctx, const Messages& X, const void* const* rows, std::int64_t lo,
               std::int64_t hi, void* out);

// D[n*n] (double, device): squared distances, zero diagonal, symmetric, exact for near-identical
// messages (cancellation guard), +inf to and from a message holding a non-finite entry.
// finite (optional, n ints) gets 1 for messages whose entries are all finite.
// pairwise_distances_cuda.cu.
void squared_distances(Context& ctx, const Messages& X, const void* const* rows, double* D, int* finite = nullptr);

// The centre iterations shared by geometric_median and centered_clipping (recenter_cuda.cu):
// starting from z (double[d], device), each step computes per message a coefficient from its
// distance to z, then z <- s * z + beta * sum_i c_i (x_i - s * z).
enum class Recenter { weiszfeld, centered_clipping };
struct RecenterParams {
  Recenter rule;
  double nu = 0;             // weiszfeld: w_i = a_i / max(nu, ||x_i - z||)
  const double* a = nullptr; // weiszfeld: device weights a_i, or nullptr for all ones
  double tau = 0;            // centered clipping radius
  std::int64_t max_iter = 0; // steps at most
  double tol = -1;           // weiszfeld: stop when ||z_new - z|| <= tol * ||z_new|| (tol < 0: never)
};
// Runs the steps on z in place; returns the number of steps taken. Synchronises once per
// step only when a tolerance is given (to test convergence on the host).
std::int64_t recenter(Context& ctx, const Messages& X, const void* const* rows, const RecenterParams& p,
                      double* z);

// out_n[i] = ||x_i - z|| (z: double[d] on the device, or nullptr for zero), +inf for a message
// holding a non-finite entry; float64 squares that overflow are rescaled as on the CPU
// (recenter_cuda.cu).
void row_norms(Context& ctx, const Messages& X, const void* const* rows, const double* z, double* out_n);

// z (double, device) -> out (X's dtype) and back.
void to_double(Context& ctx, DType t, const void* in, std::int64_t count, double* out);
void from_double(Context& ctx, DType t, const double* in, std::int64_t count, void* out);

// out[d] (X's dtype): MeaMed of the messages behind `rows` (meamed_cuda.cu), f <= (n - 1) / 2
// not required (Bulyan's second stage leaves 2f of theta out), only n - f >= 1.
void meamed(Context& ctx, const Messages& X, const void* const* rows, std::int64_t f, void* out);

// out[d] (X's dtype) = sum_t w_t x_{idx[t]} / sum_t w_t in double, idx (device, m ints) and w
// (device, m doubles, or nullptr for all ones) (krum_cuda.cu).
void mean_of_rows(Context& ctx, const Messages& X, const void* const* rows, const int* idx, const double* w,
                  int m, void* out);

}  // namespace detail
}  // namespace cuda
}  // namespace byzcore
