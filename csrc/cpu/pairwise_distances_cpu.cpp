// Pairwise squared distances through a blocked Gram product, with a cancellation guard.
//
// D_ij = ||x_i||^2 + ||x_j||^2 - 2 <x_i, x_j> costs n^2 d / 2 multiply-adds that run at the
// machine's FMA peak, where the direct sum (x_i - x_j)^2 needs twice the work in double and
// reloads both rows per pair. The rows are first centred on one finite message c (so the norms
// are at the scale of the distances, not of the messages), packed chunk by chunk into an
// aligned buffer, and multiplied by a register-tiled 4x3 micro-kernel of SIMD accumulators.
//
// Accuracy. Each chunk of kChunk coordinates is summed in the input precision (kChunk/lanes
// = 64 float terms per lane, then a 3-level lane sum), and chunks are added in double, so
// every norm and dot product carries an absolute error of at most about
// g = (kChunk/lanes + 3) u ||x_i'|| ||x_j'|| (u = 2^-24 for float). The formula then loses
// relative accuracy only when D_ij is small against s = ||x_i'||^2 + ||x_j'||^2: the guard
// recomputes every pair with D_ij <= tau s directly as sum (x_i - x_j)^2 in double. Outside
// the guard the relative error is at most 2 g / (tau s) ~ 2 (64 + 3) u / tau: with tau = 2^-5
// that is 2.6e-4 in the worst case for float32 (rounding errors of independent chunks
// average out, so on real data it is orders of magnitude smaller: ~1e-7 in the tests), and
// tau = 2^-10 gives 1.5e-11 for float64 (64 + 3 terms). A larger tau would tighten the bound
// but send more pairs to the slower direct path; 2^-5 keeps honest gradients (whose
// distances are of the order of their centred norms) on the fast path while catching every
// near-duplicate (mimic attacks, D ~ 0). kChunk = 512 rather than 256 costs a factor 2 in
// that bound and saves 4% of the time (fewer lane sums).
// Rows whose centred entries are too large (float products would overflow) or too small
// (would underflow) for the fast path have all their pairs computed directly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "byzcore/backends.h"
#include "cpu/cpu_common.h"
#include "cpu/distance_cpu.h"
#include "cpu/simd_vectors.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define BYZCORE_GRAM_AVX 1
#endif

