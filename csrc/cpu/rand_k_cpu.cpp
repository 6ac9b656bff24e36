// Random-k sparsification and bucket means.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "byzcore/backends.h"
#include "byzcore/counter_rng.h"
#include "cpu/cpu_common.h"

namespace byzcore {
namespace cpu {

// THE DRAW (csrc/cuda must reproduce it bit for bit): for coordinate j in 0..d-1 the key is
// counter_key(seed, j); the kept coordinates are the k smallest pairs (key_j, j) in
// lexicographic order (a key tie, vanishingly rare, goes to the lower index); they are
// written in ascending order of j. Uniform keys make this a uniform draw without replacement.
//
// Instead of sorting d keys, only keys below a threshold t are collected: t is chosen so that
// about k + 8 sqrt(k) + 64 keys fall below it. If at least k do, the k smallest pairs are
// among them (exact); otherwise (probability far below 1e-9) t is doubled and the pass repeated.
void rand_k_indices(std::int64_t d, std::int64_t k, std::uint64_t seed, const Place&, std::int64_t* out) {
  if (k == d) {
    std::iota(out, out + d, std::int64_t{0});
    return;
  }
  using Pair = std::pair<std::uint64_t, std::int64_t>;
  double want = static_cast<double>(k) + 8.0 * std::sqrt(static_cast<double>(k)) + 64.0;
  std::vector<Pair> cand;
  for (;;) {
    const double frac = want / static_cast<double>(d);
    const bool all = frac >= 0.5;  // no gain from filtering: keep every key
    const std::uint64_t t =
        all ? std::numeric_limits<std::uint64_t>::max() : static_cast<std::uint64_t>(frac * 18446744073709551616.0);
    cand.clear();
    const std::int64_t chunks = std::max<std::int64_t>(1, std::min<std::int64_t>(num_threads() * 4, d / 65536));
    const std::int64_t chunk = (d + chunks - 1) / chunks;
    std::vector<std::vector<Pair>> parts(static_cast<std::size_t>(chunks));
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
    for (std::int64_t c = 0; c < chunks; ++c) {
      auto& part = parts[static_cast<std::size_t>(c)];
      const std::int64_t b = c * chunk, e = std::min(d, b + chunk);
      for (std::int64_t j = b; j < e; ++j) {
        const std::uint64_t key = counter_key(seed, static_cast<std::uint64_t>(j));
        if (all || key < t) part.emplace_back(key, j);
      }
    }
    for (auto& part : parts) cand.insert(cand.end(), part.begin(), part.end());
    if (static_cast<std::int64_t>(cand.size()) >= k) break;
    want *= 2;
  }
  auto less = [](const Pair& a, const Pair& b) { return a < b; };
  std::nth_element(cand.begin(), cand.begin() + (k - 1), cand.end(), less);
  for (std::int64_t i = 0; i < k; ++i) out[i] = cand[static_cast<std::size_t>(i)].second;
  std::sort(out, out + k, [](std::int64_t a, std::int64_t b) { return a < b; });
}

namespace {

template <class T>
void rand_k_impl(const Messages& X, std::int64_t k, std::uint64_t seed, T* out) {
  const std::int64_t n = X.n, d = X.d;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(k));
  rand_k_indices(d, k, seed, X.place, idx.data());
  // Scaled in the messages' precision, as x[idx] * (d / k) is in NumPy or PyTorch, so the
  // dense and the sparse form (rand_k_sparse) hold the same numbers.
  const T scale = static_cast<T>(static_cast<double>(d) / static_cast<double>(k));
  parallel_tiles(d, n, [&](std::int64_t b, std::int64_t e) {
    const auto first = std::lower_bound(idx.begin(), idx.end(), b);
    const auto last = std::lower_bound(first, idx.end(), e);
    for (std::int64_t i = 0; i < n; ++i) {
      const T* r = X.row<T>(i);
      T* o = out + i * d;
      std::fill(o + b, o + e, T(0));
      for (auto it = first; it != last; ++it) o[*it] = r[*it] * scale;
    }
  });
}

template <class T>
void bucket_means_impl(const Messages& X, const std::vector<std::int64_t>& perm, std::int64_t s, T* out) {
  const std::int64_t n = X.n, d = X.d;
  const std::int64_t buckets = (n + s - 1) / s;
  parallel_tiles(d, n, [&](std::int64_t b, std::int64_t e) {
    double acc[kTile];
    const std::int64_t len = e - b;
    for (std::int64_t bk = 0; bk < buckets; ++bk) {
      const std::int64_t first = bk * s, last = std::min(n, first + s);
      std::fill(acc, acc + len, 0.0);
      for (std::int64_t m = first; m < last; ++m) {
        const T* r = X.row<T>(perm[static_cast<std::size_t>(m)]) + b;
        for (std::int64_t j = 0; j < len; ++j) acc[j] += static_cast<double>(r[j]);
      }
      const double inv = 1.0 / static_cast<double>(last - first);
      T* o = out + bk * d + b;
      for (std::int64_t j = 0; j < len; ++j) o[j] = static_cast<T>(acc[j] * inv);
    }
  });
}

}  // namespace

void rand_k(const Messages& X, std::int64_t k, std::uint64_t seed, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rand_k_impl<T>(X, k, seed, static_cast<T*>(out));
  });
}

void bucket_means(const Messages& X, const std::vector<std::int64_t>& perm, std::int64_t s, void* out) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    bucket_means_impl<T>(X, perm, s, static_cast<T*>(out));
  });
}

}  // namespace cpu
}  // namespace byzcore
