// Norm clipping and centered clipping. Norms are accumulated in double, so float32 inputs
// up to FLT_MAX never overflow; float64 inputs whose squares overflow are rescaled by their
// largest entry. A message holding a non-finite entry is infinitely far from everything: it
// clips to zero and contributes nothing to centered clipping.
#include <cmath>
#include <limits>
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/selection.h"
#include "cpu/cpu_common.h"
#include "cpu/rows_cpu.h"

namespace byzcore {
namespace cpu {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Sum of (r[j] - c[j])^2 over [b, e) in double, c = nullptr meaning zero (c: a double centre,
// or a message of the input's type, widened exactly). Eight independent accumulators: a
// fixed-width inner loop the compiler vectorises without -ffast-math.
template <class T, class C>
double sumsq(const T* r, const C* c, std::int64_t b, std::int64_t e) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t j = b;
  if (c == nullptr) {
    for (; j + 8 <= e; j += 8)
      for (int l = 0; l < 8; ++l) {
        const double x = static_cast<double>(r[j + l]);
        acc[l] += x * x;
      }
    for (; j < e; ++j) acc[0] += static_cast<double>(r[j]) * static_cast<double>(r[j]);
  } else {
    for (; j + 8 <= e; j += 8)
      for (int l = 0; l < 8; ++l) {
        const double x = static_cast<double>(r[j + l]) - static_cast<double>(c[j + l]);
        acc[l] += x * x;
      }
    for (; j < e; ++j) {
      const double x = static_cast<double>(r[j]) - static_cast<double>(c[j]);
      acc[0] += x * x;
    }
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// ||r - c|| for a message whose plain sum of squares was not finite: +inf when the message
// holds a non-finite entry, else the norm computed with every term divided by the largest.
template <class T, class C>
double norm_rescaled(const T* r, const C* c, std::int64_t d) {
  double m = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    if (!is_finite(r[j])) return kInf;
    m = std::max(m, std::abs(static_cast<double>(r[j]) - (c ? static_cast<double>(c[j]) : 0.0)));
  }
  if (!(m > 0) || !std::isfinite(m)) return m;
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double x = (static_cast<double>(r[j]) - (c ? static_cast<double>(c[j]) : 0.0)) / m;
    s += x * x;
  }
  return m * std::sqrt(s);
}

// norms[i] = ||X_i - c|| for every message, +inf for a message with a non-finite entry.
// Work is split over (chunk of coordinates, message) pairs, so both many short messages and
// a few long ones keep every thread busy. With a centre, chunks are at most kCentreChunk
// coordinates, so the centre's chunk stays in L2 while every message's chunk streams past it.
template <class T, class C>
void row_norms(const Messages& X, const C* c, std::vector<double>& norms) {
  constexpr std::int64_t kCentreChunk = 16384;
  const std::int64_t n = X.n, d = X.d;
  const int threads = num_threads();
  std::int64_t chunks = std::max<std::int64_t>(1, std::min<std::int64_t>((d + kTile - 1) / kTile, 4 * threads));
  if (c != nullptr) chunks = std::max(chunks, (d + kCentreChunk - 1) / kCentreChunk);
  const std::int64_t chunk = (d + chunks - 1) / chunks;
  std::vector<double> partial(static_cast<std::size_t>(chunks * n));
  const std::int64_t tasks = chunks * n;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n * d > (1 << 16))
#endif
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t ch = t / n, i = t % n;
    const std::int64_t b = ch * chunk, e = std::min(d, b + chunk);
    partial[static_cast<std::size_t>(t)] = b < e ? sumsq(X.row<T>(i), c, b, e) : 0.0;
  }
  norms.assign(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::int64_t ch = 0; ch < chunks; ++ch) s += partial[static_cast<std::size_t>(ch * n + i)];
    // float32 squares cannot overflow a double sum, so a non-finite s means a non-finite
    // entry; for float64 it may also be overflow of finite values, which the rescaled pass tells apart.
    norms[static_cast<std::size_t>(i)] = std::isfinite(s) ? std::sqrt(s) : norm_rescaled(X.row<T>(i), c, d);
  }
}

// min(1, tau / norm), and 0 for a message at infinite distance.
inline double clip_scale(double norm, double tau) {
  if (!std::isfinite(norm) || tau == 0.0) return 0.0;  // tau = 0: even an underflowed norm clips
  return norm <= tau ? 1.0 : tau / norm;
}

