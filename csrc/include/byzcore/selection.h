// Host-side subset choices shared by the CPU and CUDA backends (the small n-sized searches of
// the rules that pick whole messages; the O(n d) passes stay on the messages' device).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace byzcore {

// The k indices with the smallest key, ties to the lower index, returned ascending.
inline std::vector<std::int64_t> smallest_keys(const std::vector<double>& key, std::int64_t k) {
  std::vector<std::int64_t> idx(key.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](std::int64_t a, std::int64_t b) { return key[a] < key[b]; });
  idx.resize(static_cast<std::size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Bulyan's selection (El Mhamdi et al. 2018): theta = n - 2f rounds of Krum on the messages
// not chosen yet, the Krum scores recomputed on that remaining set each round. Round with r
// messages left scores each by the sum of its max(1, r - f - 2) smallest squared distances to
// the other remaining ones (as Flower does: Krum's n - f - 2 would reach zero in the last
// rounds), smallest first; the lowest score is chosen, ties to the lower index.
// D: the n x n squared distances (row-major). Returns the chosen indices, ascending.
inline std::vector<std::int64_t> iterated_krum(const std::vector<double>& D, std::int64_t n, std::int64_t f) {
  const std::int64_t theta = n - 2 * f;
  std::vector<std::int64_t> left(static_cast<std::size_t>(n)), chosen;
  std::iota(left.begin(), left.end(), 0);
  std::vector<double> row;
  for (std::int64_t round = 0; round < theta; ++round) {
    const auto r = static_cast<std::int64_t>(left.size());
    const std::int64_t k = std::min(r - 1, std::max<std::int64_t>(1, r - f - 2));
    std::size_t best = 0;
    double best_score = 0;
    for (std::size_t a = 0; a < left.size(); ++a) {
      row.clear();
      for (std::size_t b = 0; b < left.size(); ++b)
        if (b != a) row.push_back(D[static_cast<std::size_t>(left[a] * n + left[b])]);
      std::partial_sort(row.begin(), row.begin() + k, row.end());
      double s = 0;
      for (std::int64_t q = 0; q < k; ++q) s += row[static_cast<std::size_t>(q)];
      if (a == 0 || s < best_score) {  // strict: ties keep the lower index
        best = a;
        best_score = s;
      }
    }
    chosen.push_back(left[best]);
    left.erase(left.begin() + static_cast<std::ptrdiff_t>(best));
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

// ARC's number of clipped messages, floor(2 f (n - f) / n), without overflow (0 <= f <= n).
inline std::int64_t arc_clipped(std::int64_t n, std::int64_t f) {
  return static_cast<std::int64_t>(static_cast<__int128>(2) * f * (n - f) / n);
}

}  // namespace byzcore
