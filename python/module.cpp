// vptq_export._kernels: Python bindings of the framework-free kernels in csrc/.
//   validate(attrs) -> str                       "" when the attributes are consistent
//   gemm_cpu(x, attrs, *weights, num_threads=0)  -> Y (numpy in, numpy out; torch in, torch out)
//   has_cuda                                      True when bind_cuda.cpp (engineer D) is linked in
// `attrs` is the op's attribute dict (vptq_export.op_spec.OpAttributes.as_dict()); `weights` are
// the op's inputs after X, in node order, or one dict {input name: array} (op_weight_inputs()).
// Arrays: numpy or CPU torch tensors, C-contiguous (torch tensors are made contiguous), float
// inputs of X's dtype (float32 / float16, or torch.bfloat16), int32 indices and perm.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "vptq/cpu.h"
#include "vptq/layer.h"
#include "bind_common.h"

namespace py = pybind11;

#ifdef VPTQ_WITH_CUDA
void register_cuda(py::module_& m);  // python/bind_cuda.cpp
#endif

namespace vptq_py {

static const char* kIntAttributes[] = {
    "in_features", "out_features", "vector_len", "num_centroids", "num_res_centroids",
    "group_num", "group_size", "outlier_size", "outlier_vector_len", "outlier_num_centroids",
    "index_bits", "res_index_bits", "has_perm", "has_norm", "has_bias"};

vptq::LayerAttributes attributes_from_dict(const py::dict& d) {
  vptq::LayerAttributes a;
  int64_t* fields[] = {&a.in_features, &a.out_features, &a.vector_len, &a.num_centroids,
                       &a.num_res_centroids, &a.group_num, &a.group_size, &a.outlier_size,
                       &a.outlier_vector_len, &a.outlier_num_centroids, &a.index_bits,
                       &a.res_index_bits, &a.has_perm, &a.has_norm, &a.has_bias};
  std::string missing;
  for (size_t i = 0; i < sizeof(kIntAttributes) / sizeof(kIntAttributes[0]); ++i) {
    if (!d.contains(kIntAttributes[i])) {
      missing += missing.empty() ? "" : ", ";
      missing += kIntAttributes[i];
      continue;
    }
    *fields[i] = py::cast<int64_t>(d[kIntAttributes[i]]);
  }
  if (!missing.empty()) throw py::value_error("VPTQGemm: missing attribute(s) " + missing);
  if (d.contains("index_layout")) {
    py::object layout = d["index_layout"];
    std::string s = py::isinstance<py::bytes>(layout) ? std::string(py::cast<py::bytes>(layout))
                                                      : py::cast<std::string>(layout);
    std::string err = vptq::validate_index_layout(s);
    if (!err.empty()) throw py::value_error("VPTQGemm: " + err);
  }
  return a;
}

std::string validate_dict(const py::dict& d) {
  vptq::LayerAttributes a;
  try {
    a = attributes_from_dict(d);
  } catch (const py::value_error& e) {
    return e.what();
  }
  return vptq::validate(a);
}

const char* kInputNames[] = {"X", "packed_indices", "centroids", "res_centroids",
                             "outlier_indices", "outlier_centroids", "perm", "weight_scale",
                             "weight_bias", "bias"};

// Names of the inputs present for `a`, in node order (op_spec.OpAttributes.input_names()).
std::vector<std::string> input_names(const vptq::LayerAttributes& a, const vptq::InputSlots& s) {
  std::vector<std::string> names(s.count);
  const int slots[] = {s.x, s.packed_indices, s.centroids, s.res_centroids, s.outlier_indices,
                       s.outlier_centroids, s.perm, s.weight_scale, s.weight_bias, s.bias};
  for (int i = 0; i < 10; ++i)
    if (slots[i] >= 0) names[slots[i]] = kInputNames[i];
  (void)a;
  return names;
}

py::object gemm_cpu(py::object x_obj, const py::dict& attrs, py::args weights, int num_threads) {
  const vptq::LayerAttributes a = attributes_from_dict(attrs);
  std::string err = vptq::validate(a);
  if (!err.empty()) throw py::value_error("VPTQGemm: " + err);
  const vptq::InputSlots slots = vptq::input_slots(a);
  const CheckedInputs in = checked_inputs(x_obj, a, slots, weights, /*want_cuda=*/false);
  const TensorView& x = in.x;
  const vptq::DType dtype = to_dtype(x.kind);
  const vptq::LayerTensors& tensors = in.tensors;

  std::vector<int64_t> yshape(x.shape.begin(), x.shape.end() - 1);
  yshape.push_back(a.out_features);
  int64_t m = 1;
  for (size_t i = 0; i + 1 < x.shape.size(); ++i) m *= x.shape[i];
  TensorView y = empty_like_kind(x, yshape);
  {
    py::gil_scoped_release release;
    err = vptq::gemm_cpu(a, tensors, dtype, x.data, y.mutable_data, m, num_threads);
  }
  if (!err.empty()) throw py::value_error("VPTQGemm: " + err);
  return y.owner;
}

}  // namespace vptq_py

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "vptq-export native kernels (csrc/): VPTQGemm on the CPU (and CUDA when built)";
  m.def("validate", &vptq_py::validate_dict, py::arg("attrs"),
        "Check VPTQGemm attributes (a dict) with the C++ rules; returns '' when consistent, else "
        "the problem.");
  m.def("gemm_cpu", &vptq_py::gemm_cpu, py::arg("x"), py::arg("attrs"),
        py::arg("num_threads") = 0,
        "Y = X @ W^T (+ bias) with W decoded from the VPTQGemm weight inputs (positional, in node "
        "order after X, or one dict by input name). num_threads <= 0: all hardware threads.");
#ifdef VPTQ_WITH_CUDA
  m.attr("has_cuda") = true;
  register_cuda(m);
#else
  m.attr("has_cuda") = false;
#endif
}
