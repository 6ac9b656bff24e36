// Host-side searches of the subset rules (see byzcore/subset_search.h). They run on the host for
// both backends (the CUDA kernels copy D here), so this file lives with the CPU sources.
#include "byzcore/subset_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace byzcore {
namespace subset {

namespace {

using i64 = std::int64_t;
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- small dense symmetric eigenproblems -------------------------------------------------

// Centred Gram G (m x m) of the messages S with weights w (sum 1; nullptr: uniform), from D.
// Returns false if a distance inside S is infinite (the covariance is unbounded).
bool centred_gram(const double* D, i64 n, const i64* S, i64 m, const double* w, std::vector<double>& G) {
  std::vector<double> r(static_cast<std::size_t>(m), 0.0);
  G.assign(static_cast<std::size_t>(m * m), 0.0);
  for (i64 a = 0; a < m; ++a) {
    const double* row = D + S[a] * n;
    for (i64 b = 0; b < m; ++b) {
      const double v = row[S[b]];
      if (!(v < kInf)) return false;
      G[a * m + b] = v;
      r[a] += (w ? w[b] : 1.0 / static_cast<double>(m)) * v;
    }
  }
  double s = 0;
  for (i64 a = 0; a < m; ++a) s += (w ? w[a] : 1.0 / static_cast<double>(m)) * r[a];
  for (i64 a = 0; a < m; ++a)
    for (i64 b = 0; b < m; ++b) G[a * m + b] = -0.5 * (G[a * m + b] - r[a] - r[b] + s);
  return true;
}

// The j-th largest eigenvalue (j = 1: the largest) of the symmetric m x m matrix A
// (destroyed): Householder reduction to tridiagonal form, then bisection on the Sturm count to
// the last representable digit. A few microseconds at m = 25, and no iteration whose stopping
// rule could depend on a start vector.
double eigenvalue_from_top(std::vector<double>& A, i64 m, i64 j = 1) {
  if (m == 1) return A[0];
  std::vector<double> v(static_cast<std::size_t>(m)), p(static_cast<std::size_t>(m));
  for (i64 k = 0; k + 2 < m; ++k) {
    double norm2 = 0;
    for (i64 i = k + 1; i < m; ++i) norm2 += A[i * m + k] * A[i * m + k];
    if (norm2 == 0) continue;
    const double x0 = A[(k + 1) * m + k];
    const double alpha = x0 > 0 ? -std::sqrt(norm2) : std::sqrt(norm2);
    for (i64 i = k + 1; i < m; ++i) v[i] = A[i * m + k];
    v[k + 1] -= alpha;
    const double vv = norm2 - x0 * x0 + v[k + 1] * v[k + 1];
    if (vv == 0) continue;
    const double beta = 2.0 / vv;
    double pv = 0;
    for (i64 i = k + 1; i < m; ++i) {
      double acc = 0;
      for (i64 j = k + 1; j < m; ++j) acc += A[i * m + j] * v[j];
      p[i] = beta * acc;
      pv += p[i] * v[i];
    }
    const double K = 0.5 * beta * pv;
    for (i64 i = k + 1; i < m; ++i) p[i] -= K * v[i];  // q = p - K v
    for (i64 i = k + 1; i < m; ++i)
      for (i64 j = k + 1; j < m; ++j) A[i * m + j] -= v[i] * p[j] + p[i] * v[j];
    A[(k + 1) * m + k] = alpha;
  }
  std::vector<double> a(static_cast<std::size_t>(m)), b2(static_cast<std::size_t>(m), 0.0);
  double lo = kInf, hi = -kInf;
  for (i64 i = 0; i < m; ++i) {
    a[i] = A[i * m + i];
    const double bl = i > 0 ? std::abs(A[i * m + i - 1]) : 0.0, br = i + 1 < m ? std::abs(A[(i + 1) * m + i]) : 0.0;
    if (i + 1 < m) b2[i] = br * br;
    lo = std::min(lo, a[i] - bl - br);
    hi = std::max(hi, a[i] + bl + br);
  }
  // count(x): eigenvalues below x (LDL^T inertia of T - x I).
  auto below = [&](double x) {
    i64 c = 0;
    double q = a[0] - x;
    for (i64 i = 0;; ++i) {
      if (q < 0) ++c;
      if (i + 1 == m) break;
      if (q == 0) q = std::numeric_limits<double>::min();
      q = a[i + 1] - x - b2[i] / q;
    }
    return c;
  };
  for (int it = 0; it < 200; ++it) {
    const double mid = lo + 0.5 * (hi - lo);
    if (!(mid > lo && mid < hi)) break;
    if (below(mid) >= m - j + 1) hi = mid;
    else lo = mid;
  }
  return hi;
}

// Top eigenpair of the symmetric m x m matrix A (destroyed) by cyclic Jacobi rotations: the
// whole spectrum to working precision, deterministic. u gets a unit eigenvector of the largest
// eigenvalue (sign: its largest-magnitude entry positive).
double top_eigenpair(std::vector<double>& A, i64 m, std::vector<double>& u) {
  std::vector<double> V(static_cast<std::size_t>(m * m), 0.0);
  for (i64 i = 0; i < m; ++i) V[i * m + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, all = 0;
    for (i64 p = 0; p < m; ++p)
      for (i64 q = 0; q < m; ++q) {
        all += A[p * m + q] * A[p * m + q];
        if (p != q) off += A[p * m + q] * A[p * m + q];
      }
    if (off <= 1e-32 * all) break;
    for (i64 p = 0; p < m; ++p)
      for (i64 q = p + 1; q < m; ++q) {
        const double apq = A[p * m + q];
        if (apq == 0) continue;
        const double theta = (A[q * m + q] - A[p * m + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (i64 k = 0; k < m; ++k) {  // columns p, q
          const double akp = A[k * m + p], akq = A[k * m + q];
          A[k * m + p] = c * akp - s * akq;
          A[k * m + q] = s * akp + c * akq;
        }
        for (i64 k = 0; k < m; ++k) {  // rows p, q
          const double apk = A[p * m + k], aqk = A[q * m + k];
          A[p * m + k] = c * apk - s * aqk;
          A[q * m + k] = s * apk + c * aqk;
        }
        for (i64 k = 0; k < m; ++k) {
          const double vkp = V[k * m + p], vkq = V[k * m + q];
          V[k * m + p] = c * vkp - s * vkq;
          V[k * m + q] = s * vkp + c * vkq;
        }
      }
  }
  i64 top = 0;
  for (i64 i = 1; i < m; ++i)
    if (A[i * m + i] > A[top * m + top]) top = i;
  u.resize(static_cast<std::size_t>(m));
  i64 big = 0;
  for (i64 i = 0; i < m; ++i) {
    u[i] = V[i * m + top];
    if (std::abs(u[i]) > std::abs(u[big])) big = i;
  }
  if (u[big] < 0)
    for (double& x : u) x = -x;
  return A[top * m + top];
}

Weights uniform_over(const std::vector<i64>& S, i64 n) {
  Weights w(static_cast<std::size_t>(n), 0.0);
  for (i64 i : S) w[i] = 1.0 / static_cast<double>(S.size());
  return w;
}

std::vector<i64> first_k(i64 k) {
  std::vector<i64> S(static_cast<std::size_t>(k));
  std::iota(S.begin(), S.end(), i64{0});
  return S;
}

// ---- MDA: vertex cover on the conflict graph -----------------------------------------------
//
// A subset has diameter <= t iff no two of its members are in conflict (D_ab > t), so an n - f
// subset of diameter <= t exists iff the conflict graph has a vertex cover of at most f
// messages. The optimum diameter is the smallest pairwise distance t for which it does (binary
// search over the sorted distances); a cover of size <= f is found by the classic bounded
// search (branch on the highest-degree vertex: it or all its neighbours), O(2^f n^2 / 64) at
// worst and far less in practice, instead of C(n, f) subsets.

using Bits = std::vector<std::uint64_t>;

struct ConflictGraph {
  i64 n, words;
  std::vector<Bits> adj;
  ConflictGraph(const double* D, i64 n_, double t) : n(n_), words((n_ + 63) / 64), adj(static_cast<std::size_t>(n_)) {
    for (i64 a = 0; a < n; ++a) {
      adj[a].assign(static_cast<std::size_t>(words), 0);
      for (i64 b = 0; b < n; ++b)
        if (b != a && D[a * n + b] > t) adj[a][b / 64] |= std::uint64_t{1} << (b % 64);
    }
  }
  i64 degree(i64 v, const Bits& alive) const {
    i64 c = 0;
    for (i64 w = 0; w < words; ++w) c += __builtin_popcountll(adj[v][w] & alive[w]);
    return c;
  }
  // Is there a vertex cover of the subgraph on `alive` with at most `budget` vertices?
  bool cover(Bits alive, i64 budget) const {
    i64 best = -1, maxdeg = 0, edges2 = 0;
    for (i64 v = 0; v < n; ++v) {
      if (!((alive[v / 64] >> (v % 64)) & 1)) continue;
      const i64 dv = degree(v, alive);
      edges2 += dv;
      if (dv > maxdeg) maxdeg = dv, best = v;
    }
    if (maxdeg == 0) return true;
    if (budget <= 0 || edges2 / 2 > budget * maxdeg) return false;
    Bits without = alive;
    without[best / 64] &= ~(std::uint64_t{1} << (best % 64));
    if (cover(without, budget - 1)) return true;
    if (maxdeg > budget) return false;  // best must be in every small cover
    for (i64 w = 0; w < words; ++w) without[w] &= ~adj[best][w];
    return cover(without, budget - maxdeg);
  }
};

}  // namespace

Weights min_diameter(const double* D, i64 n, i64 f) {
  const i64 k = n - f;
  if (f == 0 || k == 1) return uniform_over(first_k(k), n);
  std::vector<double> t;
  for (i64 a = 0; a < n; ++a)
    for (i64 b = a + 1; b < n; ++b) t.push_back(D[a * n + b]);
  std::sort(t.begin(), t.end());
  t.erase(std::unique(t.begin(), t.end()), t.end());
  Bits all(static_cast<std::size_t>((n + 63) / 64), 0);
  for (i64 v = 0; v < n; ++v) all[v / 64] |= std::uint64_t{1} << (v % 64);
  // t.back() always works (no conflicts): search the first threshold that does.
  std::size_t lo = 0, hi = t.size() - 1;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (ConflictGraph(D, n, t[mid]).cover(all, f)) hi = mid;
    else lo = mid + 1;
  }
  const ConflictGraph g(D, n, t[lo]);
  // The lexicographically first optimal subset: take each message in index order if an optimal
  // subset containing it and the ones taken so far (and none of the ones passed) still exists.
  Bits in(all.size(), 0), out(all.size(), 0);
  std::vector<i64> S;
  for (i64 v = 0; v < n && static_cast<i64>(S.size()) < k; ++v) {
    bool ok = true;
    for (i64 w = 0; w < g.words; ++w) ok = ok && !(g.adj[v][w] & in[w]);
    if (ok) {
      Bits in2 = in;
      in2[v / 64] |= std::uint64_t{1} << (v % 64);
      Bits forced = out;  // passed messages and every conflict of a taken one leave the subset
      for (i64 u : S)
        for (i64 w = 0; w < g.words; ++w) forced[w] |= g.adj[u][w];
      for (i64 w = 0; w < g.words; ++w) forced[w] |= g.adj[v][w];
      i64 nforced = 0;
      for (i64 w = 0; w < g.words; ++w) nforced += __builtin_popcountll(forced[w]);
      ok = nforced <= f;
      if (ok) {
        Bits alive = all;
        for (i64 w = 0; w < g.words; ++w) alive[w] &= ~(forced[w] | in2[w]);
        ok = g.cover(alive, f - nforced);
      }
    }
    if (ok) {
      S.push_back(v);
      in[v / 64] |= std::uint64_t{1} << (v % 64);
    } else {
      out[v / 64] |= std::uint64_t{1} << (v % 64);
    }
  }
  return uniform_over(S, n);
}

// ---- SMEA: branch and bound over subsets in lexicographic order ----------------------------
//
// The scatter matrix M_S = sum_{a in S} (x_a - m_S)(x_a - m_S)^T only grows (in the Loewner
// order) when a message joins S, so lambda(T) <= lambda(S) for T subset of S: every prefix
// bounds its completions. A node holding the prefix P (and the candidates U after it) computes
// a_u = lambda(P + u) for every u in U; a completion takes `need` of them, so its value is at
// least the need-th smallest a_u (the look-ahead bound), and a u with a_u >= best can never
// join. From the other side, a completion is Q = P + U minus r = |Q| - (n - f) messages, and
// M_S = M_Q - E with E positive semidefinite of rank <= r, so lambda(S) >= lambda_{r+1}(M_Q)
// (Weyl's interlacing): strong where few messages are left to drop. Subsets are visited in lexicographic order, so the first optimum found is kept (strict
// improvement) and ties go to the lexicographically first subset. The search starts from the
// greedy subset (drop, f times, the message whose removal lowers lambda most) as its bound.

namespace {

struct SmeaSearch {
  const double* D;
  i64 n, k;
  std::vector<i64> cand;  // finite messages, ascending
  double best = kInf;
  bool from_greedy = false;  // best is the greedy bound, not yet a subset found in order
  std::vector<i64> best_set;
  std::vector<double> G;

