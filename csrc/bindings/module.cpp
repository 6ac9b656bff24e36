// The compiled module: creates the submodule-free core and calls one register_* per group.
// It and the kernels (csrc/cpu) are built once per ISA level (_core_generic, _core_avx2,
// _core_avx512), the register_* groups once for all; byzcore._native imports the best module.
// The public API is the Python package, which wraps this module.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_messages(py::module_& m);
void register_ops(py::module_& m);
void register_info(py::module_& m);

PYBIND11_MODULE(BYZCORE_MODULE_NAME, m) {
  m.doc() = "byzcore compiled core (private: use the byzcore package)";
  register_messages(m);
  register_ops(m);
  register_info(m);
  m.attr("isa") = BYZCORE_ISA;  // the one per-ISA fact: this TU is compiled per module
}
