// Argument checks shared by the ops: each failure names the operation and the fix.
//
// Every comparison here is free of arithmetic that can wrap: f, m, k, s and the iteration
// counts arrive as any int64 (2**63 - 1 included), so a bound such as n > 2f is tested as
// f <= (n - 1) / 2 and n >= f + 3 as f <= n - 3, with n >= 1 checked first.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "byzcore/messages.h"

namespace byzcore {

// Iterative rules (centered clipping, the geometric median) refuse more iterations than this,
// so no argument can make a call run for days; real uses need a few to a few hundred.
constexpr std::int64_t kMaxIterations = 1000000;

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

// The bound on n of a rule that tolerates f Byzantine messages, as users read it.
enum class Bound { more_than_f, more_than_2f, at_least_f_plus_3, at_least_4f_plus_3 };

// True when n satisfies the bound for f (n >= 1 and f >= 0 already checked): no expression
// below can overflow, since n - 1 and n - 3 stay within [-2, 2**63 - 2].
inline bool bound_holds(Bound b, std::int64_t n, std::int64_t f) {
  switch (b) {
    case Bound::more_than_f: return f < n;
    case Bound::more_than_2f: return f <= (n - 1) / 2;
    case Bound::at_least_f_plus_3: return n >= 3 && f <= n - 3;
    case Bound::at_least_4f_plus_3: return n >= 3 && f <= (n - 3) / 4;
  }
  return false;
}

inline const char* bound_text(Bound b) {
  switch (b) {
    case Bound::more_than_f: return "n > f";
    case Bound::more_than_2f: return "n > 2f";
    case Bound::at_least_f_plus_3: return "n >= f + 3";
    case Bound::at_least_4f_plus_3: return "n >= 4f + 3";
  }
  return "?";
}

// check_f and the rule's bound on n, in that order.
inline void check_f_bound(const char* op, Bound b, std::int64_t n, std::int64_t f) {
  check_f(op, f);
  if (!bound_holds(b, n, f))
    fail(op, std::string("needs ") + bound_text(b) + ", got n = " + std::to_string(n) + ", f = " +
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

inline void check_iterations(const char* op, const char* name, std::int64_t v, std::int64_t lowest) {
  if (v < lowest || v > kMaxIterations)
    fail(op, std::string(name) + " must be in " + std::to_string(lowest) + ".." + std::to_string(kMaxIterations) +
                 ", got " + std::to_string(v));
}

inline void check_positive(const char* op, const char* name, double v) {
  if (!(v > 0) || !std::isfinite(v))
    fail(op, std::string(name) + " must be a positive finite number, got " + std::to_string(v));
}

}  // namespace byzcore
