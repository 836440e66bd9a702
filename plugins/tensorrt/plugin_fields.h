// plugins/tensorrt/plugin_fields.h: VPTQGemm attributes <-> TensorRT PluginFields.
//
// TensorRT's ONNX parser turns every node attribute into a PluginField: ints as kINT32 (one
// value), strings as kCHAR. The same fields are what the plugin serializes into an engine
// (getFieldsToSerialize) and what the creator reads back at deserialization, so one parser and
// one writer serve both directions.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vptq/layer.h"

namespace vptq_trt {

constexpr const char* kPluginName = "VPTQGemm";
constexpr const char* kPluginVersion = "1";
constexpr const char* kPluginNamespace = "vptq";

// One VPTQGemm node's configuration: the op attributes plus the string attribute index_layout.
struct PluginConfig {
  vptq::LayerAttributes attrs;
  std::string index_layout = "packed";
};

// Names of the integer attributes (docs/op-spec.md; vptq_export/op_spec.py INT_ATTRIBUTES), in
// that order, and the string ones (index_layout, plugin_version, plugin_namespace).
constexpr int kNumIntFields = 15;
extern const char* const kIntFieldNames[kNumIntFields];
constexpr int kNumStringFields = 3;
extern const char* const kStringFieldNames[kNumStringFields];

// Pointer to the LayerAttributes member for integer field `i` (0 <= i < kNumIntFields).
int64_t& int_field(vptq::LayerAttributes& a, int i);
int64_t int_field(const vptq::LayerAttributes& a, int i);

// Reads `fc` into `out`. Returns "" or a message naming the field, what was expected and what
// was found (a missing or mistyped attribute, a plugin_version / plugin_namespace that is not
// ours). Does not run vptq::validate() (the caller does, once). Unknown fields are reported in
// `warnings` and otherwise ignored. Never throws.
std::string parse_fields(const nvinfer1::PluginFieldCollection* fc, PluginConfig& out,
                         std::vector<std::string>& warnings) noexcept;

// The fields a plugin serializes: every integer attribute (kINT32) and index_layout (kCHAR).
// Owns the storage the PluginField pointers refer to; not copyable (the collection points into
// this object).
class SerializedFields {
 public:
  SerializedFields() = default;
  SerializedFields(const SerializedFields&) = delete;
  SerializedFields& operator=(const SerializedFields&) = delete;

  // Fills from `cfg` and returns the collection (valid until the next fill or destruction).
  const nvinfer1::PluginFieldCollection* fill(const PluginConfig& cfg);

 private:
  int32_t ints_[kNumIntFields] = {};
  std::string layout_;
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection collection_{};
};

// The field list a creator advertises (getFieldNames): every attribute with its type.
const nvinfer1::PluginFieldCollection* advertised_fields() noexcept;

// "in_features=4096 out_features=... index_layout=packed": for messages, timing-cache ids and
// the engine inspector.
std::string describe(const PluginConfig& cfg);

}  // namespace vptq_trt