  double lambda(const std::vector<i64>& S) {
    if (!centred_gram(D, n, S.data(), static_cast<i64>(S.size()), nullptr, G)) return kInf;
    return std::max(0.0, eigenvalue_from_top(G, static_cast<i64>(S.size())));
  }
  bool worse(double v) const { return from_greedy ? v > best : v >= best; }
  void take(double v, const std::vector<i64>& S) {
    if (worse(v)) return;
    best = v, best_set = S, from_greedy = false;
  }

  // P: the prefix; p: the first candidate position after it; banned: candidates that can no
  // longer join (their a_u reached best at an ancestor).
  void node(std::vector<i64>& P, std::size_t p, std::vector<char> banned) {
    const i64 need = k - static_cast<i64>(P.size());
    std::vector<i64> Q = P;
    for (std::size_t q = p; q < cand.size(); ++q)
      if (!banned[q]) Q.push_back(cand[q]);
    if (static_cast<i64>(Q.size()) < k) return;
    if (!P.empty() && centred_gram(D, n, Q.data(), static_cast<i64>(Q.size()), nullptr, G) &&
        worse(eigenvalue_from_top(G, static_cast<i64>(Q.size()), static_cast<i64>(Q.size()) - k + 1)))
      return;
    std::vector<double> a(cand.size(), kInf);
    std::vector<double> live;
    for (std::size_t q = p; q < cand.size(); ++q) {
      if (banned[q]) continue;
      P.push_back(cand[q]);
      a[q] = lambda(P);
      P.pop_back();
      if (worse(a[q])) banned[q] = 1;
      else live.push_back(a[q]);
    }
    if (static_cast<i64>(live.size()) < need) return;
    std::nth_element(live.begin(), live.begin() + (need - 1), live.end());
    if (worse(live[need - 1])) return;
    for (std::size_t q = p; q < cand.size(); ++q) {
      if (banned[q] || worse(a[q])) continue;
      i64 after = 0;  // candidates still available after q
      for (std::size_t r = q + 1; r < cand.size(); ++r) after += !banned[r];
      if (after < need - 1) break;
      P.push_back(cand[q]);
      if (need == 1) take(a[q], P);
      else node(P, q + 1, banned);
      P.pop_back();
    }
  }
};

}  // namespace

Weights min_max_eigenvalue(const double* D, const std::vector<char>& finite, i64 n, i64 f) {
  const i64 k = n - f;
  SmeaSearch s{D, n, k, {}, kInf, false, {}, {}};
  for (i64 i = 0; i < n; ++i)
    if (finite[i]) s.cand.push_back(i);
  // Every subset then holds a non-finite message (all tie at +inf): the first one.
  if (f == 0 || static_cast<i64>(s.cand.size()) < k) return uniform_over(first_k(k), n);
  std::vector<i64> S = s.cand;
  while (static_cast<i64>(S.size()) > k) {
    double low = kInf;
    std::size_t drop = 0;
    std::vector<i64> T;
    for (std::size_t q = 0; q < S.size(); ++q) {
      T = S;
      T.erase(T.begin() + static_cast<std::ptrdiff_t>(q));
      const double v = s.lambda(T);
      if (v < low) low = v, drop = q;
    }
    S.erase(S.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  s.best = s.lambda(S), s.best_set = S, s.from_greedy = true;
  std::vector<i64> P;
  s.node(P, 0, std::vector<char>(s.cand.size(), 0));
  return uniform_over(s.best_set, n);
}

// ---- CAF -----------------------------------------------------------------------------------
//
// c_i = 1 (0 for a non-finite message: its projection would be infinite, so the first step
// would zero it anyway). While sum c > n - 2f: mu = weighted mean, (lambda, v) = top eigenpair
// of the weighted covariance (exact, from the weighted Gram), tau_i = ((x_i - mu).v)^2 and
// c_i <- c_i (1 - tau_i / max tau), the max over the messages still weighted, so each step
// zeroes at least one weight and the loop ends within n steps. Returns the weights of the step
// with the smallest lambda (the plain mean of the finite messages if the loop never runs).

Weights covariance_filter(const double* D, const std::vector<char>& finite, i64 n, i64 f) {
  std::vector<double> c(static_cast<std::size_t>(n), 0.0);
  for (i64 i = 0; i < n; ++i) c[i] = finite[i] ? 1.0 : 0.0;
  auto normalised = [&](const std::vector<double>& w) {
    double sum = 0;
    for (double x : w) sum += x;
    Weights out(w.size(), 0.0);
    if (sum == 0) return uniform_over(first_k(n), n);  // no finite message: the plain mean
    for (std::size_t i = 0; i < w.size(); ++i) out[i] = w[i] / sum;
    return out;
  };
  Weights best = normalised(c);
  double best_lambda = kInf;
  std::vector<double> G, B, u, r;
  for (;;) {
    double sum = 0;
    for (double x : c) sum += x;
    if (!(sum > static_cast<double>(n - 2 * f))) break;
    std::vector<i64> S;
    std::vector<double> w;
    for (i64 i = 0; i < n; ++i)
      if (c[i] > 0) S.push_back(i), w.push_back(c[i] / sum);
    const i64 m = static_cast<i64>(S.size());
    if (!centred_gram(D, n, S.data(), m, w.data(), G)) break;  // overflowing distances
    B.assign(static_cast<std::size_t>(m * m), 0.0);
    for (i64 a = 0; a < m; ++a)
      for (i64 b = 0; b < m; ++b) B[a * m + b] = std::sqrt(w[a] * w[b]) * G[a * m + b];
    const double lambda = std::max(0.0, top_eigenpair(B, m, u));
    if (lambda < best_lambda) best_lambda = lambda, best = normalised(c);
    if (lambda == 0) break;  // the weighted messages coincide: nothing left to filter
    // (x_i - mu).v = sum_b G_ib sqrt(w_b) u_b / sqrt(lambda), for the weighted messages.
    std::vector<double> tau(static_cast<std::size_t>(m));
    double tmax = 0;
    for (i64 a = 0; a < m; ++a) {
      double acc = 0;
      for (i64 b = 0; b < m; ++b) acc += G[a * m + b] * std::sqrt(w[b]) * u[b];
      tau[a] = acc * acc / lambda;
      tmax = std::max(tmax, tau[a]);
    }
    if (!(tmax > 0)) break;
    for (i64 a = 0; a < m; ++a) {
      const double keep = 1.0 - tau[a] / tmax;
      c[S[a]] = keep > 0 ? c[S[a]] * keep : 0.0;
    }
  }
  return best;
}

// ---- DnC -----------------------------------------------------------------------------------

void dnc_round(const double* Dsub, const std::vector<char>& finite, i64 n, i64 remove, std::vector<char>& keep) {
  std::vector<i64> S;
  for (i64 i = 0; i < n; ++i)
    if (finite[i]) S.push_back(i);
  std::vector<double> score(static_cast<std::size_t>(n), kInf), G, u;
  const i64 m = static_cast<i64>(S.size());
  if (m > 0 && centred_gram(Dsub, n, S.data(), m, nullptr, G)) {
    // Top right singular vector v of the centred subsample: (x_i - mu).v = sqrt(lambda) u_i,
    // so the squared projections rank as u_i^2.
    top_eigenpair(G, m, u);
    for (i64 a = 0; a < m; ++a) score[S[a]] = u[a] * u[a];
  }
  std::vector<i64> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), i64{0});
  std::sort(order.begin(), order.end(), [&](i64 a, i64 b) { return score[a] > score[b] || (score[a] == score[b] && a > b); });
  keep.assign(static_cast<std::size_t>(n), 1);
  for (i64 q = 0; q < remove; ++q) keep[order[q]] = 0;
}

}  // namespace subset
}  // namespace byzcore
