// TEMPORARY during the foundation work: entry points whose CPU kernels are being written.
// This whole file is deleted once its kernels land.
#include <stdexcept>

#include "byzcore/backends.h"

namespace byzcore {
namespace cpu {

#define BYZCORE_PENDING(name) throw std::runtime_error("[" #name "] CPU kernel not written yet")

void median(const Messages&, void*) { BYZCORE_PENDING(median); }
void trimmed_mean(const Messages&, std::int64_t, void*) { BYZCORE_PENDING(trimmed_mean); }
void clip(const Messages&, double, void*) { BYZCORE_PENDING(clip); }
void rand_k_indices(std::int64_t, std::int64_t, std::uint64_t, const Place&, std::int64_t*) { BYZCORE_PENDING(rand_k_indices); }
void rand_k(const Messages&, std::int64_t, std::uint64_t, void*) { BYZCORE_PENDING(rand_k); }
void centered_clipping(const Messages&, double, const void*, std::int64_t, void*) { BYZCORE_PENDING(centered_clipping); }
void bucket_means(const Messages&, const std::vector<std::int64_t>&, std::int64_t, void*) { BYZCORE_PENDING(bucket_means); }

}  // namespace cpu
}  // namespace byzcore
