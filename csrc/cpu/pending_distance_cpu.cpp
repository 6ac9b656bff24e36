// TEMPORARY during the foundation work: entry points whose CPU kernels are being written.
// This whole file is deleted once its kernels land.
#include <stdexcept>

#include "byzcore/backends.h"

namespace byzcore {
namespace cpu {

#define BYZCORE_PENDING(name) throw std::runtime_error("[" #name "] CPU kernel not written yet")

void pairwise_distances(const Messages&, bool, void*) { BYZCORE_PENDING(pairwise_distances); }
void krum_scores(const Messages&, std::int64_t, void*) { BYZCORE_PENDING(krum_scores); }
void krum(const Messages&, std::int64_t, void*) { BYZCORE_PENDING(krum); }
void multi_krum(const Messages&, std::int64_t, std::int64_t, void*) { BYZCORE_PENDING(multi_krum); }
std::int64_t geometric_median(const Messages&, const std::vector<double>&, double, std::int64_t, double, void*) { BYZCORE_PENDING(geometric_median); }
void nnm(const Messages&, std::int64_t, void*) { BYZCORE_PENDING(nnm); }

}  // namespace cpu
}  // namespace byzcore
