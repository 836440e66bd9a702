// Validation and input layout of a VPTQGemm node (docs/op-spec.md). The same rules as
// LayerSpec.from_config / OpAttributes.to_spec in Python; see vptq/layer.h.
#include "vptq/layer.h"

#include <string>

namespace vptq {
namespace {

bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

int64_t log2_exact(int64_t n) {
  int64_t b = 0;
  while ((int64_t{1} << b) < n) ++b;
  return b;
}

// Messages are built with std::string only, no iostreams: a string stream here crashed the
// Python module on a host whose C++ runtime differed from the build machine's.
std::string text(const std::string& v) { return v; }
std::string text(const char* v) { return v; }
std::string text(int64_t v) { return std::to_string(v); }

template <typename E, typename F>
std::string problem(const char* attr, const std::string& what, const E& expected, const F& found) {
  return "attribute '" + std::string(attr) + "': " + what + " (expected " + text(expected) +
         ", found " + text(found) + ")";
}

}  // namespace

std::string validate(const LayerAttributes& a) {
  // Limits that keep every derived size far from int64 overflow (no real layer comes close).
  constexpr int64_t kMaxFeatures = int64_t{1} << 31;
  constexpr int64_t kMaxCentroids = int64_t{1} << 32;
  if (a.in_features <= 0 || a.in_features > kMaxFeatures)
    return problem("in_features", "must be positive", "1..2^31", a.in_features);
  if (a.out_features <= 0 || a.out_features > kMaxFeatures)
    return problem("out_features", "must be positive", "1..2^31", a.out_features);
  if (a.vector_len < 1 || a.vector_len > 4096)
    return problem("vector_len", "main vector length", "1..4096", a.vector_len);
  if (!is_pow2(a.num_centroids) || a.num_centroids > kMaxCentroids)
    return problem("num_centroids", "must be a power of two (index bits = log2 k)",
                   "power of two <= 2^32", a.num_centroids);
  if (a.num_res_centroids != 0 &&
      (!is_pow2(a.num_res_centroids) || a.num_res_centroids > kMaxCentroids))
    return problem("num_res_centroids", "must be a power of two, or 0 for no residual codebook",
                   "0 or a power of two", a.num_res_centroids);
  if (a.group_num < 1 || a.group_num > kMaxFeatures)
    return problem("group_num", "must be >= 1", ">= 1", a.group_num);
  if (a.group_size < 1 || a.group_size > kMaxFeatures)
    return problem("group_size", "must be >= 1", ">= 1", a.group_size);
  if (a.outlier_size < 0 || a.outlier_size > kMaxFeatures)
    return problem("outlier_size", "must be >= 0", ">= 0", a.outlier_size);
  if (a.outlier_size + a.group_num * a.group_size != a.in_features) {
    const std::string f = std::to_string(a.outlier_size) + " + " + std::to_string(a.group_num) +
                          " * " + std::to_string(a.group_size) + " = " +
                          std::to_string(a.outlier_size + a.group_num * a.group_size);
    return problem("group_size", "outlier_size + group_num * group_size must equal in_features",
                   a.in_features, f);
  }
  if (a.outlier_size > 0) {
    if (a.outlier_vector_len < 1 || a.outlier_vector_len > 4096)
      return problem("outlier_vector_len", "outlier_size > 0 needs an outlier vector length",
                     "1..4096", a.outlier_vector_len);
    if (!is_pow2(a.outlier_num_centroids) || a.outlier_num_centroids > 65536)
      return problem("outlier_num_centroids",
                     "outlier_size > 0 needs a power-of-two outlier codebook (uint16 indices)",
                     "power of two <= 65536", a.outlier_num_centroids);
  }
  const int64_t bits = log2_exact(a.num_centroids);
  if (a.index_bits != bits)
    return problem("index_bits", "must be log2(num_centroids)", bits, a.index_bits);
  const int64_t res_bits = a.num_res_centroids > 0 ? log2_exact(a.num_res_centroids) : 0;
  if (a.res_index_bits != res_bits)
    return problem("res_index_bits", "must be log2(num_res_centroids), 0 without residual",
                   res_bits, a.res_index_bits);
  if (bits + res_bits > 32)
    return problem("res_index_bits", "index_bits + res_index_bits must be <= 32", "<= 32",
                   bits + res_bits);
  const struct { const char* name; int64_t value; } flags[] = {
      {"has_perm", a.has_perm}, {"has_norm", a.has_norm}, {"has_bias", a.has_bias}};
  for (const auto& f : flags)
    if (f.value != 0 && f.value != 1) return problem(f.name, "presence flag", "0 or 1", f.value);
  if (a.has_perm && a.in_features > 65536)
    return problem("in_features", "perm is stored as uint16, so in_features must be <= 65536 "
                   "with has_perm = 1", "<= 65536", a.in_features);
  return "";
}

std::string validate_index_layout(const std::string& layout) {
  if (layout == "packed") return "";
  return "attribute 'index_layout': '" + layout +
         "' is not defined in VPTQGemm version 1 (expected 'packed')";
}

InputSlots input_slots(const LayerAttributes& a) {
  InputSlots s;
  int next = 3;
  if (a.has_residual()) s.res_centroids = next++;
  if (a.has_outliers()) {
    s.outlier_indices = next++;
    s.outlier_centroids = next++;
  }
  if (a.has_perm) s.perm = next++;
  if (a.has_norm) {
    s.weight_scale = next++;
    s.weight_bias = next++;
  }
  if (a.has_bias) s.bias = next++;
  s.count = next;
  return s;
}

int expected_input_shape(const LayerAttributes& a, const InputSlots& s, int slot, int64_t dims[3]) {
  auto set = [&](int64_t d0, int64_t d1, int64_t d2) {
    dims[0] = d0;
    dims[1] = d1;
    dims[2] = d2;
    return 3;
  };
  if (slot < 0 || slot >= s.count || slot == s.x) return 0;
  if (slot == s.packed_indices)
    return set(a.group_num, a.num_index_rows(), a.packed_words_per_row());
  if (slot == s.centroids) return set(a.group_num, a.num_centroids, a.vector_len);
  if (slot == s.res_centroids) return set(a.group_num, a.num_res_centroids, a.vector_len);
  if (slot == s.outlier_indices) return set(1, a.outlier_num_index_rows(), a.outlier_size);
  if (slot == s.outlier_centroids)
    return set(1, a.outlier_num_centroids, a.outlier_vector_len);
  if (slot == s.perm || slot == s.weight_scale || slot == s.weight_bias) {
    dims[0] = a.in_features;
    return 1;
  }
  if (slot == s.bias) {
    dims[0] = a.out_features;
    return 1;
  }
  return 0;
}

}  // namespace vptq
