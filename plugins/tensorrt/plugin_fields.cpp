// plugins/tensorrt/plugin_fields.cpp: see plugin_fields.h.
#include "plugin_fields.h"

#include <cstring>
#include <limits>

namespace vptq_trt {

using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;

const char* const kIntFieldNames[kNumIntFields] = {
    "in_features",  "out_features",  "vector_len",         "num_centroids",
    "num_res_centroids", "group_num", "group_size",        "outlier_size",
    "outlier_vector_len", "outlier_num_centroids", "index_bits", "res_index_bits",
    "has_perm",     "has_norm",      "has_bias"};
const char* const kStringFieldNames[kNumStringFields] = {"index_layout", "plugin_version",
                                                         "plugin_namespace"};

namespace {

template <typename A, typename R>
R& member(A& a, int i) {
  switch (i) {
    case 0: return a.in_features;
    case 1: return a.out_features;
    case 2: return a.vector_len;
    case 3: return a.num_centroids;
    case 4: return a.num_res_centroids;
    case 5: return a.group_num;
    case 6: return a.group_size;
    case 7: return a.outlier_size;
    case 8: return a.outlier_vector_len;
    case 9: return a.outlier_num_centroids;
    case 10: return a.index_bits;
    case 11: return a.res_index_bits;
    case 12: return a.has_perm;
    case 13: return a.has_norm;
    default: return a.has_bias;
  }
}

const char* type_name(PluginFieldType t) {
  switch (t) {
    case PluginFieldType::kFLOAT16: return "kFLOAT16";
    case PluginFieldType::kFLOAT32: return "kFLOAT32";
    case PluginFieldType::kFLOAT64: return "kFLOAT64";
    case PluginFieldType::kINT8: return "kINT8";
    case PluginFieldType::kINT16: return "kINT16";
    case PluginFieldType::kINT32: return "kINT32";
    case PluginFieldType::kCHAR: return "kCHAR";
    case PluginFieldType::kDIMS: return "kDIMS";
    case PluginFieldType::kUNKNOWN: return "kUNKNOWN";
    case PluginFieldType::kBF16: return "kBF16";
    case PluginFieldType::kINT64: return "kINT64";
    default: return "another type";
  }
}

std::string field_problem(const char* name, const std::string& expected, const std::string& found) {
  return std::string("attribute '") + name + "': expected " + expected + ", found " + found;
}

// The integer value of field f (kINT32, or kINT64 from parsers that widen); "" or a message.
std::string read_int(const PluginField& f, int64_t& value) {
  if (f.length != 1 || f.data == nullptr)
    return field_problem(f.name, "one integer", std::to_string(f.length) + " values");
  if (f.type == PluginFieldType::kINT32) {
    int32_t v;
    std::memcpy(&v, f.data, sizeof v);
    value = v;
    return "";
  }
  if (f.type == PluginFieldType::kINT64) {
    int64_t v;
    std::memcpy(&v, f.data, sizeof v);
    value = v;
    return "";
  }
  return field_problem(f.name, "an integer (kINT32)", type_name(f.type));
}

std::string read_string(const PluginField& f, std::string& value) {
  if (f.type != PluginFieldType::kCHAR)
    return field_problem(f.name, "a string (kCHAR)", type_name(f.type));
  if (f.length < 0 || (f.length > 0 && f.data == nullptr))
    return field_problem(f.name, "a string", "a null or negative-length field");
  const char* s = static_cast<const char*>(f.data);
  size_t n = 0;
  while (n < static_cast<size_t>(f.length) && s[n] != '\0') ++n;  // length may include the NUL
  value.assign(s, n);
  return "";
}

}  // namespace

int64_t& int_field(vptq::LayerAttributes& a, int i) {
  return member<vptq::LayerAttributes, int64_t>(a, i);
}
int64_t int_field(const vptq::LayerAttributes& a, int i) {
  return member<const vptq::LayerAttributes, const int64_t>(a, i);
}

std::string parse_fields(const PluginFieldCollection* fc, PluginConfig& out,
                         std::vector<std::string>& warnings) noexcept {
  try {
    if (fc == nullptr) return "no plugin fields given (the node's attributes are missing)";
    if (fc->nbFields < 0 || (fc->nbFields > 0 && fc->fields == nullptr))
      return "malformed plugin field collection";
    bool seen[kNumIntFields] = {};
    PluginConfig cfg;
    for (int32_t k = 0; k < fc->nbFields; ++k) {
      const PluginField& f = fc->fields[k];
      if (f.name == nullptr) return "a plugin field has no name";
      int i = 0;
      while (i < kNumIntFields && std::strcmp(f.name, kIntFieldNames[i]) != 0) ++i;
      if (i < kNumIntFields) {
        int64_t v = 0;
        std::string err = read_int(f, v);
        if (!err.empty()) return err;
        int_field(cfg.attrs, i) = v;
        seen[i] = true;
        continue;
      }
      std::string s;
      if (std::strcmp(f.name, "index_layout") == 0) {
        std::string err = read_string(f, s);
        if (!err.empty()) return err;
        cfg.index_layout = s;
      } else if (std::strcmp(f.name, "plugin_version") == 0) {
        std::string err = read_string(f, s);
        if (!err.empty()) return err;
        if (s != kPluginVersion) return field_problem(f.name, "\"1\"", "\"" + s + "\"");
      } else if (std::strcmp(f.name, "plugin_namespace") == 0) {
        std::string err = read_string(f, s);
        if (!err.empty()) return err;
        if (s != kPluginNamespace) return field_problem(f.name, "\"vptq\"", "\"" + s + "\"");
      } else {
        warnings.push_back(std::string("attribute '") + f.name +
                           "' is not part of VPTQGemm version 1 and is ignored");
      }
    }
    for (int i = 0; i < kNumIntFields; ++i)
      if (!seen[i])
        return std::string("attribute '") + kIntFieldNames[i] +
               "' is missing (every integer attribute of VPTQGemm v1 is required)";
    out = cfg;
    return "";
  } catch (...) {
    return "out of memory while reading the plugin fields";
  }
}

const PluginFieldCollection* SerializedFields::fill(const PluginConfig& cfg) {
  fields_.clear();
  for (int i = 0; i < kNumIntFields; ++i) {
    const int64_t v = int_field(cfg.attrs, i);
    // validate() bounds every attribute far below 2^31; clamp defensively (never reached).
    ints_[i] = static_cast<int32_t>(v > std::numeric_limits<int32_t>::max()
                                        ? std::numeric_limits<int32_t>::max()
                                        : v);
    fields_.emplace_back(kIntFieldNames[i], &ints_[i], PluginFieldType::kINT32, 1);
  }
  layout_ = cfg.index_layout;
  fields_.emplace_back("index_layout", layout_.c_str(), PluginFieldType::kCHAR,
                       static_cast<int32_t>(layout_.size() + 1));
  collection_.nbFields = static_cast<int32_t>(fields_.size());
  collection_.fields = fields_.data();
  return &collection_;
}

const PluginFieldCollection* advertised_fields() noexcept {
  static const struct Table {
    PluginField fields[kNumIntFields + kNumStringFields];
    PluginFieldCollection collection;
    Table() {
      for (int i = 0; i < kNumIntFields; ++i)
        fields[i] = PluginField(kIntFieldNames[i], nullptr, PluginFieldType::kINT32, 1);
      for (int i = 0; i < kNumStringFields; ++i)
        fields[kNumIntFields + i] =
            PluginField(kStringFieldNames[i], nullptr, PluginFieldType::kCHAR, 0);
      collection.nbFields = kNumIntFields + kNumStringFields;
      collection.fields = fields;
    }
  } table;
  return &table.collection;
}

std::string describe(const PluginConfig& cfg) {
  // std::string only, no iostreams (see csrc/common/layer.cpp)
  std::string s;
  for (int i = 0; i < kNumIntFields; ++i)
    s += std::string(kIntFieldNames[i]) + '=' + std::to_string(int_field(cfg.attrs, i)) + ' ';
  return s + "index_layout=" + cfg.index_layout;
}

}  // namespace vptq_trt
