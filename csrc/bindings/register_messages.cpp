// byzcore._core.Messages: the view the Python layer builds from the caller's arrays (it keeps
// those arrays alive for the duration of the call).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "byzcore/messages.h"

namespace py = pybind11;
using namespace byzcore;

void register_messages(py::module_& m) {
  py::class_<Messages>(m, "Messages", py::module_local())
      .def(py::init([](const std::vector<std::uintptr_t>& rows, std::int64_t d, const std::string& dtype,
                       const std::string& device, int device_index, std::uintptr_t stream) {
             Messages X;
             X.rows.reserve(rows.size());
             for (auto p : rows) X.rows.push_back(reinterpret_cast<const void*>(p));
             X.n = static_cast<std::int64_t>(rows.size());
             X.d = d;
             if (dtype == "float32")
               X.dtype = DType::f32;
             else if (dtype == "float64")
               X.dtype = DType::f64;
             else
               throw py::type_error("Messages: dtype must be float32 or float64, got " + dtype);
             if (device == "cpu")
               X.place.device = Device::cpu;
             else if (device == "cuda")
               X.place.device = Device::cuda;
             else
               throw py::value_error("Messages: device must be cpu or cuda, got " + device);
             X.place.index = device_index;
             X.place.stream = stream;
             return X;
           }),
           py::arg("rows"), py::arg("d"), py::arg("dtype"), py::arg("device") = "cpu", py::arg("device_index") = 0,
           py::arg("stream") = 0)
      .def_readonly("n", &Messages::n)
      .def_readonly("d", &Messages::d);
}
