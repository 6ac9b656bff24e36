// Smoothed Weiszfeld (RFA) geometric median, one pass over the messages per iteration.
//
// Iteration t needs the distances ||x_i - z_t|| (for the weights) and then the weighted mean
// z_{t+1}. Both are fused into one sweep over coordinate tiles: a tile of z_{t+1} is final as
// soon as its weighted sum is taken (the weights are known before the sweep), so the distances
// to z_{t+1} are accumulated from the same tile while it is still in cache. Each iteration
// thus reads the n x d messages once, at memory speed. Everything is accumulated in double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "byzcore/backends.h"
#include "cpu/cpu_common.h"

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;
typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

inline v4d load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, v4d);
}
inline v4d load4(const double* p) {
  v4d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline double lane_sum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// sum_k (x_k - z_k)^2 over len coordinates, in double.
template <class T>
double sqdist(const T* x, const double* z, i64 len) {
  v4d s0{}, s1{};
  i64 k = 0;
  for (; k + 8 <= len; k += 8) {
    const v4d a = load4(x + k) - load4(z + k), b = load4(x + k + 4) - load4(z + k + 4);
    s0 += a * a;
    s1 += b * b;
  }
  double s = lane_sum(s0 + s1);
  for (; k < len; ++k) {
    const double t = static_cast<double>(x[k]) - z[k];
    s += t * t;
  }
  return s;
}

// The start point: the coordinate-wise median kernel (median_cpu.cpp), which ranks a
// non-finite entry above every finite value.
template <class T>
void start_median(const Messages& X, double* z) {
  std::vector<T> m(static_cast<std::size_t>(X.d));
  median(X, m.data());
  std::copy(m.begin(), m.end(), z);
}

// Rows per tile so that a tile of all n rows stays in L2 while it is read twice.
i64 tile_for(i64 n, std::size_t elem) {
  i64 t = 2048;
  while (t > 64 && static_cast<double>(n) * t * elem > 256 * 1024) t /= 2;
  return t;
}

template <class T>
i64 weiszfeld(const Messages& X, const std::vector<double>& a, double nu, i64 max_iter, double tol, T* out) {
  const i64 n = X.n, d = X.d;
  const int nt = num_threads();
  std::vector<double> z(static_cast<std::size_t>(d)), zn(static_cast<std::size_t>(d));
  start_median<T>(X, z.data());
  const i64 tile = tile_for(n, sizeof(T));
  const i64 tiles = (d + tile - 1) / tile;
  const bool par = nt > 1 && static_cast<double>(n) * d > 1e5;

  // dist[i] = ||x_i - z||^2; a row with a NaN/Inf entry gets +inf (weight zero).
  std::vector<double> dist(static_cast<std::size_t>(n), 0.0), beta(static_cast<std::size_t>(n), 0.0);
  // Rows are taken as finite until the first sweep measures them: a NaN/Inf entry (or a
  // distance that overflows double) gives a non-finite distance, hence weight zero.
  std::vector<char> finite(static_cast<std::size_t>(n), 1);
  std::vector<double> part(static_cast<std::size_t>(nt * (n + 2)));
  // One sweep: if `w` is given, z_new = sum w_i x_i / W per tile (else z_new = z); then the
  // distances of all rows to z_new, ||z_new - z||^2 and ||z_new||^2.
  auto sweep = [&](bool update, double invW) {
    std::fill(part.begin(), part.end(), 0.0);
    auto body = [&](int t, i64 tb, i64 te) {
      double* pd = part.data() + t * (n + 2);
      std::vector<double> acc(static_cast<std::size_t>(tile));
      for (i64 q = tb; q < te; ++q) {
        const i64 b = q * tile, len = std::min(tile, d - b);
        const double* zt = z.data() + b;
        double* znt = zn.data() + b;
        if (update) {
          std::fill(acc.begin(), acc.begin() + len, 0.0);
          for (i64 i = 0; i < n; ++i) {
            const double w = beta[i];
            if (w == 0) continue;
            const T* r = X.row<T>(i) + b;
            for (i64 k = 0; k < len; ++k) acc[k] += w * static_cast<double>(r[k]);
          }
          double dz = 0, nz = 0;
          for (i64 k = 0; k < len; ++k) {
            const double v = acc[k] * invW;
            znt[k] = v;
            dz += (v - zt[k]) * (v - zt[k]);
            nz += v * v;
          }
          pd[n] += dz;
          pd[n + 1] += nz;
        } else {
          std::copy(zt, zt + len, znt);
        }
        for (i64 i = 0; i < n; ++i)
          if (finite[i]) pd[i] += sqdist(X.row<T>(i) + b, znt, len);
      }
    };
#if defined(_OPENMP)
    if (par) {
#pragma omp parallel num_threads(nt)
      {
        const int t = omp_get_thread_num(), m = omp_get_num_threads();
        body(t, tiles * t / m, tiles * (t + 1) / m);
      }
    } else
#endif
      body(0, 0, tiles);
    double dz = 0, nz = 0;
    for (i64 i = 0; i < n; ++i) dist[i] = finite[i] ? 0.0 : std::numeric_limits<double>::infinity();
    for (int t = 0; t < nt; ++t) {
      const double* pd = part.data() + t * (n + 2);
      for (i64 i = 0; i < n; ++i) dist[i] += pd[i];
      dz += pd[n];
      nz += pd[n + 1];
    }
    z.swap(zn);
    return std::make_pair(dz, nz);
  };

  sweep(false, 0.0);
  for (i64 i = 0; i < n; ++i) finite[i] = std::isfinite(dist[i]);
  i64 it = 0;
  while (it < max_iter) {
    double W = 0;
    for (i64 i = 0; i < n; ++i) {
      const double ai = a.empty() ? 1.0 : a[static_cast<std::size_t>(i)];
      beta[i] = finite[i] && ai > 0 ? ai / std::max(nu, std::sqrt(dist[i])) : 0.0;
      W += beta[i];
    }
    if (!(W > 0) || !std::isfinite(W)) break;  // no finite message at a finite distance
    const auto [dz, nz] = sweep(true, 1.0 / W);
    ++it;
    if (std::sqrt(dz) <= tol * std::sqrt(nz)) break;
  }
  for (i64 k = 0; k < d; ++k) out[k] = static_cast<T>(z[k]);
  return it;
}

}  // namespace

std::int64_t geometric_median(const Messages& X, const std::vector<double>& weights, double nu,
                              std::int64_t max_iter, double tol, void* out) {
  return dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return weiszfeld<T>(X, weights, nu, max_iter, tol, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
