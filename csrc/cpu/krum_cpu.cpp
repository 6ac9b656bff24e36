// Krum, Multi-Krum and nearest-neighbour mixing: rules that rank messages by their squared
// distances (from squared_distances, exact to a float64 reference) and average chosen rows in
// double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "byzcore/backends.h"
#include "cpu/cpu_common.h"
#include "cpu/distance_cpu.h"
#include "cpu/rows_cpu.h"
#include "cpu/simd_vectors.h"

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;

// score(i): sum of the n-f-2 smallest distances to the others, added smallest first so that
// equal messages get bit-identical scores (and the tie goes to the lower index).
std::vector<double> scores_of(const Messages& X, i64 f) {
  const i64 n = X.n, k = n - f - 2;
  std::vector<double> D(static_cast<std::size_t>(n * n));
  squared_distances(X, D.data());
  std::vector<double> s(static_cast<std::size_t>(n)), row;
  for (i64 i = 0; i < n; ++i) {
    row.clear();
    for (i64 j = 0; j < n; ++j)
      if (j != i) row.push_back(D[i * n + j]);
    std::partial_sort(row.begin(), row.begin() + k, row.end());
    double acc = 0;
    for (i64 q = 0; q < k; ++q) acc += row[q];
    s[i] = acc;
  }
  return s;
}

// Four doubles stored as T (rounded once for float).
inline void store4(float* p, v4d v) {
  const v4f f = __builtin_convertvector(v, v4f);
  std::memcpy(p, &f, sizeof f);
}
inline void store4(double* p, v4d v) { std::memcpy(p, &v, sizeof v); }

// out[j] = (sum_t w_t x_{rows[t], j}) / sum_t w_t, each coordinate summed over t in order.
// Blocks of 16 coordinates keep their sums in registers while the rows go by, instead of a
// tile of sums in L1 reloaded and stored once per row (which bound the old loop at about a
// third of the read bandwidth in cache). Tiles run descending (see parallel_tiles) and each
// requests the next tile's rows a few lines per block, one row after the other, since the
// hardware prefetchers lose track of many short concurrent streams (cpu_common.h).
template <class T>
void mean_of_rows_impl(const Messages& X, const std::vector<i64>& rows_in, const std::vector<double>& w_in, T* out) {
  std::vector<const T*> rows;
  std::vector<double> w;
  double total = 0;
  for (std::size_t t = 0; t < rows_in.size(); ++t) {
    const double wt = w_in.empty() ? 1.0 : w_in[t];
    total += wt;
    if (wt == 0.0) continue;  // weight 0: the message takes no part (not 0 * NaN)
    rows.push_back(X.row<T>(rows_in[t]));
    w.push_back(wt);
  }
  const bool unit = w_in.empty();
  const double inv = 1.0 / total;
  const i64 m = static_cast<i64>(rows.size()), d = X.d;
  constexpr i64 kB = 16, kLine = 64 / sizeof(T);
  const i64 lines_per_block = (m * ((kTile + kLine - 1) / kLine) + kTile / kB - 1) / (kTile / kB);
  parallel_tiles(
      d, m,
      [&](i64 b, i64 e) {
        i64 pr = 0, pc = b - kTile;  // next tile (descending): rows' [b - kTile, b), row pr, column pc
        auto prefetch_some = [&] {
          for (i64 q = 0; q < lines_per_block && pr < m && pc >= 0; ++q) {
            __builtin_prefetch(rows[static_cast<std::size_t>(pr)] + pc, 0, 3);
            pc += kLine;
            if (pc >= b) pc = b - kTile, ++pr;
          }
        };
        i64 j = b;
        for (; j + kB <= e; j += kB) {
          prefetch_some();
          v4d a0{}, a1{}, a2{}, a3{};
          for (i64 t = 0; t < m; ++t) {
            const T* r = rows[static_cast<std::size_t>(t)] + j;
            if (unit) {
              a0 += load4(r), a1 += load4(r + 4), a2 += load4(r + 8), a3 += load4(r + 12);
            } else {
              const double wt = w[static_cast<std::size_t>(t)];
              a0 += wt * load4(r), a1 += wt * load4(r + 4), a2 += wt * load4(r + 8), a3 += wt * load4(r + 12);
            }
          }
          store4(out + j, a0 * inv), store4(out + j + 4, a1 * inv), store4(out + j + 8, a2 * inv),
              store4(out + j + 12, a3 * inv);
        }
        for (; j < e; ++j) {
          double acc = 0;
          for (i64 t = 0; t < m; ++t) acc += w[static_cast<std::size_t>(t)] * static_cast<double>(rows[t][j]);
          out[j] = static_cast<T>(acc * inv);
        }
      },
      kTile, /*descending=*/true);
}

}  // namespace

