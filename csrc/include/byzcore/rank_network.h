// Compile-time comparator networks for coordinate-wise order statistics, shared by the CPU
// (SIMD registers) and CUDA (one thread per coordinate, registers) twins.
//
// Both reduce, per coordinate, the values of ranks lo..hi (the median: the one or two middle
// ranks; the trimmed mean: f..n-f-1) to their mean. A network whose comparator indices are
// compile-time constants keeps every value in a register, so the ranks it keeps must be
// compile-time too. Windows symmetric in the n real ranks make that possible with few
// instantiations: on N >= n wires, put `a = pad_below(N, lo, hi)` wires of -inf below the n
// values and N - n - a wires of +inf above them; the kept ranks then always sit at
// window_lo(N, W) .. window_lo(N, W) + W - 1, where W = n - 2 lo is the window's width. So
// one network per (N, W) serves every n <= N and every symmetric window, median included.
// (Non-finite inputs are mapped to +inf, ranking with the +inf pads above every finite value.)
#pragma once

#include <cstdint>

namespace byzcore {
namespace rank_net {

constexpr int kMaxWires = 32;
constexpr int kMaxComparators = 256;  // Batcher's odd-even merge sort on 32 wires has 191

struct Net {
  std::int8_t a[kMaxComparators] = {};  // after comparator c, wire a[c] holds the min,
  std::int8_t b[kMaxComparators] = {};  // wire b[c] the max
  int m = 0;
};

// Batcher's odd-even merge sort on n wires (generated for the next power of two; a comparator
// touching a wire >= n is dropped, exact since padding wires would hold +inf and never move),
// then, for lo >= 0, pruned backwards to the comparators that can change which values land in
// ranks lo..hi: one whose two outputs go straight to unused ranks, or straight to two kept
// ranks (the sum does not care which is which), is dropped.
//
// The comparators come in the order of the recursion (sort the left half, sort the right half,
// merge them: a post-order of the merge tree) rather than phase by phase across all wires.
// Comparators on disjoint wires commute, so the network is the same; but a block of 8 wires
// is finished before the next one is touched, so few values are live at a time and a CPU
// with 16 vector registers spills far less.
constexpr Net make_net(int n, int lo, int hi) {
  Net net{};
  int key[kMaxComparators] = {};  // post-order position of the comparator's merge
  int p2 = 1;
  while (p2 < n) p2 <<= 1;
  for (int p = 1; p < p2; p <<= 1)
    for (int k = p; k >= 1; k >>= 1)
      for (int j = k % p; j + k < p2; j += 2 * k)
        for (int i = 0; i < k && i + j + k < p2; ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n) {
            net.a[net.m] = static_cast<std::int8_t>(i + j);
            net.b[net.m] = static_cast<std::int8_t>(i + j + k);
            // The merge of block [blk * 2p, (blk + 1) * 2p) comes after everything that ends
            // before its end, and after the smaller merges that end where it ends.
            key[net.m] = ((i + j) / (2 * p) + 1) * 2 * p * 64 + p;
            ++net.m;
          }
  for (int c = 1; c < net.m; ++c) {  // stable insertion sort by key
    const int kc = key[c];
    const std::int8_t ac = net.a[c], bc = net.b[c];
    int q = c;
    for (; q > 0 && key[q - 1] > kc; --q) {
      key[q] = key[q - 1];
      net.a[q] = net.a[q - 1];
      net.b[q] = net.b[q - 1];
    }
    key[q] = kc;
    net.a[q] = ac;
    net.b[q] = bc;
  }
  if (lo < 0) return net;
  bool terminal[kMaxWires] = {}, kept[kMaxWires] = {}, keep[kMaxComparators] = {};
  for (int w = 0; w < n; ++w) {
    terminal[w] = true;
    kept[w] = w >= lo && w <= hi;
  }
  for (int c = net.m - 1; c >= 0; --c) {
    const int a = net.a[c], b = net.b[c];
    if (terminal[a] && terminal[b] && kept[a] == kept[b]) continue;
    keep[c] = true;
    terminal[a] = terminal[b] = false;
  }
  Net out{};
  for (int c = 0; c < net.m; ++c)
    if (keep[c]) {
      out.a[out.m] = net.a[c];
      out.b[out.m] = net.b[c];
      ++out.m;
    }
  return out;
}

// The window of width W on N wires, and the -inf pads that put n real values under it.
constexpr int window_lo(int N, int W) { return (N - W) / 2; }
constexpr std::int64_t pad_below(int N, std::int64_t lo, std::int64_t hi) {
  return window_lo(N, static_cast<int>(hi - lo + 1)) - lo;
}
// Whether ranks lo..hi of n values can be served by the (N, hi - lo + 1) window network.
constexpr bool window_fits(int N, std::int64_t n, std::int64_t lo, std::int64_t hi) {
  return n >= 1 && n <= N && lo >= 0 && lo <= hi && hi < n && lo == n - 1 - hi && pad_below(N, lo, hi) >= 0 &&
         pad_below(N, lo, hi) <= N - n;
}

// The network of the (N, W) window, as a constant the compiler unrolls.
template <int N, int W>
struct WindowNet {
  static constexpr int lo = window_lo(N, W);
  static constexpr int hi = lo + W - 1;
  static constexpr Net net = make_net(N, lo, hi);
};

// Sorting (no pruning) and median networks of exactly N wires.
template <int N>
struct SortNet {
  static constexpr Net net = make_net(N, -1, -1);
};
template <int N>
struct MedianNet {
  static constexpr Net net = make_net(N, (N - 1) / 2, N / 2);
};

}  // namespace rank_net
}  // namespace byzcore
