// The WMMA API (nvcuda::wmma) for the CPU emulator, double m8n8k4 only: every thread's
// fragment holds the whole tile, so the warp-collective load / mma / store are exact when each
// thread of the warp does the same (all threads compute the same tile; stores write the same
// values).
#pragma once

#include <cstddef>
#include <type_traits>

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment;
// A: M x K, B: K x N, C: M x N, all kept row-major here.
template <class Layout>
struct fragment<matrix_a, 8, 8, 4, double, Layout> { double x[8 * 4]; };
template <class Layout>
struct fragment<matrix_b, 8, 8, 4, double, Layout> { double x[4 * 8]; };
template <>
struct fragment<accumulator, 8, 8, 4, double, void> { double x[8 * 8]; };

inline void fill_fragment(fragment<accumulator, 8, 8, 4, double>& f, double v) {
  for (double& e : f.x) e = v;
}
template <class L>
void load_matrix_sync(fragment<matrix_a, 8, 8, 4, double, L>& f, const double* p, unsigned ldm) {
  constexpr bool row = std::is_same<L, row_major>::value;
  for (int i = 0; i < 8; ++i)
    for (int k = 0; k < 4; ++k) f.x[i * 4 + k] = row ? p[i * ldm + k] : p[k * ldm + i];
}
template <class L>
void load_matrix_sync(fragment<matrix_b, 8, 8, 4, double, L>& f, const double* p, unsigned ldm) {
  constexpr bool row = std::is_same<L, row_major>::value;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 8; ++j) f.x[k * 8 + j] = row ? p[k * ldm + j] : p[j * ldm + k];
}
template <class LA, class LB>
void mma_sync(fragment<accumulator, 8, 8, 4, double>& d, const fragment<matrix_a, 8, 8, 4, double, LA>& a,
              const fragment<matrix_b, 8, 8, 4, double, LB>& b, const fragment<accumulator, 8, 8, 4, double>& c) {
  double r[64];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      double s = c.x[i * 8 + j];
      for (int k = 0; k < 4; ++k) s += a.x[i * 4 + k] * b.x[k * 8 + j];
      r[i * 8 + j] = s;
    }
  for (int e = 0; e < 64; ++e) d.x[e] = r[e];
}
inline void store_matrix_sync(double* p, const fragment<accumulator, 8, 8, 4, double>& f, unsigned ldm, layout_t l) {
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) (l == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.x[i * 8 + j];
}

}  // namespace wmma
}  // namespace nvcuda
