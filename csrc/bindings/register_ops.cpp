// The operations. Every kernel runs with the GIL released: it touches only the raw buffers
// that the Python caller keeps alive for the call, never a Python object.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "byzcore/ops.h"

namespace py = pybind11;
using namespace byzcore;

namespace {
void* ptr(std::uintptr_t p) { return reinterpret_cast<void*>(p); }
using Out = std::uintptr_t;
constexpr auto nogil = py::call_guard<py::gil_scoped_release>();
}  // namespace

void register_ops(py::module_& m) {
  m.def("mean", [](const Messages& X, Out out) { mean(X, ptr(out)); }, nogil);
  m.def("median", [](const Messages& X, Out out) { median(X, ptr(out)); }, nogil);
  m.def("trimmed_mean", [](const Messages& X, std::int64_t f, Out out) { trimmed_mean(X, f, ptr(out)); }, nogil);
  m.def("pairwise_distances", [](const Messages& X, bool squared, Out out) { pairwise_distances(X, squared, ptr(out)); }, nogil);
  m.def("krum_scores", [](const Messages& X, std::int64_t f, Out out) { krum_scores(X, f, ptr(out)); }, nogil);
  m.def("krum", [](const Messages& X, std::int64_t f, Out out) { krum(X, f, ptr(out)); }, nogil);
  m.def("multi_krum", [](const Messages& X, std::int64_t f, std::int64_t mm, Out out) { multi_krum(X, f, mm, ptr(out)); }, nogil);
  m.def("geometric_median",
        [](const Messages& X, const std::vector<double>& w, double nu, std::int64_t max_iter, double tol, Out out) {
          return geometric_median(X, w, nu, max_iter, tol, ptr(out));
        },
        nogil);
  m.def("clip", [](const Messages& X, double threshold, Out out) { clip(X, threshold, ptr(out)); }, nogil);
  m.def("rand_k_indices",
        [](std::int64_t d, std::int64_t k, std::uint64_t seed, const std::string& device, int index,
           std::uintptr_t stream, Out out) {
          Place place{device == "cuda" ? Device::cuda : Device::cpu, index, stream};
          rand_k_indices(d, k, seed, place, static_cast<std::int64_t*>(ptr(out)));
        },
        nogil);
  m.def("rand_k", [](const Messages& X, std::int64_t k, std::uint64_t seed, Out out) { rand_k(X, k, seed, ptr(out)); }, nogil);
  m.def("centered_clipping",
        [](const Messages& X, double tau, Out center, std::int64_t iters, Out out) {
          centered_clipping(X, tau, reinterpret_cast<const void*>(center), iters, ptr(out));
        },
        nogil);
  m.def("bucket_means",
        [](const Messages& X, const std::vector<std::int64_t>& perm, std::int64_t s, Out out) {
          bucket_means(X, perm, s, ptr(out));
        },
        nogil);
  m.def("nnm", [](const Messages& X, std::int64_t f, Out out) { nnm(X, f, ptr(out)); }, nogil);
  m.def("weighted_mean", [](const Messages& X, const std::vector<double>& w, Out out) { weighted_mean(X, w, ptr(out)); }, nogil);
  m.def("meamed", [](const Messages& X, std::int64_t f, Out out) { meamed(X, f, ptr(out)); }, nogil);
  m.def("bulyan", [](const Messages& X, std::int64_t f, Out out) { bulyan(X, f, ptr(out)); }, nogil);
  m.def("monna", [](const Messages& X, std::int64_t f, std::int64_t pivot, Out out) { monna(X, f, pivot, ptr(out)); }, nogil);
  m.def("cge", [](const Messages& X, std::int64_t f, Out out) { cge(X, f, ptr(out)); }, nogil);
  m.def("arc", [](const Messages& X, std::int64_t f, Out out) { arc(X, f, ptr(out)); }, nogil);
  m.def("random_permutation", &random_permutation, py::arg("n"), py::arg("seed"));
  m.def("mda", [](const Messages& X, std::int64_t f, Out out) { mda(X, f, ptr(out)); }, nogil);
  m.def("smea", [](const Messages& X, std::int64_t f, Out out) { smea(X, f, ptr(out)); }, nogil);
  m.def("caf", [](const Messages& X, std::int64_t f, Out out) { caf(X, f, ptr(out)); }, nogil);
  m.def("dnc",
        [](const Messages& X, std::int64_t f, std::int64_t iters, std::int64_t sub_dim, double c, std::uint64_t seed,
           Out out) { dnc(X, f, iters, sub_dim, c, seed, ptr(out)); },
        nogil);
}
