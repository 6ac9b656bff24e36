// Argument checks shared by the ops: each failure names the operation and the fix.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {

inline void check_messages(const char* op, const Messages& X) {
  if (X.n <= 0) fail(op, "got no messages (n = 0); pass at least one worker's message");
  if (X.d <= 0) fail(op, "got empty messages (d = 0); each message needs at least one coordinate");
  if (static_cast<std::int64_t>(X.rows.size()) != X.n)
    fail(op, "internal: row pointer count does not match n");
  for (const void* p : X.rows)
    if (p == nullptr) fail(op, "internal: null row pointer");
}

inline void check_f(const char* op, std::int64_t f) {
  if (f < 0) fail(op, "f must be >= 0 (the number of Byzantine messages tolerated), got " + std::to_string(f));
}

// Rules with a bound on n: `needs` is the bound as users read it ("n > 2f").
inline void check_bound(const char* op, bool ok, const char* needs, std::int64_t n, std::int64_t f) {
  if (!ok)
    fail(op, std::string("needs ") + needs + ", got n = " + std::to_string(n) + ", f = " +
                 std::to_string(f) + "; lower f or aggregate more messages");
}

// Per-message weights (example counts, RFA's a_i): one per message, finite, >= 0, a finite
// positive sum.
inline void check_weights(const char* op, const Messages& X, const std::vector<double>& weights) {
  if (static_cast<std::int64_t>(weights.size()) != X.n)
    fail(op, "weights must have one entry per message (n = " + std::to_string(X.n) + "), got " +
                 std::to_string(weights.size()));
  double total = 0;
  for (double w : weights) {
    if (!(w >= 0) || !std::isfinite(w)) fail(op, "weights must be finite and >= 0");
    total += w;
  }
  if (!(total > 0) || !std::isfinite(total)) fail(op, "weights must not all be zero and must sum to a finite number");
}

inline void check_positive(const char* op, const char* name, double v) {
  if (!(v > 0) || std::isnan(v))
    fail(op, std::string(name) + " must be a positive number, got " + std::to_string(v));
}

}  // namespace byzcore
