// The subset rules (MDA, SMEA, CAF, DnC) on the CPU: the squared distances from the Gram kernel
// (squared_distances), the choice of messages on the small n x n matrix (subset_search.cpp),
// and the weighted mean of the chosen rows, accumulated in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/counter_rng.h"
#include "byzcore/subset_search.h"
#include "cpu/cpu_common.h"
#include "cpu/distance_cpu.h"
#include "cpu/rows_cpu.h"

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;

// The mean of the chosen rows (w_i != 0), added in index order: a subset's plain mean
// (equal weights) as a unit-weight mean, other weights as they are (mean_of_rows divides by
// their sum).
void write_mean(const Messages& X, const subset::Weights& w, void* out) {
  std::vector<i64> rows;
  std::vector<double> wr;
  for (i64 i = 0; i < X.n; ++i)
    if (w[i] != 0) rows.push_back(i), wr.push_back(w[i]);
  bool uniform = true;
  for (double v : wr) uniform = uniform && v == wr[0];
  mean_of_rows(X, rows, uniform ? std::vector<double>{} : wr, out);
}

std::vector<double> distances(const Messages& X, std::vector<char>* finite = nullptr) {
  std::vector<double> D(static_cast<std::size_t>(X.n * X.n));
  squared_distances(X, D.data(), finite);
  return D;
}

// finite[i] = 1 if every entry of message i is finite (DnC sees only a subsample of them).
template <class T>
std::vector<char> finite_rows(const Messages& X) {
  std::vector<char> finite(static_cast<std::size_t>(X.n), 1);
  for (i64 i = 0; i < X.n; ++i) {
    const T* r = X.row<T>(i);
    bool ok = true;
    for (i64 j = 0; j < X.d; ++j) ok &= is_finite(r[j]);
    finite[i] = ok;
  }
  return finite;
}

template <class T>
void dnc_impl(const Messages& X, std::int64_t remove, std::int64_t iters, std::int64_t sub_dim, std::uint64_t seed,
              void* out) {
  const i64 n = X.n, b = std::min(sub_dim, X.d);
  const std::vector<char> finite = finite_rows<T>(X);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(b));
  std::vector<T> sub(static_cast<std::size_t>(n * b));
  std::vector<double> D(static_cast<std::size_t>(n * n));
  std::vector<char> good(static_cast<std::size_t>(n), 1), keep;
  Messages Y;
  Y.n = n, Y.d = b, Y.dtype = X.dtype, Y.place = X.place;
  for (i64 i = 0; i < n; ++i) Y.rows.push_back(sub.data() + i * b);
  for (i64 t = 0; t < iters; ++t) {
    rand_k_indices(X.d, b, counter_key(seed, static_cast<std::uint64_t>(t)), X.place, idx.data());
    for (i64 i = 0; i < n; ++i) {
      const T* r = X.row<T>(i);
      T* s = sub.data() + i * b;
      for (i64 q = 0; q < b; ++q) s[q] = r[idx[q]];
    }
    squared_distances(Y, D.data());
    subset::dnc_round(D.data(), finite, n, remove, keep);
    for (i64 i = 0; i < n; ++i) good[i] = good[i] && keep[i];
  }
  subset::Weights w(static_cast<std::size_t>(n), 0.0);
  i64 count = 0;
  for (i64 i = 0; i < n; ++i) count += good[i];
  for (i64 i = 0; i < n; ++i) w[i] = good[i] ? 1.0 / static_cast<double>(count) : 0.0;
  write_mean(X, w, out);
}

}  // namespace

void mda(const Messages& X, std::int64_t f, std::int64_t max_steps, void* out) {
  const std::vector<double> D = distances(X);
  write_mean(X, subset::min_diameter(D.data(), X.n, f, max_steps), out);
}

void smea(const Messages& X, std::int64_t f, std::int64_t max_subsets, void* out) {
  std::vector<char> finite;
  const std::vector<double> D = distances(X, &finite);
  write_mean(X, subset::min_max_eigenvalue(D.data(), finite, X.n, f, max_subsets), out);
}

void caf(const Messages& X, std::int64_t f, void* out) {
  std::vector<char> finite;
  const std::vector<double> D = distances(X, &finite);
  write_mean(X, subset::covariance_filter(D.data(), finite, X.n, f), out);
}

void dnc(const Messages& X, std::int64_t remove, std::int64_t iters, std::int64_t sub_dim, std::uint64_t seed,
         void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dnc_impl<T>(X, remove, iters, sub_dim, seed, out);
  });
}

}  // namespace cpu
}  // namespace byzcore
