// Per-message helpers of the CPU rules that pick or rescale whole messages (Krum, MoNNA, CGE,
// ARC, clipping, weighted mean), so each is written once.
#pragma once

#include <cstdint>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {
namespace cpu {

// norms[i] = ||X_i - c|| in double (c = nullptr: zero), +inf for a message holding a
// non-finite entry; float64 sums of squares that overflow are rescaled (clip_cpu.cpp).
void message_norms(const Messages& X, const double* c, std::vector<double>& norms);

// dist[i] = ||X_i - X_pivot|| in double, read from the pivot message itself (no widened copy),
// with the same non-finite and overflow handling.
void message_distances(const Messages& X, std::int64_t pivot, std::vector<double>& dist);

// out[n*d]: row i scaled by scale[i]; scale 0 gives exact zeros even for a non-finite row.
void scale_rows(const Messages& X, const std::vector<double>& scale, void* out);

// out[d] = sum_t w_t X_{rows[t]} / sum_t w_t in double (w empty: all ones), rows listed in the
// order they are summed (krum_cpu.cpp).
void mean_of_rows(const Messages& X, const std::vector<std::int64_t>& rows, const std::vector<double>& w, void* out);

}  // namespace cpu
}  // namespace byzcore
