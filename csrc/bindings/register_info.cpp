// Build and machine facts for byzcore.build_info(). ISA-neutral (compiled once for every module:
// see CMakeLists.txt); the module's own ISA is set in module.cpp.
#include <pybind11/pybind11.h>

#include "byzcore/backends.h"

namespace py = pybind11;

void register_info(py::module_& m) {
  m.attr("__version__") = BYZCORE_VERSION;
  m.def("cpu_supports", [](const std::string& level) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (level == "avx2") return static_cast<bool>(__builtin_cpu_supports("x86-64-v3"));
    if (level == "avx512") return static_cast<bool>(__builtin_cpu_supports("x86-64-v4"));
#endif
    return level == "generic";
  });
  m.def("num_threads", &byzcore::cpu::num_threads);
  m.def("cuda_compiled", &byzcore::cuda::compiled);
  m.def("cuda_device_count", &byzcore::cuda::device_count);
  m.def("cuda_describe", &byzcore::cuda::describe);
  m.attr("openmp") = py::bool_(
#if defined(_OPENMP)
      true
#else
      false
#endif
  );
}