template <class T>
void scale_rows_impl(const Messages& X, const std::vector<double>& scale, T* out) {
  const std::int64_t n = X.n, d = X.d;
  parallel_tiles(d, n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = 0; i < n; ++i) {
      const T* r = X.row<T>(i);
      T* o = out + i * d;
      const double s = scale[static_cast<std::size_t>(i)];
      if (s == 1.0) {
        std::copy(r + b, r + e, o + b);
      } else if (s == 0.0) {  // not x * 0, which is NaN for a non-finite x
        std::fill(o + b, o + e, T(0));
      } else {
        for (std::int64_t j = b; j < e; ++j) o[j] = static_cast<T>(static_cast<double>(r[j]) * s);
      }
    }
  });
}

template <class T>
void centered_clipping_impl(const Messages& X, double tau, const T* center, std::int64_t iters, T* out) {
  const std::int64_t n = X.n, d = X.d;
  std::vector<double> v(static_cast<std::size_t>(d), 0.0);
  if (center != nullptr)
    for (std::int64_t j = 0; j < d; ++j) v[static_cast<std::size_t>(j)] = static_cast<double>(center[j]);
  std::vector<double> norms, scale(static_cast<std::size_t>(n));
  const double inv_n = 1.0 / static_cast<double>(n);
  for (std::int64_t it = 0; it < iters; ++it) {
    row_norms<T, double>(X, v.data(), norms);
    for (std::int64_t i = 0; i < n; ++i)
      scale[static_cast<std::size_t>(i)] = clip_scale(norms[static_cast<std::size_t>(i)], tau);
    parallel_tiles(d, n, [&](std::int64_t b, std::int64_t e) {
      double acc[kTile];
      const std::int64_t len = e - b;
      std::fill(acc, acc + len, 0.0);
      const double* vb = v.data() + b;
      for (std::int64_t i = 0; i < n; ++i) {
        const double s = scale[static_cast<std::size_t>(i)];
        if (s == 0.0) continue;  // non-finite (or clipped to nothing): contributes zero, never NaN
        const T* r = X.row<T>(i) + b;
        for (std::int64_t j = 0; j < len; ++j) acc[j] += s * (static_cast<double>(r[j]) - vb[j]);
      }
      for (std::int64_t j = 0; j < len; ++j) v[static_cast<std::size_t>(b + j)] += acc[j] * inv_n;
    });
  }
  for (std::int64_t j = 0; j < d; ++j) out[j] = static_cast<T>(v[static_cast<std::size_t>(j)]);
}

}  // namespace

void message_norms(const Messages& X, const double* c, std::vector<double>& norms) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    row_norms<T, double>(X, c, norms);
  });
}

void message_distances(const Messages& X, std::int64_t pivot, std::vector<double>& dist) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    row_norms<T, T>(X, X.row<T>(pivot), dist);
  });
}

void scale_rows(const Messages& X, const std::vector<double>& scale, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    scale_rows_impl<T>(X, scale, static_cast<T*>(out));
  });
}

void clip(const Messages& X, double threshold, void* out) {
  std::vector<double> norms;
  message_norms(X, nullptr, norms);
  for (double& v : norms) v = clip_scale(v, threshold);
  scale_rows(X, norms, out);
}

// ARC: the nb = floor(2 f (n - f) / n) largest norms (ties: the higher index counts as
// larger) are clipped to the largest remaining norm; nb < n/2 + 1 <= n, so one remains.
void arc(const Messages& X, std::int64_t f, void* out) {
  std::vector<double> norms;
  message_norms(X, nullptr, norms);
  const std::int64_t n = X.n;
  const std::int64_t nb = arc_clipped(n, f);
  std::vector<double> sorted(norms);
  std::nth_element(sorted.begin(), sorted.begin() + (n - nb - 1), sorted.end());
  const double threshold = sorted[static_cast<std::size_t>(n - nb - 1)];
  // Every norm above the threshold is among the nb largest; one equal to it is unchanged by
  // clipping, so which of the tied messages "was clipped" does not matter.
  for (double& v : norms) v = clip_scale(v, threshold);
  scale_rows(X, norms, out);
}

void centered_clipping(const Messages& X, double tau, const void* center, std::int64_t iters, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    centered_clipping_impl<T>(X, tau, static_cast<const T*>(center), iters, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
