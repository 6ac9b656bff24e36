// A CPU emulation of the small part of CUDA that byzcore's kernels use, to test their logic
// (indexing, selection, barriers, warp shuffles) on a machine without a GPU. NOT a CUDA
// replacement: memory is host memory, everything is synchronous, and blocks run one after the
// other; inside a block every CUDA thread is a cooperative fiber (ucontext), switched at
// __syncthreads / __syncwarp / shuffles, so barrier and shuffle semantics are exact.
// Used by tools/cuda_emu/build.py; never part of the package.
#pragma once

#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define CUDART_VERSION 13000

struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct int2 { int x, y; };
struct double2 { double x, y; };
struct longlong2 { long long x, y; };
inline int2 make_int2(int a, int b) { return {a, b}; }
inline double2 make_double2(double a, double b) { return {a, b}; }
inline longlong2 make_longlong2(long long a, long long b) { return {a, b}; }

template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) { return a < b ? a : b; }
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }

inline unsigned __float_as_uint(float v) { unsigned u; std::memcpy(&u, &v, 4); return u; }
inline float __uint_as_float(unsigned u) { float v; std::memcpy(&v, &u, 4); return v; }
inline long long __double_as_longlong(double v) { long long u; std::memcpy(&u, &v, 8); return u; }
inline double __longlong_as_double(long long u) { double v; std::memcpy(&v, &u, 8); return v; }
template <class T> inline T __ldg(const T* p) { return *p; }

namespace emu {

struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  uint3 tid;
  int linear = 0;
  int state = 0;  // 0 runnable, 1 waiting, 2 done
  int wait = 0;   // -1: block barrier, w >= 0: barrier of warp w
};

struct Emu {
  std::vector<Fiber> fibers;
  ucontext_t sched;
  int cur = 0;
  uint3 block_idx{0, 0, 0};
  dim3 block_dim, grid_dim;
  std::function<void()> entry;
  std::vector<unsigned long long> slots;  // shuffle exchange, one per thread
};
inline Emu& E() { static Emu e; return e; }

inline const uint3& thread_idx() { return E().fibers[E().cur].tid; }

inline void wait_on(int what) {
  Emu& e = E();
  Fiber& f = e.fibers[e.cur];
  f.state = 1;
  f.wait = what;
  swapcontext(&f.ctx, &e.sched);
}
inline void syncthreads() { wait_on(-1); }
inline void syncwarp() { wait_on(E().fibers[E().cur].linear / 32); }

template <class T>
T shfl(T v, int src_lane, bool in_range) {
  Emu& e = E();
  const int me = e.fibers[e.cur].linear;
  static_assert(sizeof(T) <= 8, "shuffle of a large type");
  unsigned long long bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  e.slots[me] = bits;
  syncwarp();
  T r = v;
  if (in_range) {
    const unsigned long long b = e.slots[(me / 32) * 32 + src_lane];
    std::memcpy(&r, &b, sizeof(T));
  }
  syncwarp();
  return r;
}

inline void trampoline() {
  Emu& e = E();
  e.entry();
  e.fibers[e.cur].state = 2;
}

