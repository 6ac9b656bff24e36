// Distances and the rules built on them: pairwise_distances, krum_scores, krum, multi_krum, nnm.
#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

void pairwise_distances(const Messages& X, bool squared, void* out) {
  check_messages("pairwise_distances", X);
  BYZCORE_DEVICE_SWITCH(X, pairwise_distances(X, squared, out));
}

void krum_scores(const Messages& X, std::int64_t f, void* out) {
  check_messages("krum_scores", X);
  check_f_bound("krum_scores", Bound::at_least_f_plus_3, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, krum_scores(X, f, out));
}

void krum(const Messages& X, std::int64_t f, void* out) {
  check_messages("krum", X);
  check_f_bound("krum", Bound::at_least_f_plus_3, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, krum(X, f, out));
}

void multi_krum(const Messages& X, std::int64_t f, std::int64_t m, void* out) {
  check_messages("multi_krum", X);
  check_f_bound("multi_krum", Bound::at_least_f_plus_3, X.n, f);
  if (m < 1 || m > X.n)
    fail("multi_krum", "m must be in 1..n (n = " + std::to_string(X.n) + "), got " + std::to_string(m));
  BYZCORE_DEVICE_SWITCH(X, multi_krum(X, f, m, out));
}

void nnm(const Messages& X, std::int64_t f, void* out) {
  check_messages("nnm", X);
  check_f_bound("nnm", Bound::more_than_f, X.n, f);
  BYZCORE_DEVICE_SWITCH(X, nnm(X, f, out));
}

}  // namespace byzcore
