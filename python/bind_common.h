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

// Defined in module.cpp, shared with bind_cuda.cpp.
vptq::LayerAttributes attributes_from_dict(const py::dict& d);
std::vector<std::string> input_names(const vptq::LayerAttributes& a, const vptq::InputSlots& s);

// The node's inputs from Python: X plus the weight inputs (positional, or one dict by input name),
// checked against the attributes: count, dtype (int32 for indices/perm, X's dtype otherwise),
// shape, and (want_cuda) all on X's CUDA device. `weights` keeps the views alive.
struct CheckedInputs {
  TensorView x;
  std::vector<TensorView> weights;
  vptq::LayerTensors tensors;
};

inline CheckedInputs checked_inputs(const py::object& x_obj, const vptq::LayerAttributes& a,
                                    const vptq::InputSlots& slots, const py::args& weights,
                                    bool want_cuda) {
  const std::vector<std::string> names = input_names(a, slots);
  std::vector<py::object> objs;
  if (weights.size() == 1 && py::isinstance<py::dict>(weights[0])) {
    py::dict byname = weights[0];
    for (int i = 1; i < slots.count; ++i) {
      if (!byname.contains(names[i]))
        throw py::value_error("VPTQGemm: weight input '" + names[i] + "' missing from the dict");
      objs.push_back(byname[names[i].c_str()]);
    }
  } else {
    if (static_cast<int>(weights.size()) != slots.count - 1)
      throw py::value_error("VPTQGemm: these attributes need " + std::to_string(slots.count - 1) +
                            " weight inputs after X, got " + std::to_string(weights.size()));
    for (auto w : weights) objs.push_back(py::reinterpret_borrow<py::object>(w));
  }

  CheckedInputs in;
  in.x = view_tensor(x_obj, "X", want_cuda);
  const TensorView& x = in.x;
  if (x.kind == Kind::kInt32) throw py::type_error("VPTQGemm: X must be a float tensor");
  if (x.shape.empty() || x.shape.back() != a.in_features)
    throw py::value_error("VPTQGemm: X.shape[-1] must be in_features = " +
                          std::to_string(a.in_features) + ", got shape " + shape_str(x.shape));
  for (int i = 1; i < slots.count; ++i) {
    TensorView t = view_tensor(objs[i - 1], names[i], want_cuda);
    if (want_cuda && !t.owner.attr("device").equal(x.owner.attr("device")))
      throw py::value_error("VPTQGemm: input '" + names[i] + "' is on " +
                            std::string(py::str(t.owner.attr("device"))) + ", X on " +
                            std::string(py::str(x.owner.attr("device"))));
    const bool is_int = i == slots.packed_indices || i == slots.outlier_indices || i == slots.perm;
    if (is_int && t.kind != Kind::kInt32)
      throw py::type_error("VPTQGemm: input '" + names[i] + "' must be int32, got " + t.dtype_name);
    if (!is_int && t.kind != x.kind)
      throw py::type_error("VPTQGemm: input '" + names[i] + "' must have X's dtype " +
                           x.dtype_name + ", got " + t.dtype_name);
    int64_t dims[3];
    const int rank = vptq::expected_input_shape(a, slots, i, dims);
    std::vector<int64_t> want(dims, dims + rank);
    if (t.shape != want)
      throw py::value_error("VPTQGemm: input '" + names[i] + "' must have shape " +
                            shape_str(want) + ", got " + shape_str(t.shape));
    in.weights.push_back(std::move(t));
  }
  std::vector<const void*> input_ptrs(1, nullptr);  // slot 0 is X
  for (const auto& v : in.weights) input_ptrs.push_back(v.data);
  in.tensors = vptq::layer_tensors(slots, input_ptrs.data());
  return in;
}

}  // namespace vptq_py