void mean_of_rows(const Messages& X, const std::vector<std::int64_t>& rows, const std::vector<double>& w, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    mean_of_rows_impl<T>(X, rows, w, static_cast<T*>(out));
  });
}

void krum_scores(const Messages& X, std::int64_t f, void* out) {
  const std::vector<double> s = scores_of(X, f);
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* o = static_cast<T*>(out);
    for (i64 i = 0; i < X.n; ++i) o[i] = static_cast<T>(s[i]);
  });
}

void krum(const Messages& X, std::int64_t f, void* out) {
  const std::vector<double> s = scores_of(X, f);
  i64 best = 0;
  for (i64 i = 1; i < X.n; ++i)
    if (s[i] < s[best]) best = i;  // strict: ties keep the lowest index
  mean_of_rows(X, {best}, {}, out);
}

void multi_krum(const Messages& X, std::int64_t f, std::int64_t m, void* out) {
  const std::vector<double> s = scores_of(X, f);
  std::vector<i64> order(static_cast<std::size_t>(X.n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](i64 a, i64 b) { return s[a] < s[b]; });
  order.resize(static_cast<std::size_t>(m));
  std::sort(order.begin(), order.end());
  mean_of_rows(X, order, {}, out);
}

void nnm(const Messages& X, std::int64_t f, void* out) {
  const i64 n = X.n, d = X.d, keep = n - f;
  std::vector<double> D(static_cast<std::size_t>(n * n));
  std::vector<char> finite;
  squared_distances(X, D.data(), &finite);
  // sel[i]: the keep nearest messages of i by (distance, index), in ascending index order. A
  // non-finite message is infinitely far from all, so its neighbours are the finite ones
  // (lowest indices first), and the non-finite ones only if fewer than keep are finite.
  std::vector<i64> sel(static_cast<std::size_t>(n * keep)), idx(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) {
    if (finite[i]) {
      sorted_neighbours(D.data() + i * n, n, -1, idx.data());
    } else {
      i64 q = 0;
      for (i64 j = 0; j < n; ++j)
        if (finite[j]) idx[q++] = j;
      for (i64 j = 0; j < n; ++j)
        if (!finite[j]) idx[q++] = j;
    }
    std::sort(idx.begin(), idx.begin() + keep);
    std::copy(idx.begin(), idx.begin() + keep, sel.begin() + i * keep);
  }
  const double inv = 1.0 / static_cast<double>(keep);
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* o = static_cast<T*>(out);
    parallel_tiles(d, n * keep, [&](i64 b, i64 e) {
      double acc[kTile];
      const i64 len = e - b;
      for (i64 i = 0; i < n; ++i) {
        std::fill(acc, acc + len, 0.0);
        const i64* nb = sel.data() + i * keep;
        i64 q = 0;
        // Four neighbours per pass: the accumulator tile is loaded and stored a quarter as
        // often, which is what bounds this loop.
        for (; q + 4 <= keep; q += 4) {
          const T* r0 = X.row<T>(nb[q]) + b;
          const T* r1 = X.row<T>(nb[q + 1]) + b;
          const T* r2 = X.row<T>(nb[q + 2]) + b;
          const T* r3 = X.row<T>(nb[q + 3]) + b;
          for (i64 j = 0; j < len; ++j)
            acc[j] += (static_cast<double>(r0[j]) + static_cast<double>(r1[j])) +
                      (static_cast<double>(r2[j]) + static_cast<double>(r3[j]));
        }
        for (; q < keep; ++q) {
          const T* r = X.row<T>(nb[q]) + b;
          for (i64 j = 0; j < len; ++j) acc[j] += static_cast<double>(r[j]);
        }
        T* oi = o + i * d + b;
        for (i64 j = 0; j < len; ++j) oi[j] = static_cast<T>(acc[j] * inv);
      }
    });
  });
}

}  // namespace cpu
}  // namespace byzcore
