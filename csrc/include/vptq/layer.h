// vptq/layer.h: the framework-free description of one VPTQGemm node (docs/op-spec.md).
//
// Every backend (ONNX Runtime op, TensorRT plugin, pybind11 module) fills a LayerAttributes
// from the node's attributes, calls validate() once, points a LayerTensors at the inputs, and
// calls the kernel entry points declared in vptq/cpu.h and vptq/cuda.h. No ORT, TensorRT or
// torch types appear here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vptq {

// Activation / codebook element type. All float inputs of one node share it.
enum class DType : int32_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

inline size_t dtype_size(DType t) { return t == DType::kFloat32 ? 4 : 2; }

// The op's attributes (names identical to the ONNX attributes).
struct LayerAttributes {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int64_t vector_len = 0;
  int64_t num_centroids = 0;
  int64_t num_res_centroids = 0;     // 0: no residual codebook
  int64_t group_num = 1;
  int64_t group_size = 0;
  int64_t outlier_size = 0;          // 0: no outlier part
  int64_t outlier_vector_len = 0;
  int64_t outlier_num_centroids = 0;
  int64_t index_bits = 0;
  int64_t res_index_bits = 0;
  int64_t has_perm = 0;
  int64_t has_norm = 0;
  int64_t has_bias = 0;
  // index_layout is a string attribute; version 1 defines only "packed" (checked by adapters
  // through validate_index_layout()).

  bool has_residual() const { return num_res_centroids > 0; }
  bool has_outliers() const { return outlier_size > 0; }
  int64_t total_index_bits() const { return index_bits + res_index_bits; }
  // NI = ceil(O / v) index rows per group.
  int64_t num_index_rows() const { return (out_features + vector_len - 1) / vector_len; }
  int64_t outlier_num_index_rows() const {
    return has_outliers() ? (out_features + outlier_vector_len - 1) / outlier_vector_len : 0;
  }
  // int32 words per (group, index row): ceil(gs * (index_bits + res_index_bits) / 32).
  int64_t packed_words_per_row() const { return (group_size * total_index_bits() + 31) / 32; }
  // Number of node inputs for these attributes (X included).
  int num_inputs() const {
    return 3 + (has_residual() ? 1 : 0) + (has_outliers() ? 2 : 0) + (has_perm ? 1 : 0) +
           (has_norm ? 2 : 0) + (has_bias ? 1 : 0);
  }
};

// Returns "" when the attributes are consistent, else a message naming the attribute, what was
// expected and what was found. The only place these rules live on the C++ side.
std::string validate(const LayerAttributes& a);
std::string validate_index_layout(const std::string& layout);

// Positions of the optional inputs for given attributes (-1 when absent).
struct InputSlots {
  int x = 0, packed_indices = 1, centroids = 2;
  int res_centroids = -1, outlier_indices = -1, outlier_centroids = -1, perm = -1;
  int weight_scale = -1, weight_bias = -1, bias = -1;
  int count = 3;
};
InputSlots input_slots(const LayerAttributes& a);

// Expected shape of weight input `slot` (not X). Fills dims[0..rank) and returns rank.
int expected_input_shape(const LayerAttributes& a, const InputSlots& s, int slot, int64_t dims[3]);

// Device or host pointers to the weight inputs, in the op layout (docs/op-spec.md).
struct LayerTensors {
  const int32_t* packed_indices = nullptr;   // [G, NI, W] uint32 bits
  const void* centroids = nullptr;           // [G, k, v] DType
  const void* res_centroids = nullptr;       // [G, k_res, v]       (has_residual)
  const int32_t* outlier_indices = nullptr;  // [1, NO, outlier_size] (has_outliers)
  const void* outlier_centroids = nullptr;   // [1, k_o, v_o]       (has_outliers)
  const int32_t* perm = nullptr;             // [I] stored col s = original col perm[s] (has_perm)
  const void* weight_scale = nullptr;        // [I] original column order (has_norm)
  const void* weight_bias = nullptr;         // [I]                     (has_norm)
  const void* bias = nullptr;                // [O]                     (has_bias)
};

// LayerTensors from the node's input pointers, indexed by input position (inputs[0] is X);
// absent inputs (slot -1) stay null. The one place every adapter maps slots to tensors.
inline LayerTensors layer_tensors(const InputSlots& s, const void* const* inputs) {
  auto at = [&](int slot) -> const void* { return slot >= 0 ? inputs[slot] : nullptr; };
  LayerTensors t;
  t.packed_indices = static_cast<const int32_t*>(at(s.packed_indices));
  t.centroids = at(s.centroids);
  t.res_centroids = at(s.res_centroids);
  t.outlier_indices = static_cast<const int32_t*>(at(s.outlier_indices));
  t.outlier_centroids = at(s.outlier_centroids);
  t.perm = static_cast<const int32_t*>(at(s.perm));
  t.weight_scale = at(s.weight_scale);
  t.weight_bias = at(s.weight_bias);
  t.bias = at(s.bias);
  return t;
}

}  // namespace vptq
