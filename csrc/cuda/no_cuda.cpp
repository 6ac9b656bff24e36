// Stand-in for csrc/cuda/*.cu when byzcore is built without CUDA: the same entry points,
// so the module always links, and a clear error at run time if a CUDA input reaches them.
#include <stdexcept>

#include "byzcore/backends.h"

namespace byzcore {
namespace cuda {

[[noreturn]] static void no_cuda(const char* op) {
  throw std::runtime_error(std::string("[") + op +
                           "] byzcore was built without CUDA support; reinstall with a CUDA "
                           "toolkit present and BYZCORE_CUDA=ON (pip install . "
                           "-Ccmake.define.BYZCORE_CUDA=ON), or move the input to the CPU");
}

bool compiled() { return false; }
int device_count() { return 0; }
std::string describe() { return "not built"; }

void mean(const Messages&, void*) { no_cuda("mean"); }
void median(const Messages&, void*) { no_cuda("median"); }
void trimmed_mean(const Messages&, std::int64_t, void*) { no_cuda("trimmed_mean"); }
void pairwise_distances(const Messages&, bool, void*) { no_cuda("pairwise_distances"); }
void krum_scores(const Messages&, std::int64_t, void*) { no_cuda("krum_scores"); }
void krum(const Messages&, std::int64_t, void*) { no_cuda("krum"); }
void multi_krum(const Messages&, std::int64_t, std::int64_t, void*) { no_cuda("multi_krum"); }
std::int64_t geometric_median(const Messages&, const std::vector<double>&, double, std::int64_t,
                              double, void*) { no_cuda("geometric_median"); }
void clip(const Messages&, double, void*) { no_cuda("clip"); }
void rand_k_indices(std::int64_t, std::int64_t, std::uint64_t, const Place&, std::int64_t*) { no_cuda("rand_k_indices"); }
void rand_k(const Messages&, std::int64_t, std::uint64_t, void*) { no_cuda("rand_k"); }
void centered_clipping(const Messages&, double, const void*, std::int64_t, void*) { no_cuda("centered_clipping"); }
void bucket_means(const Messages&, const std::vector<std::int64_t>&, std::int64_t, void*) { no_cuda("bucketing"); }
void nnm(const Messages&, std::int64_t, void*) { no_cuda("nnm"); }
void mda(const Messages&, std::int64_t, void*) { no_cuda("mda"); }
void smea(const Messages&, std::int64_t, void*) { no_cuda("smea"); }
void caf(const Messages&, std::int64_t, void*) { no_cuda("caf"); }
void dnc(const Messages&, std::int64_t, std::int64_t, std::int64_t, std::uint64_t, void*) { no_cuda("dnc"); }
void weighted_mean(const Messages&, const std::vector<double>&, void*) { no_cuda("mean"); }
void meamed(const Messages&, std::int64_t, void*) { no_cuda("meamed"); }
void bulyan(const Messages&, std::int64_t, void*) { no_cuda("bulyan"); }
void monna(const Messages&, std::int64_t, std::int64_t, void*) { no_cuda("monna"); }
void cge(const Messages&, std::int64_t, void*) { no_cuda("cge"); }
void arc(const Messages&, std::int64_t, void*) { no_cuda("arc"); }

}  // namespace cuda
}  // namespace byzcore
