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
#include "cpu/simd_vectors.h"

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;

// out[rows[r]] += sum_k (x_k - z_k)^2 over coordinates [b, b+len) for m <= 4 rows, in double.
template <class T>
void sqdist4(const Messages& X, const i64* rows, i64 m, i64 b, const double* z, i64 len, double* out) {
  const T* x[4];
  for (i64 r = 0; r < 4; ++r) x[r] = X.row<T>(rows[r < m ? r : 0]) + b;
  v4d s0{}, s1{}, s2{}, s3{};
  i64 k = 0;
  for (; k + 4 <= len; k += 4) {
    const v4d zz = load4(z + k);
    const v4d a0 = load4(x[0] + k) - zz, a1 = load4(x[1] + k) - zz, a2 = load4(x[2] + k) - zz,
              a3 = load4(x[3] + k) - zz;
    s0 += a0 * a0;
    s1 += a1 * a1;
    s2 += a2 * a2;
    s3 += a3 * a3;
  }
  double s[4] = {lane_sum(s0), lane_sum(s1), lane_sum(s2), lane_sum(s3)};
  for (; k < len; ++k)
    for (int r = 0; r < 4; ++r) {
      const double t = static_cast<double>(x[r][k]) - z[k];
      s[r] += t * t;
    }
  for (i64 r = 0; r < m; ++r) out[rows[r]] += s[r];
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
    // Rows in the weighted sum (weight > 0) and rows whose distance is measured.
    std::vector<i64> up, dr;
    for (i64 i = 0; i < n; ++i) {
      if (update && beta[i] != 0) up.push_back(i);
      if (finite[i]) dr.push_back(i);
    }
    const i64 nu_ = static_cast<i64>(up.size()), nd = static_cast<i64>(dr.size());
    auto body = [&](int t, i64 tb, i64 te) {
      double* pd = part.data() + t * (n + 2);
      std::vector<double> acc(static_cast<std::size_t>(tile));
      for (i64 q = tb; q < te; ++q) {
        const i64 b = q * tile, len = std::min(tile, d - b);
        const i64 nb = b + tile, nlen = q + 1 < te ? std::min(tile, d - nb) : 0;
        const double* zt = z.data() + b;
        double* znt = zn.data() + b;
        if (update) {
          // Four rows per pass over acc: a quarter of the loads and stores of acc.
          std::fill(acc.begin(), acc.begin() + len, 0.0);
          double* ac = acc.data();
          i64 p = 0;
          for (; p + 4 <= nu_; p += 4) {
            const T *r0 = X.row<T>(up[p]) + b, *r1 = X.row<T>(up[p + 1]) + b, *r2 = X.row<T>(up[p + 2]) + b,
                    *r3 = X.row<T>(up[p + 3]) + b;
            const double w0 = beta[up[p]], w1 = beta[up[p + 1]], w2 = beta[up[p + 2]], w3 = beta[up[p + 3]];
            for (i64 k = 0; k < len; ++k)
              ac[k] += (w0 * static_cast<double>(r0[k]) + w1 * static_cast<double>(r1[k])) +
                       (w2 * static_cast<double>(r2[k]) + w3 * static_cast<double>(r3[k]));
          }
          for (; p < nu_; ++p) {
            const T* r = X.row<T>(up[p]) + b;
            const double w = beta[up[p]];
            for (i64 k = 0; k < len; ++k) ac[k] += w * static_cast<double>(r[k]);
          }
          v4d dzv{}, nzv{};
          i64 k = 0;
          for (; k + 4 <= len; k += 4) {
            const v4d v = load4(ac + k) * invW, dv = v - load4(zt + k);
            std::memcpy(znt + k, &v, sizeof v);
            dzv += dv * dv;
            nzv += v * v;
          }
          double dz = lane_sum(dzv), nz = lane_sum(nzv);
          for (; k < len; ++k) {
            const double v = ac[k] * invW;
            znt[k] = v;
            dz += (v - zt[k]) * (v - zt[k]);
            nz += v * v;
          }
          pd[n] += dz;
          pd[n + 1] += nz;
        } else {
          std::copy(zt, zt + len, znt);
        }
        // Distances to the new tile of z, four rows at a time; meanwhile the next tile of the
        // same rows is fetched (n short row pieces are too many streams for the hardware
        // prefetcher to follow).
        for (i64 p = 0; p < nd; p += 4) {
          const i64 m = std::min<i64>(4, nd - p);
          sqdist4<T>(X, dr.data() + p, m, b, znt, len, pd);
          for (i64 r = 0; r < m && nlen > 0; ++r) {
            const char* c = reinterpret_cast<const char*>(X.row<T>(dr[p + r]) + nb);
            const char* e = reinterpret_cast<const char*>(X.row<T>(dr[p + r]) + nb + nlen);
            for (; c < e; c += 64) __builtin_prefetch(c, 0, 2);
          }
        }
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

std::int64_t geometric_median(const Messages& X, const std::vector<double>& weights, double nu, std::int64_t max_iter,
                              double tol, void* out) {
  return dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    return weiszfeld<T>(X, weights, nu, max_iter, tol, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
