// Trimmed mean: the average of ranks f..n-f-1 of the order-statistics kernel (n > 2f is
// checked in csrc/ops/trimmed_mean.cpp).
#include "byzcore/backends.h"
#include "cpu/rank_select.h"

namespace byzcore {
namespace cpu {

void trimmed_mean(const Messages& X, std::int64_t f, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rank_detail::rank_mean<T, false>(X, f, X.n - f - 1, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
