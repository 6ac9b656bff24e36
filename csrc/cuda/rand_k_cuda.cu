// rand_k: the k coordinates of 0..d-1 with the smallest (counter_key(seed, j), j), the same
// draw as on the CPU (byzcore/counter_rng.h). Keys are regenerated on the fly, never stored:
//  1. radix selection of the k-th smallest key, 8 bits per pass (per-block shared histograms
//     merged into a global one, the bin picked by a one-warp kernel); it stops as soon as the
//     picked bin holds a single key, which is usually after 4 passes;
//  2. an ordered compaction: per-block counts of keys below / equal to the threshold, a scan,
//     then each block writes its chosen indices, ascending, ties going to the lowest indices.
// Everything stays on the device; nothing is synchronised.
#include "byzcore/backends.h"
#include "byzcore/counter_rng.h"
#include "cuda/device/context.cuh"
#include "cuda/device/util.cuh"

namespace byzcore {
namespace cuda {

namespace {

using detail::Context;

struct SelectState {
  unsigned long long prefix;  // decided high bits of the threshold key
  unsigned long long mask;    // which bits are decided
  long long want;             // rank of the threshold within the keys matching prefix
  int done;                   // the group matching prefix holds one key: no more passes
};

__global__ void select_init(SelectState* st, unsigned long long* hist, std::int64_t k) {
  st->prefix = 0;
  st->mask = 0;
  st->want = k - 1;
  st->done = 0;
  for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
}

constexpr int kHistThreads = 256;

__global__ void __launch_bounds__(kHistThreads)
    hist_kernel(std::int64_t d, std::uint64_t seed, int shift, const SelectState* st, unsigned long long* hist) {
  __shared__ unsigned int h[256];
  if (st->done) return;
  const unsigned long long prefix = st->prefix, mask = st->mask;
  for (int b = threadIdx.x; b < 256; b += blockDim.x) h[b] = 0;
  __syncthreads();
  for (std::int64_t j = dev::global_thread(); j < d; j += dev::grid_threads()) {
    const unsigned long long key = counter_key(seed, static_cast<std::uint64_t>(j));
    if ((key & mask) == prefix) atomicAdd(&h[(key >> shift) & 255u], 1u);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < 256; b += blockDim.x)
    if (h[b]) atomicAdd(&hist[b], static_cast<unsigned long long>(h[b]));
}

// One warp: the bin that holds the wanted rank; clears the histogram for the next pass.
__global__ void pick_kernel(int shift, SelectState* st, unsigned long long* hist) {
  const int lane = threadIdx.x;
  if (st->done) return;
  unsigned long long c[8], tot = 0;
#pragma unroll
  for (int b = 0; b < 8; ++b) {
    c[b] = hist[lane * 8 + b];
    tot += c[b];
  }
  unsigned long long incl = tot;
#pragma unroll
  for (int o = 1; o < dev::kWarp; o <<= 1) {
    const unsigned long long up = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += up;
  }
  const long long want = st->want;
  const long long ex = static_cast<long long>(incl - tot);
  __syncwarp();
  if (ex <= want && want < static_cast<long long>(incl)) {
    long long cum = ex;
    for (int b = 0; b < 8; ++b) {
      if (want < cum + static_cast<long long>(c[b])) {
        st->prefix |= static_cast<unsigned long long>(lane * 8 + b) << shift;
        st->mask |= 255ull << shift;
        st->want = want - cum;
        st->done = c[b] == 1;
        break;
      }
      cum += static_cast<long long>(c[b]);
    }
  }
  __syncwarp();
#pragma unroll
  for (int b = 0; b < 8; ++b) hist[lane * 8 + b] = 0;
}

constexpr int kThreads = 256;
constexpr int kItems = 16;  // consecutive indices per thread
constexpr std::int64_t kPerBlock = std::int64_t(kThreads) * kItems;

__device__ __forceinline__ void classify(std::uint64_t seed, std::int64_t j, const SelectState& st, bool* less,
                                         bool* eq) {
  const unsigned long long key = counter_key(seed, static_cast<std::uint64_t>(j)) & st.mask;
  *less = key < st.prefix;
  *eq = key == st.prefix;
}

__global__ void __launch_bounds__(kThreads)
    count_kernel(std::int64_t d, std::uint64_t seed, const SelectState* st, longlong2* counts) {
  __shared__ long long sh[kThreads / dev::kWarp];
  const SelectState s = *st;
  const std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * kPerBlock + std::int64_t(threadIdx.x) * kItems;
  long long less = 0, eq = 0;
  for (int q = 0; q < kItems; ++q) {
    const std::int64_t j = base + q;
    if (j >= d) break;
    bool l, e;
    classify(seed, j, s, &l, &e);
    less += l;
    eq += e;
  }
  less = dev::block_sum(less, sh);
  eq = dev::block_sum(eq, sh);
  if (threadIdx.x == 0) counts[blockIdx.x] = make_longlong2(less, eq);
}

// Exclusive scan of the per-block counts, in place. One block.
__global__ void __launch_bounds__(1024) scan_kernel(longlong2* counts, std::int64_t blocks) {
  __shared__ long long sh[1024 / dev::kWarp];
  long long carry_less = 0, carry_eq = 0;
  for (std::int64_t b0 = 0; b0 < blocks; b0 += blockDim.x) {
    const std::int64_t b = b0 + threadIdx.x;
    const longlong2 c = b < blocks ? counts[b] : make_longlong2(0, 0);
    long long tl, te;
    const long long el = dev::block_exclusive_scan(c.x, sh, &tl);
    const long long ee = dev::block_exclusive_scan(c.y, sh, &te);
    if (b < blocks) counts[b] = make_longlong2(carry_less + el, carry_eq + ee);
    carry_less += tl;
    carry_eq += te;
  }
}

__global__ void __launch_bounds__(kThreads) write_kernel(std::int64_t d, std::uint64_t seed, const SelectState* st,
                                                         const longlong2* offsets, std::int64_t* out) {
  __shared__ long long sh[kThreads / dev::kWarp];
  const SelectState s = *st;
  const long long ties = s.want + 1;  // copies of the threshold key to take, lowest indices first
  const std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * kPerBlock + std::int64_t(threadIdx.x) * kItems;
  long long less = 0, eq = 0;
  for (int q = 0; q < kItems; ++q) {
    const std::int64_t j = base + q;
    if (j >= d) break;
    bool l, e;
    classify(seed, j, s, &l, &e);
    less += l;
    eq += e;
  }
  long long tot;
  less = offsets[blockIdx.x].x + dev::block_exclusive_scan(less, sh, &tot);
  eq = offsets[blockIdx.x].y + dev::block_exclusive_scan(eq, sh, &tot);
  for (int q = 0; q < kItems; ++q) {
    const std::int64_t j = base + q;
    if (j >= d) break;
    bool l, e;
    classify(seed, j, s, &l, &e);
    // less = keys below the threshold before j, eq = threshold copies before j
    if (l)
      out[less + min(eq, ties)] = j;
    else if (e && eq < ties)
      out[less + eq] = j;
    less += l;
    eq += e;
  }
}

void draw_indices(Context& ctx, std::int64_t d, std::int64_t k, std::uint64_t seed, std::int64_t* out) {
  auto* st = ctx.alloc<SelectState>(1);
  auto* hist = ctx.alloc<unsigned long long>(256);
  select_init<<<1, 256, 0, ctx.stream()>>>(st, hist, k);
  ctx.launched("select_init");
  const unsigned hblocks = ctx.blocks(d, kHistThreads, 4);
  for (int shift = 56; shift >= 0; shift -= 8) {
    hist_kernel<<<hblocks, kHistThreads, 0, ctx.stream()>>>(d, seed, shift, st, hist);
    ctx.launched("hist_kernel");
    pick_kernel<<<1, dev::kWarp, 0, ctx.stream()>>>(shift, st, hist);
    ctx.launched("pick_kernel");
  }
  const std::int64_t blocks = (d + kPerBlock - 1) / kPerBlock;
  if (blocks > 0x7fffffff)
    throw std::invalid_argument(std::string("[") + ctx.op() + "] d is too large for the CUDA kernel");
  auto* counts = ctx.alloc<longlong2>(static_cast<std::size_t>(blocks));
  count_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(d, seed, st, counts);
  ctx.launched("count_kernel");
  scan_kernel<<<1, 1024, 0, ctx.stream()>>>(counts, blocks);
  ctx.launched("scan_kernel");
  write_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(d, seed, st, counts, out);
  ctx.launched("write_kernel");
}

template <class T>
__global__ void scatter_kernel(const T* const* rows, const std::int64_t* idx, std::int64_t n, std::int64_t d,
                               std::int64_t k, T scale, T* out) {
  for (std::int64_t i = blockIdx.y; i < n; i += gridDim.y) {
    const T* x = rows[i];
    T* o = out + i * d;
    for (std::int64_t t = dev::global_thread(); t < k; t += dev::grid_threads()) {
      const std::int64_t j = idx[t];
      o[j] = x[j] * scale;  // in the messages' precision, as on the CPU and in rand_k_sparse
    }
  }
}

}  // namespace

void rand_k_indices(std::int64_t d, std::int64_t k, std::uint64_t seed, const Place& place, std::int64_t* out_indices) {
  Context ctx("rand_k_indices", place);
  draw_indices(ctx, d, k, seed, out_indices);
}

void rand_k(const Messages& X, std::int64_t k, std::uint64_t seed, void* out) {
  Context ctx("rand_k", X.place);
  const void* const* rows = ctx.rows<void>(X);
  std::int64_t* idx = ctx.alloc<std::int64_t>(static_cast<std::size_t>(k));
  draw_indices(ctx, X.d, k, seed, idx);
  ctx.memset(out, static_cast<std::size_t>(X.n * X.d) * dtype_size(X.dtype));
  dispatch_float(X.dtype, [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T scale = static_cast<T>(static_cast<double>(X.d) / static_cast<double>(k));
    const std::int64_t xblocks = std::min<std::int64_t>((k + 255) / 256, 4096);
    const dim3 grid(static_cast<unsigned>(xblocks), detail::grid_rows(X.n));
    scatter_kernel<T><<<grid, 256, 0, ctx.stream()>>>(reinterpret_cast<const T* const*>(rows), idx, X.n, X.d, k, scale,
                                                      static_cast<T*>(out));
    ctx.launched("scatter_kernel");
  });
}

}  // namespace cuda
}  // namespace byzcore
