// Coordinate-wise median: ranks (n-1)/2 and n/2 of the order-statistics kernel.
#include "byzcore/backends.h"
#include "cpu/rank_select.h"

namespace byzcore {
namespace cpu {

void median(const Messages& X, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rank_detail::rank_mean<T, true>(X, (X.n - 1) / 2, X.n / 2, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
