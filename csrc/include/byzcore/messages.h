// The one array view every kernel takes: n messages (one per worker), each a contiguous
// vector of d elements, reached through n row pointers. A 2-D array gives pointers into
// itself and a list of per-worker arrays gives each buffer's own pointer, so a list is
// read in place: no n x d stack is ever materialised.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace byzcore {

enum class DType : int { f32 = 0, f64 = 1 };
enum class Device : int { cpu = 0, cuda = 1 };

// Where the data lives and, on a GPU, the caller's stream (cudaStream_t as an integer).
struct Place {
  Device device = Device::cpu;
  int index = 0;
  std::uintptr_t stream = 0;
};

struct Messages {
  std::vector<const void*> rows;  // n pointers, each to d contiguous elements
  std::int64_t n = 0;
  std::int64_t d = 0;
  DType dtype = DType::f32;
  Place place;

  template <class T>
  const T* row(std::int64_t i) const {
    return static_cast<const T*>(rows[static_cast<std::size_t>(i)]);
  }
  bool on_cuda() const { return place.device == Device::cuda; }
};

inline std::size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }

// Errors carry the operation's name first, "[median] ...", so the user sees what failed.
// pybind11 maps std::invalid_argument to ValueError.
[[noreturn]] inline void fail(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string("[") + op + "] " + what);
}

// Calls fn with a typed null pointer (float* or double*) for the messages' dtype, so one
// template body serves both precisions: dispatch_float(X.dtype, [&](auto tag) { using T =
// std::remove_pointer_t<decltype(tag)>; ... }).
template <class Fn>
decltype(auto) dispatch_float(DType t, Fn&& fn) {
  if (t == DType::f32) return fn(static_cast<float*>(nullptr));
  return fn(static_cast<double*>(nullptr));
}

}  // namespace byzcore
