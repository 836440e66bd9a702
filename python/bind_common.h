// python/bind_common.h: array plumbing shared by module.cpp and bind_cuda.cpp. A TensorView is a
// C-contiguous view of a numpy array or a torch tensor (torch is imported only when a tensor is
// passed), with its element kind and shape; `owner` keeps the memory alive.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "vptq/layer.h"

namespace vptq_py {

namespace py = pybind11;

enum class Kind { kFloat32, kFloat16, kBFloat16, kInt32 };

struct TensorView {
  py::object owner;          // the array / tensor (a contiguous copy when the input was not)
  const void* data = nullptr;
  void* mutable_data = nullptr;
  Kind kind = Kind::kFloat32;
  std::string dtype_name;
  std::vector<int64_t> shape;
  bool is_torch = false;
  bool on_cuda = false;       // torch tensors only
};

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

inline vptq::DType to_dtype(Kind k) {
  return k == Kind::kFloat16 ? vptq::DType::kFloat16
         : k == Kind::kBFloat16 ? vptq::DType::kBFloat16 : vptq::DType::kFloat32;
}

inline bool is_torch_tensor(const py::handle& obj) {
  py::object type = py::type::of(obj);
  return py::str(type.attr("__module__")).cast<std::string>().rfind("torch", 0) == 0 &&
         py::hasattr(obj, "data_ptr");
}

// `name` is used in error messages. want_cuda: the tensor must be a CUDA torch tensor (else CPU).
inline TensorView view_tensor(const py::object& obj, const std::string& name, bool want_cuda = false) {
  TensorView v;
  if (is_torch_tensor(obj)) {
    v.is_torch = true;
    py::object t = obj.attr("contiguous")();
    const std::string dev = py::str(t.attr("device").attr("type"));
    v.on_cuda = dev == "cuda";
    if (want_cuda != v.on_cuda)
      throw py::value_error("VPTQGemm: input '" + name + "' must be a " +
                            (want_cuda ? "CUDA" : "CPU") + " tensor, found device " + dev);
    const std::string dt = py::str(t.attr("dtype"));
    if (dt == "torch.float32") v.kind = Kind::kFloat32;
    else if (dt == "torch.float16") v.kind = Kind::kFloat16;
    else if (dt == "torch.bfloat16") v.kind = Kind::kBFloat16;
    else if (dt == "torch.int32") v.kind = Kind::kInt32;
    else
      throw py::type_error("VPTQGemm: input '" + name + "' has unsupported dtype " + dt +
                           " (float32, float16, bfloat16 or int32)");
    v.dtype_name = dt.substr(6);
    for (auto d : t.attr("shape")) v.shape.push_back(py::cast<int64_t>(d));
    v.mutable_data = reinterpret_cast<void*>(py::cast<uintptr_t>(t.attr("data_ptr")()));
    v.data = v.mutable_data;
    v.owner = t;
    return v;
  }
  if (want_cuda)
    throw py::value_error("VPTQGemm: input '" + name + "' must be a CUDA torch tensor");
  py::array arr = py::array::ensure(obj);
  if (!arr) throw py::type_error("VPTQGemm: input '" + name + "' is not an array or tensor");
  const char k = arr.dtype().kind();
  const auto size = arr.dtype().itemsize();
  if (k == 'f' && size == 4) v.kind = Kind::kFloat32;
  else if (k == 'f' && size == 2) v.kind = Kind::kFloat16;
  else if (k == 'i' && size == 4) v.kind = Kind::kInt32;
  else
    throw py::type_error("VPTQGemm: input '" + name + "' has unsupported dtype " +
                         std::string(py::str(arr.dtype())) + " (float32, float16 or int32)");
  v.dtype_name = py::str(arr.dtype());
  if (!(arr.flags() & py::array::c_style)) arr = py::array::ensure(arr, py::array::c_style);
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) v.shape.push_back(arr.shape(i));
  v.data = arr.data();
  v.owner = arr;
  return v;
}

// A new uninitialised tensor of `like`'s kind and library (numpy / torch, same device).
inline TensorView empty_like_kind(const TensorView& like, const std::vector<int64_t>& shape) {
  TensorView v;
  v.kind = like.kind;
  v.dtype_name = like.dtype_name;
  v.shape = shape;
  v.is_torch = like.is_torch;
  v.on_cuda = like.on_cuda;
  if (like.is_torch) {
    py::module_ torch = py::module_::import("torch");
    py::tuple dims(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) dims[i] = shape[i];
    py::object t = torch.attr("empty")(dims, py::arg("dtype") = like.owner.attr("dtype"),
                                       py::arg("device") = like.owner.attr("device"));
    v.mutable_data = reinterpret_cast<void*>(py::cast<uintptr_t>(t.attr("data_ptr")()));
    v.owner = t;
  } else {
    py::array arr(py::dtype(like.kind == Kind::kFloat16 ? "float16" : "float32"),
                  std::vector<py::ssize_t>(shape.begin(), shape.end()));
    v.mutable_data = arr.mutable_data();
    v.owner = arr;
  }
  v.data = v.mutable_data;
  return v;
}

}  // namespace vptq_py