inline void run_block() {
  Emu& e = E();
  const int nt = static_cast<int>(e.block_dim.x * e.block_dim.y * e.block_dim.z);
  if (static_cast<int>(e.fibers.size()) < nt) e.fibers.resize(nt);
  e.slots.assign(nt, 0);
  for (int t = 0; t < nt; ++t) {
    Fiber& f = e.fibers[t];
    f.stack.resize(128 * 1024);
    f.linear = t;
    f.tid = {t % e.block_dim.x, (t / e.block_dim.x) % e.block_dim.y, t / (e.block_dim.x * e.block_dim.y)};
    f.state = 0;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = &e.sched;
    makecontext(&f.ctx, trampoline, 0);
  }
  for (;;) {
    for (int t = 0; t < nt; ++t) {
      if (e.fibers[t].state != 0) continue;
      e.cur = t;
      swapcontext(&e.sched, &e.fibers[t].ctx);
    }
    bool all_done = true, released = false;
    for (int t = 0; t < nt; ++t) all_done &= e.fibers[t].state == 2;
    if (all_done) return;
    // Block barrier: everyone not finished waits on it.
    bool block_ready = true, any_block = false;
    for (int t = 0; t < nt; ++t) {
      if (e.fibers[t].state == 2) continue;
      if (e.fibers[t].wait == -1) any_block = true;
      else block_ready = false;
    }
    if (any_block && block_ready) {
      for (int t = 0; t < nt; ++t)
        if (e.fibers[t].state == 1) e.fibers[t].state = 0;
      continue;
    }
    // Warp barriers: all unfinished lanes of the warp wait on it.
    for (int w = 0; w * 32 < nt; ++w) {
      bool ready = true, any = false;
      for (int t = w * 32; t < std::min(nt, w * 32 + 32); ++t) {
        if (e.fibers[t].state == 2) continue;
        if (e.fibers[t].wait == w) any = true;
        else ready = false;
      }
      if (any && ready) {
        for (int t = w * 32; t < std::min(nt, w * 32 + 32); ++t)
          if (e.fibers[t].state == 1) e.fibers[t].state = 0;
        released = true;
      }
    }
    if (!released) {
      std::fprintf(stderr, "cuda_emu: deadlock (threads wait on different barriers)\n");
      std::abort();
    }
  }
}

inline dim3& grid_dim() { return E().grid_dim; }
inline dim3& block_dim() { return E().block_dim; }
inline const uint3& block_idx() { return E().block_idx; }

struct Launcher {
  dim3 grid, block;
  template <class F, class... Args>
  void operator()(F f, Args&&... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
      throw std::runtime_error("cuda_emu: invalid grid");
    if (block.x * block.y * block.z == 0 || block.x * block.y * block.z > 1024)
      throw std::runtime_error("cuda_emu: invalid block");
    Emu& e = E();
    e.grid_dim = grid;
    e.block_dim = block;
    e.entry = [&]() { f(args...); };
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          e.block_idx = {x, y, z};
          run_block();
        }
  }
};
inline Launcher launch(dim3 grid, dim3 block, std::size_t = 0, void* = nullptr) { return {grid, block}; }

}  // namespace emu

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
inline void __syncthreads() { emu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::syncwarp(); }
template <class T> T __shfl_xor_sync(unsigned, T v, int o) {
  const int lane = emu::E().fibers[emu::E().cur].linear % 32;
  return emu::shfl(v, lane ^ o, true);
}
template <class T> T __shfl_up_sync(unsigned, T v, int o) {
  const int lane = emu::E().fibers[emu::E().cur].linear % 32;
  return emu::shfl(v, lane - o, lane - o >= 0);
}
template <class T, class U> T atomicAdd(T* p, U v) { T old = *p; *p = old + static_cast<T>(v); return old; }

// ---------------------------------------------------------------- runtime API (host memory)
typedef int cudaError_t;
typedef struct CUstream_st* cudaStream_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount };
inline const char* cudaGetErrorName(cudaError_t) { return "cudaErrorEmulated"; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* c) { *c = 1; return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) {
  const char* s = std::getenv("CUDA_EMU_SMS");
  *v = s ? std::atoi(s) : 2;
  return cudaSuccess;
}
template <class F>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, F, int, std::size_t) {
  *blocks = 2;
  return cudaSuccess;
}
inline cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) {
  *p = std::malloc(bytes);
  // Scratch starts as garbage, as on a GPU: kernels must not rely on zeroed memory.
  std::memset(*p, 0xA5, bytes);
  return *p ? cudaSuccess : cudaErrorInvalidValue;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, std::size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, std::size_t n, cudaStream_t) { std::memset(p, v, n); return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
