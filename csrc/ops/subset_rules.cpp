// The subset rules: mda, smea, caf, dnc (checks, then the device switch).
#include <cmath>

#include "byzcore/backends.h"
#include "byzcore/ops.h"
#include "ops/checks.h"

namespace byzcore {

namespace {
// n > 2f without computing 2f (f may be up to 2^63 - 1).
void check_majority(const char* op, const Messages& X, std::int64_t f) {
  check_messages(op, X);
  check_f_bound(op, Bound::more_than_2f, X.n, f);
}
}  // namespace

void mda(const Messages& X, std::int64_t f, std::int64_t max_steps, void* out) {
  check_majority("mda", X, f);
  if (max_steps < 1)
    fail("mda", "max_steps must be >= 1 (the budget of search steps), got " + std::to_string(max_steps));
  BYZCORE_DEVICE_SWITCH(X, mda(X, f, max_steps, out));
}

void smea(const Messages& X, std::int64_t f, std::int64_t max_subsets, void* out) {
  check_majority("smea", X, f);
  if (max_subsets < 1)
    fail("smea", "max_subsets must be >= 1 (the budget of subset evaluations), got " + std::to_string(max_subsets));
  BYZCORE_DEVICE_SWITCH(X, smea(X, f, max_subsets, out));
}

void caf(const Messages& X, std::int64_t f, void* out) {
  check_majority("caf", X, f);
  BYZCORE_DEVICE_SWITCH(X, caf(X, f, out));
}

void dnc(const Messages& X, std::int64_t f, std::int64_t iters, std::int64_t sub_dim, double c, std::uint64_t seed,
         void* out) {
  const char* op = "dnc";
  check_majority(op, X, f);
  check_iterations(op, "iters", iters, 1);
  if (sub_dim < 1) fail(op, "sub_dim must be >= 1 (coordinates sampled per round), got " + std::to_string(sub_dim));
  if (!(c >= 0) || !std::isfinite(c))
    fail(op, "c must be a finite number >= 0 (the filtering fraction), got " + std::to_string(c));
  // remove = floor(c f) messages per round; every round may remove a different set, so
  // n > iters * remove keeps at least one survivor (compared by division: no product can wrap).
  const double cf = std::floor(c * static_cast<double>(f));
  if (!(cf < static_cast<double>(X.n)))
    fail(op, "needs n > c f (messages removed per round), got n = " + std::to_string(X.n) +
                 ", c f = " + std::to_string(c * static_cast<double>(f)) + "; lower c or f");
  const std::int64_t remove = static_cast<std::int64_t>(cf);
  if (remove > 0 && iters > (X.n - 1) / remove)
    fail(op, "needs n > iters * floor(c f) so that a message survives every round, got n = " + std::to_string(X.n) +
                 ", iters = " + std::to_string(iters) + ", floor(c f) = " + std::to_string(remove) +
                 "; lower iters or c");
  // Nothing removed: every round keeps all the messages, so one round gives the same mean.
  if (remove == 0) iters = 1;
  BYZCORE_DEVICE_SWITCH(X, dnc(X, remove, iters, sub_dim, seed, out));
}

}  // namespace byzcore