namespace byzcore {
namespace cpu {

namespace {

using i64 = std::int64_t;

template <class S>
struct Gram;

template <>
struct Gram<float> {
  using V = v8f;
  using VI = v8i;
  using I = std::int32_t;
  static constexpr int kLanes = 8;
  static constexpr i64 kChunk = 512;        // coordinates summed in float before going to double
  static constexpr double kTau = 1.0 / 32;  // cancellation guard (see the error bound above)
  static constexpr double kHi = 0x1p56;     // centred |x| above: kChunk x^2 could overflow float
  static constexpr double kLo = 0x1p-40;    // nonzero centred max |x| below: products underflow
};
template <>
struct Gram<double> {
  using V = v4d;
  using VI = v4i;
  using I = std::int64_t;
  static constexpr int kLanes = 4;
  static constexpr i64 kChunk = 256;
  static constexpr double kTau = 1.0 / 1024;
  static constexpr double kHi = 0x1p480;
  static constexpr double kLo = 0x1p-400;
};

template <class V>
inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

// Lane sums of K accumulators in double, by one summation tree for every accumulator (so a
// product gives the same bits whichever tile computes it).
template <int K>
inline void lane_sums(const v8f (&c)[K], double* r) {
#if defined(BYZCORE_GRAM_AVX)
  // 8 accumulators at once: a transpose by horizontal adds; missing ones count as zero.
  for (int q0 = 0; q0 < K; q0 += 8) {
    auto m = [&](int q) { return q0 + q < K ? static_cast<__m256>(c[q0 + q]) : _mm256_setzero_ps(); };
    __m256 t0 = _mm256_hadd_ps(m(0), m(1)), t1 = _mm256_hadd_ps(m(2), m(3));
    __m256 t2 = _mm256_hadd_ps(m(4), m(5)), t3 = _mm256_hadd_ps(m(6), m(7));
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    __m256 s8 = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    alignas(32) double t[8];
    _mm256_store_pd(t, _mm256_cvtps_pd(_mm256_castps256_ps128(s8)));
    _mm256_store_pd(t + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(s8, 1)));
    for (int q = 0; q < 8 && q0 + q < K; ++q) r[q0 + q] = t[q];
  }
#else
  for (int q = 0; q < K; ++q) {
    double s = 0;
    for (int l = 0; l < 8; ++l) s += static_cast<double>(c[q][l]);
    r[q] = s;
  }
#endif
}

template <int K>
inline void lane_sums(const v4d (&c)[K], double* r) {
  for (int q = 0; q < K; ++q) r[q] = lane_sum(c[q]);
}

// G[a][b] += <A_a, B_b> for a < MA, b < MB over nv vectors; rows are ld scalars apart. With
// TRI (B's rows right after A's), also G[MA + b][b'] += <B_b, B_b'> for b <= b': B's own
// triangle, taken in the same pass so that its few accumulators do not wait on each other.
template <class S, int MA, int MB, bool TRI = false>
inline void tile(const S* A, const S* B, i64 ld, i64 nv, double* G, i64 ldg) {
  using V = typename Gram<S>::V;
  constexpr int L = Gram<S>::kLanes, KR = MA * MB, K = KR + (TRI ? MB * (MB + 1) / 2 : 0);
  V c[K] = {};
  const i64 end = nv * L;
  for (i64 k = 0; k < end; k += L) {
    V y[MB];
#pragma GCC unroll 4
    for (int b = 0; b < MB; ++b) y[b] = load<V>(B + b * ld + k);
#pragma GCC unroll 4
    for (int a = 0; a < MA; ++a) {
      const V x = load<V>(A + a * ld + k);
#pragma GCC unroll 4
      for (int b = 0; b < MB; ++b) c[a * MB + b] += x * y[b];
    }
    if constexpr (TRI) {
      int q = KR;
#pragma GCC unroll 4
      for (int b = 0; b < MB; ++b)
#pragma GCC unroll 4
        for (int e = b; e < MB; ++e) c[q++] += y[b] * y[e];
    }
  }
  double r[K];
  lane_sums<K>(c, r);
  for (int a = 0; a < MA; ++a)
    for (int b = 0; b < MB; ++b) G[a * ldg + b] += r[a * MB + b];
  if constexpr (TRI) {
    int q = KR;
    for (int b = 0; b < MB; ++b)
      for (int e = b; e < MB; ++e) G[(MA + b) * ldg + e] += r[q++];
  }
}

// G[a][b] += <A_a, A_b> for a <= b < M: the triangle of M rows.
template <class S, int M>
inline void tri(const S* A, i64 ld, i64 nv, double* G, i64 ldg) {
  using V = typename Gram<S>::V;
  constexpr int L = Gram<S>::kLanes, K = M * (M + 1) / 2;
  V c[K] = {};
  const i64 end = nv * L;
  for (i64 k = 0; k < end; k += L) {
    V x[M];
#pragma GCC unroll 4
    for (int a = 0; a < M; ++a) x[a] = load<V>(A + a * ld + k);
    int q = 0;
#pragma GCC unroll 4
    for (int a = 0; a < M; ++a)
#pragma GCC unroll 4
      for (int b = a; b < M; ++b) c[q++] += x[a] * x[b];
  }
  double r[K];
  lane_sums<K>(c, r);
  int q = 0;
  for (int a = 0; a < M; ++a)
    for (int b = a; b < M; ++b) G[a * ldg + b] += r[q++];
}

// The products of the 4-row block at I (I + 4 <= n) over one packed chunk, with no pair
// outside the upper triangle: its own triangle, then the rows after it in tiles of 3 columns
// (2 + 2 in place of 3 + 1: a lone column has too few accumulators to keep the FMAs busy).
// The last full block also takes the triangle of the r = n - I - 4 < 4 rows after it.
template <class S>
void exact_block(const S* P, i64 ld, i64 nv, i64 n, i64 I, double* G, i64 np) {
  const S* A = P + I * ld;
  tri<S, 4>(A, ld, nv, G + I * np + I, np);
  const i64 r = n - I - 4;
  if (r < 4) {
    if (r == 3)
      tile<S, 4, 3>(A, A + 4 * ld, ld, nv, G + I * np + I + 4, np),
          tri<S, 3>(A + 4 * ld, ld, nv, G + (I + 4) * np + I + 4, np);
    if (r == 2) tile<S, 4, 2, true>(A, A + 4 * ld, ld, nv, G + I * np + I + 4, np);
    if (r == 1) tile<S, 4, 1, true>(A, A + 4 * ld, ld, nv, G + I * np + I + 4, np);
    return;
  }
  i64 J = I + 4, threes = r / 3;
  if (r % 3 == 1) --threes;  // r >= 4 here: leaves 4 = 2 + 2
  for (i64 t = 0; t < threes; ++t, J += 3) tile<S, 4, 3>(A, P + J * ld, ld, nv, G + I * np + J, np);
  for (; J < n; J += 2) tile<S, 4, 2>(A, P + J * ld, ld, nv, G + I * np + J, np);
}

// Rows of the packed buffer streamed per super-block: their chunk stays in L2 while the
// 4-row blocks go over them.
template <class S>
i64 super_block_rows() {
  const i64 rows = (192 * 1024) / (Gram<S>::kChunk * static_cast<i64>(sizeof(S)));
  return std::max<i64>(12, rows / 12 * 12);
}

// All tiles of one packed chunk whose 4-row block starts at I, restricted to the upper
// triangle (a tile is skipped when all its pairs have j < i).
template <class S>
void tiles_for_block(const S* P, i64 ld, i64 nv, i64 np, i64 I, i64 J0, i64 J1, double* G) {
  for (i64 J = std::max(J0, I / 3 * 3); J < J1; J += 3)
    tile<S, 4, 3>(P + I * ld, P + J * ld, ld, nv, G + I * np + J, np);
}

// Asks for the next chunk of rows [r0, r1) (coordinates [k0, k0+len)) to be brought into L2
// while the current chunk is multiplied: n short row pieces are too many streams for the
// hardware prefetcher, and waiting for DRAM would otherwise stall each packing.
template <class T>
inline void prefetch_rows(const Messages& X, i64 k0, i64 len, i64 r0, i64 r1) {
  for (i64 i = r0; i < r1; ++i) {
    const char* p = reinterpret_cast<const char*>(X.row<T>(i) + k0);
    const char* e = reinterpret_cast<const char*>(X.row<T>(i) + k0 + len);
    for (; p < e; p += 64) __builtin_prefetch(p, 0, 2);
  }
}

// Blocks start below n only: the zero rows up to np just complete the last tiles. When
// next_len > 0, the next chunk (starting at next_k0) is prefetched a few rows per block.
template <class S>
void chunk_tiles(const S* P, i64 ld, i64 nv, i64 n, i64 np, double* G, const Messages& X, i64 next_k0, i64 next_len) {
  const i64 sb = super_block_rows<S>();
  const i64 blocks = (n + 3) / 4, per = next_len > 0 ? (n + blocks - 1) / blocks : 0;
  i64 next_row = 0;
  auto prefetch_some = [&] {
    if (per > 0 && next_row < n) {
      prefetch_rows<S>(X, next_k0, next_len, next_row, std::min(n, next_row + per));
      next_row += per;
    }
  };
  // The chunk fits in L2 as one super-block: exactly the n (n + 1) / 2 products needed, where
  // the padded tiles below would take up to twice as many at small n (108 for 55 at n = 10).
  if (n <= sb) {                             // the next chunk was prefetched by pack_rows
    if (n < 4) tri<S, 3>(P, ld, nv, G, np);  // n == 3 (smaller n never come here)
    for (i64 I = 0; I + 4 <= n; I += 4) exact_block(P, ld, nv, n, I, G, np);
    return;
  }
  for (i64 J0 = 0; J0 < n; J0 += sb) {
    const i64 J1 = std::min(n, J0 + sb);
    for (i64 I = 0; I < J1; I += 4) {
      prefetch_some();
      tiles_for_block(P, ld, nv, np, I, J0, J1, G);
    }
  }
}

// Per-row facts gathered while packing: any non-finite entry, and the largest centred |x|.
struct RowStats {
  std::vector<char> bad;
  std::vector<double> maxabs;
  explicit RowStats(i64 n) : bad(static_cast<std::size_t>(n), 0), maxabs(static_cast<std::size_t>(n), 0.0) {}
};

// Copies coordinates [k0, k0+len) of rows [r0, r1) minus the centre into P (rows ld apart),
// zero-padding each row to lp, and records the rows' statistics; the first `ahead` scalars of
// each row's next chunk are prefetched on the way.
template <class T>
void pack_rows(const Messages& X, const T* center, i64 k0, i64 len, i64 lp, i64 r0, i64 r1, T* P, i64 ld, RowStats& st,
               i64 ahead = 0) {
  using V = typename Gram<T>::V;
  constexpr int L = Gram<T>::kLanes;
  const T big = std::numeric_limits<T>::max();
  for (i64 i = r0; i < r1; ++i) {
    const T* x = X.row<T>(i) + k0;
    const T* c = center ? center + k0 : nullptr;
    T* p = P + i * ld;
    using VI = typename Gram<T>::VI;
    VI vbad{};
    V vmax{};
    const V vbig = V{} + big;
    const VI absmask = VI{} + std::numeric_limits<typename Gram<T>::I>::max();  // all bits but the sign
    i64 k = 0;
    for (; k + L <= len; k += L) {
      if (k < ahead && k % (64 / sizeof(T)) == 0) __builtin_prefetch(x + len + k, 0, 3);
      const V v = load<V>(x + k);
      const V y = c ? v - load<V>(c + k) : v;
      std::memcpy(p + k, &y, sizeof(V));
      const V av = (V)((VI)v & absmask);
      const V ay = (V)((VI)y & absmask);
      vbad |= ~(av <= vbig);           // NaN and +-Inf fail the comparison
      vmax = (ay > vmax) ? ay : vmax;  // maxps: a NaN in y leaves vmax as it was
    }
    bool bad = false;
    T m = 0;
    for (int l = 0; l < L; ++l) {
      bad |= vbad[l] != 0;
      m = std::max(m, vmax[l]);
    }
    for (; k < len; ++k) {
      const T v = x[k];
      const T y = c ? v - c[k] : v;
      p[k] = y;
      bad |= !is_finite(v);
      if (std::abs(y) > m) m = std::abs(y);
    }
    for (; k < lp; ++k) p[k] = 0;
    if (bad) st.bad[i] = 1;
    st.maxabs[i] = std::max(st.maxabs[i], static_cast<double>(m));
  }
}

template <class T>
double sqdiff(const T* a, const T* b, i64 len);

template <>
double sqdiff<float>(const float* a, const float* b, i64 len) {
  v4d s0{}, s1{};
  i64 k = 0;
  for (; k + 8 <= len; k += 8) {
    const v4d x0 = __builtin_convertvector(load<v4f>(a + k), v4d) - __builtin_convertvector(load<v4f>(b + k), v4d);
    const v4d x1 =
        __builtin_convertvector(load<v4f>(a + k + 4), v4d) - __builtin_convertvector(load<v4f>(b + k + 4), v4d);
    s0 += x0 * x0;
    s1 += x1 * x1;
  }
  double s = lane_sum(s0 + s1);
  for (; k < len; ++k) {
    const double t = static_cast<double>(a[k]) - static_cast<double>(b[k]);
    s += t * t;
  }
  return s;
}

template <>
double sqdiff<double>(const double* a, const double* b, i64 len) {
  v4d s0{}, s1{};
  i64 k = 0;
  for (; k + 8 <= len; k += 8) {
    const v4d x0 = load<v4d>(a + k) - load<v4d>(b + k);
    const v4d x1 = load<v4d>(a + k + 4) - load<v4d>(b + k + 4);
    s0 += x0 * x0;
    s1 += x1 * x1;
  }
  double s = lane_sum(s0 + s1);
  for (; k < len; ++k) {
    const double t = a[k] - b[k];
    s += t * t;
  }
  return s;
}

int threads_for(double work) {
  const int t = num_threads();
  return work < 4e6 ? 1 : t;
}

// Direct sum (x_i - x_j)^2 in double for the listed pairs, in chunks so the rows involved
// stay in cache; threads take disjoint chunk ranges and their partial sums are added in a
// fixed order.
template <class T>
void direct_pairs(const Messages& X, const std::vector<std::pair<i64, i64>>& pairs, std::vector<double>& out) {
  const i64 np = static_cast<i64>(pairs.size());
  out.assign(static_cast<std::size_t>(np), 0.0);
  if (np == 0) return;
  constexpr i64 kC = 2048;
  const i64 nch = (X.d + kC - 1) / kC;
  const int nt = static_cast<int>(std::min<i64>(threads_for(static_cast<double>(np) * X.d), nch));
  std::vector<double> part(static_cast<std::size_t>(nt * np), 0.0);
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
  {
    const int t = thread_index();
    const i64 c0 = nch * t / nt, c1 = nch * (t + 1) / nt;
    double* acc = part.data() + t * np;
    for (i64 c = c0; c < c1; ++c) {
      const i64 k0 = c * kC, len = std::min(kC, X.d - k0);
      for (i64 p = 0; p < np; ++p)
        acc[p] += sqdiff<T>(X.row<T>(pairs[p].first) + k0, X.row<T>(pairs[p].second) + k0, len);
    }
  }
  for (int t = 0; t < nt; ++t)
    for (i64 p = 0; p < np; ++p) out[p] += part[t * np + p];
}

// The Gram product of the rows centred on `center` (nullptr: none): G (np x np, upper
// triangle valid) and the row statistics.
template <class T>
void centred_gram(const Messages& X, const T* center, i64 np, std::vector<double>& G, RowStats& st) {
  using Tr = Gram<T>;
  const i64 n = X.n, d = X.d, C = Tr::kChunk;
  const i64 nch = (d + C - 1) / C;
  const int threads = threads_for(static_cast<double>(n) * n * d / 2);
  G.assign(static_cast<std::size_t>(np * np), 0.0);
  const std::size_t buf = static_cast<std::size_t>(np * C / Tr::kLanes);
  using V = typename Tr::V;
  // Split the coordinates between threads when there are enough chunks and the private
  // n x n partials are small; otherwise split each chunk's 4-row blocks.
  const bool split_d = threads == 1 || (nch >= 4 * threads && static_cast<double>(np) * np * 8 * threads <= 64e6);
  if (split_d) {
    std::vector<std::vector<double>> Gt(static_cast<std::size_t>(threads));
    std::vector<RowStats> stt(static_cast<std::size_t>(threads), RowStats(n));
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
      const int t = thread_index();
      std::vector<double>& g = t == 0 ? G : Gt[static_cast<std::size_t>(t)];
      if (t != 0) g.assign(static_cast<std::size_t>(np * np), 0.0);
      std::vector<V> P(buf, V{});
      T* p = reinterpret_cast<T*>(P.data());
      const i64 c0 = nch * t / threads, c1 = nch * (t + 1) / threads;
      for (i64 c = c0; c < c1; ++c) {
        const i64 k0 = c * C, len = std::min(C, d - k0);
        const i64 lp = (len + Tr::kLanes - 1) / Tr::kLanes * Tr::kLanes;
        const i64 next_len = c + 1 < c1 ? std::min(C, d - k0 - C) : 0;
        // One super-block: each row's next chunk is prefetched while this one is packed (spread
        // over the copy; a burst per block would fill the miss buffers); larger n: per block.
        pack_rows<T>(X, center, k0, len, lp, 0, n, p, C, stt[static_cast<std::size_t>(t)],
                     n <= super_block_rows<T>() ? next_len : 0);
        chunk_tiles<T>(p, C, lp / Tr::kLanes, n, np, g.data(), X, k0 + C, next_len);
      }
    }
    for (int t = 1; t < threads; ++t) {
      const std::vector<double>& g = Gt[static_cast<std::size_t>(t)];
      for (std::size_t q = 0; q < G.size(); ++q) G[q] += g[q];
    }
    for (int t = 0; t < threads; ++t)
      for (i64 i = 0; i < n; ++i) {
        st.bad[i] |= stt[t].bad[i];
        st.maxabs[i] = std::max(st.maxabs[i], stt[t].maxabs[i]);
      }
    return;
  }
  std::vector<V> P(buf, V{});
  T* p = reinterpret_cast<T*>(P.data());
  const i64 sb = super_block_rows<T>();
  for (i64 c = 0; c < nch; ++c) {
    const i64 k0 = c * C, len = std::min(C, d - k0);
    const i64 lp = (len + Tr::kLanes - 1) / Tr::kLanes * Tr::kLanes;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
    {
      const int t = thread_index(), nt = thread_count();
      pack_rows<T>(X, center, k0, len, lp, n * t / nt, n * (t + 1) / nt, p, C, st);
#if defined(_OPENMP)
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
#endif
      for (i64 I = 0; I < n; I += 4)
        for (i64 J0 = I / sb * sb; J0 < n; J0 += sb)
          tiles_for_block(p, C, lp / Tr::kLanes, np, I, J0, std::min(n, J0 + sb), G.data());
    }
  }
}

// Index of the first row that is finite with all |x| <= limit: the centre. -1 when none.
template <class T>
i64 first_safe_row(const Messages& X, double limit) {
  for (i64 i = 0; i < X.n; ++i) {
    const T* x = X.row<T>(i);
    bool ok = true;
    for (i64 k0 = 0; k0 < X.d && ok; k0 += 4096) {
      const i64 k1 = std::min(X.d, k0 + 4096);
      T m = 0;
      for (i64 k = k0; k < k1; ++k)
        m = std::max(m, std::abs(x[k]) <= limit ? std::abs(x[k]) : std::numeric_limits<T>::infinity());
      ok = m <= limit;
    }
    if (ok) return i;
  }
  return -1;
}

template <class T>
void squared_distances_impl(const Messages& X, double* D, std::vector<char>* finite_out) {
  using Tr = Gram<T>;
  const i64 n = X.n, d = X.d;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::pair<i64, i64>> todo;
  std::vector<char> finite(static_cast<std::size_t>(n), 1);

  // Small problems: the direct sums are cheap and exact.
  const bool direct_all = static_cast<double>(n) * n * d < 2e6 || n < 3;
  if (direct_all) {
    for (i64 i = 0; i < n; ++i) {
      const T* x = X.row<T>(i);
      for (i64 k = 0; k < d; ++k)
        if (!is_finite(x[k])) {
          finite[i] = 0;
          break;
        }
    }
    for (i64 i = 0; i < n; ++i)
      for (i64 j = i + 1; j < n; ++j) {
        if (finite[i] && finite[j])
          todo.emplace_back(i, j);
        else
          D[i * n + j] = inf;
      }
  } else {
    const i64 np = (n + 11) / 12 * 12;
    std::vector<double> G;
    i64 centre = first_safe_row<T>(X, Tr::kHi);
    for (int attempt = 0; attempt < 2; ++attempt) {
      RowStats st(n);
      centred_gram<T>(X, centre >= 0 ? X.row<T>(centre) : nullptr, np, G, st);
      std::vector<char> safe(static_cast<std::size_t>(n));
      for (i64 i = 0; i < n; ++i) {
        finite[i] = !st.bad[i];
        const double m = st.maxabs[i];
        safe[i] = m <= Tr::kHi && (m == 0 || m >= Tr::kLo);
      }
      todo.clear();
      i64 guarded = 0;
      for (i64 i = 0; i < n; ++i)
        for (i64 j = i + 1; j < n; ++j) {
          double& out = D[i * n + j];
          if (!finite[i] || !finite[j]) {
            out = inf;
          } else if (!safe[i] || !safe[j]) {
            todo.emplace_back(i, j);
          } else {
            const double s = G[i * np + i] + G[j * np + j];
            const double v = s - 2 * G[i * np + j];
            out = std::max(v, 0.0);  // a first estimate, also for choosing a better centre
            if (v <= Tr::kTau * s) {
              todo.emplace_back(i, j);
              ++guarded;
            }
          }
        }
      // A centre far from the others (say a Byzantine message) puts most pairs under the
      // guard. Then recentre once on the row whose median estimated distance is least.
      if (attempt == 1 || guarded * 4 <= static_cast<i64>(n) * (n - 1) / 2 || guarded < 64) break;
      i64 best = -1;
      double best_med = inf;
      std::vector<double> row;
      for (i64 i = 0; i < n; ++i) {
        if (!finite[i] || !safe[i]) continue;
        row.clear();
        for (i64 j = 0; j < n; ++j)
          if (j != i) row.push_back(j > i ? D[i * n + j] : D[j * n + i]);
        std::nth_element(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(row.size() / 2), row.end());
        const double med = row[row.size() / 2];
        if (med < best_med) best_med = med, best = i;
      }
      if (best < 0 || best == centre) break;
      centre = best;
    }
  }
  std::vector<double> vals;
  direct_pairs<T>(X, todo, vals);
  for (std::size_t p = 0; p < todo.size(); ++p) D[todo[p].first * n + todo[p].second] = vals[p];
  for (i64 i = 0; i < n; ++i) {
    D[i * n + i] = 0;
    for (i64 j = i + 1; j < n; ++j) D[j * n + i] = D[i * n + j];
  }
  if (finite_out) *finite_out = std::move(finite);
}

}  // namespace

void squared_distances(const Messages& X, double* D, std::vector<char>* finite) {
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    squared_distances_impl<T>(X, D, finite);
  });
}

void sorted_neighbours(const double* Drow, std::int64_t n, std::int64_t skip, std::int64_t* idx) {
  std::int64_t m = 0;
  for (std::int64_t j = 0; j < n; ++j)
    if (j != skip) idx[m++] = j;
  std::stable_sort(idx, idx + m, [&](std::int64_t a, std::int64_t b) { return Drow[a] < Drow[b]; });
}

void pairwise_distances(const Messages& X, bool squared, void* out) {
  const i64 n = X.n;
  std::vector<double> D(static_cast<std::size_t>(n * n));
  squared_distances(X, D.data());
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* o = static_cast<T*>(out);
    for (i64 q = 0; q < n * n; ++q) o[q] = static_cast<T>(squared ? D[q] : std::sqrt(D[q]));
  });
}

}  // namespace cpu
}  // namespace byzcore
