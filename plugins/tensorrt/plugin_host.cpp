// plugins/tensorrt/plugin_host.cpp: libvptq_trt_host.so, a minimal TensorRT-free host that loads
// libvptq_trt.so the way TensorRT does (dlopen, setLoggerFinder, getCreators) and drives its
// plugin through the IPluginV3 interfaces: createPlugin from PluginFields, clone,
// attachToContext, getFieldsToSerialize -> createPlugin(kRUNTIME), getOutputShapes through an
// IExprBuilder implemented here, getOutputDataTypes, supportsFormatCombination,
// configurePlugin, getWorkspaceSize, onShapeChange + enqueue on caller-provided device buffers.
//
// For tests and diagnostics only (vptq_export/tensorrt/plugin_host.py wraps it with ctypes). It
// links neither TensorRT nor CUDA: device pointers and the stream come from the caller.
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace {

using namespace nvinfer1;

constexpr int kMaxRank = 8;

int copy_out(const std::string& s, char* buf, int len) {
  if (buf && len > 0) {
    const size_t n = std::min<size_t>(s.size(), static_cast<size_t>(len) - 1);
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return static_cast<int>(s.size());
}

// ------------------------------------------------------------------ logger
class CapturingLogger final : public ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    static const char* const names[] = {"INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"};
    const int s = static_cast<int>(severity);
    std::lock_guard<std::mutex> lock(mu_);
    text_ += (s >= 0 && s < 5 ? names[s] : "?");
    text_ += ": ";
    text_ += msg ? msg : "";
    text_ += '\n';
  }
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_.size();
  }
  std::string take() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    out.swap(text_);
    return out;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

class HostLoggerFinder final : public ILoggerFinder {
 public:
  explicit HostLoggerFinder(ILogger* logger) : logger_(logger) {}
  ILogger* findLogger() override { return logger_; }

 private:
  ILogger* logger_;
};

// ------------------------------------------------------------------ IExprBuilder
// A dimension expression: a constant, an input dimension (symbol id >= 0) or the result of an
// operation on symbols (symbol id -1).
class ExprValue final : public apiv::VDimensionExpr {
 public:
  ExprValue(bool constant, int64_t value, int symbol) : constant_(constant), value_(value), symbol_(symbol) {}
  bool isConstant() const override { return constant_; }
  int64_t getConstantValue() const override {
    return constant_ ? value_ : std::numeric_limits<int64_t>::min();
  }
  bool isSizeTensor() const override { return false; }
  int symbol() const { return symbol_; }

 private:
  bool constant_;
  int64_t value_;
  int symbol_;
};

class Expr final : public IDimensionExpr {
 public:
  explicit Expr(ExprValue* v) { mImpl = v; }
  ~Expr() override = default;
  const ExprValue& value() const { return *static_cast<const ExprValue*>(mImpl); }
};

class ExprArena final : public apiv::VExprBuilder {
 public:
  const Expr* make(bool constant, int64_t value, int symbol) {
    values_.emplace_back(constant, value, symbol);
    exprs_.emplace_back(&values_.back());
    return &exprs_.back();
  }
  IDimensionExpr const* constant(int64_t value) override { return make(true, value, -1); }
  IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& a, IDimensionExpr const& b) override {
    if (!a.isConstant() || !b.isConstant()) return make(false, 0, -1);
    const int64_t x = a.getConstantValue(), y = b.getConstantValue();
    int64_t r = 0;
    switch (op) {
      case DimensionOperation::kSUM: r = x + y; break;
      case DimensionOperation::kPROD: r = x * y; break;
      case DimensionOperation::kMAX: r = x > y ? x : y; break;
      case DimensionOperation::kMIN: r = x < y ? x : y; break;
      case DimensionOperation::kSUB: r = x - y; break;
      case DimensionOperation::kEQUAL: r = x == y; break;
      case DimensionOperation::kLESS: r = x < y; break;
      case DimensionOperation::kFLOOR_DIV: r = y ? (x / y - ((x % y != 0) && ((x < 0) != (y < 0)))) : 0; break;
      case DimensionOperation::kCEIL_DIV: r = y ? (x + y - 1) / y : 0; break;
      default: return nullptr;
    }
    return make(true, r, -1);
  }
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
    return nullptr;  // VPTQGemm has no size-tensor outputs
  }

 private:
  std::deque<ExprValue> values_;
  std::deque<Expr> exprs_;
};

class HostExprBuilder final : public IExprBuilder {
 public:
  HostExprBuilder() { mImpl = &arena_; }
  ~HostExprBuilder() override = default;
  ExprArena& arena() { return arena_; }

 private:
  ExprArena arena_;
};

// ------------------------------------------------------------------ host
struct Host {
  void* lib = nullptr;
  IPluginCreatorV3One* creator = nullptr;
  CapturingLogger logger;
  HostLoggerFinder finder{&logger};
};

IPluginV3OneCore* core(IPluginV3* p) {
  return static_cast<IPluginV3OneCore*>(p->getCapabilityInterface(PluginCapabilityType::kCORE));
}
IPluginV3OneBuild* build(IPluginV3* p) {
  return static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
}
IPluginV3OneRuntime* runtime(IPluginV3* p) {
  return static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

Dims make_dims(int rank, const int64_t* d) {
  Dims out;
  out.nbDims = rank;
  for (int i = 0; i < rank && i < Dims::MAX_DIMS; ++i) out.d[i] = d[i];
  return out;
}

const char* field_type_name(PluginFieldType t) {
  switch (t) {
    case PluginFieldType::kINT32: return "int32";
    case PluginFieldType::kINT64: return "int64";
    case PluginFieldType::kCHAR: return "char";
    case PluginFieldType::kFLOAT32: return "float32";
    default: return "other";
  }
}

std::string fields_text(const PluginFieldCollection* fc) {
  std::string s;
  if (!fc) return "";
  for (int i = 0; i < fc->nbFields; ++i) {
    const PluginField& f = fc->fields[i];
    s += std::string(f.name ? f.name : "") + ':' + field_type_name(f.type) + ':' +
         std::to_string(f.length) + '=';
    if (f.data && f.type == PluginFieldType::kINT32 && f.length >= 1) {
      int32_t v;
      std::memcpy(&v, f.data, sizeof v);
      s += std::to_string(v);
    } else if (f.data && f.type == PluginFieldType::kCHAR) {
      const char* c = static_cast<const char*>(f.data);
      for (int k = 0; k < f.length && c[k]; ++k) s += c[k];
    }
    s += '\n';
  }
  return s;
}

// Output dims of `plugin` for fully known input dims (the same path TensorRT takes, with every
// dimension a constant). Returns the plugin's status.
int32_t output_dims(IPluginV3* plugin, int nb_inputs, const int* ranks, const int64_t* dims, Dims& out) {
  HostExprBuilder eb;
  std::vector<DimsExprs> in(nb_inputs);
  for (int i = 0; i < nb_inputs; ++i) {
    in[i].nbDims = ranks[i];
    for (int k = 0; k < ranks[i]; ++k) in[i].d[k] = eb.arena().constant(dims[i * kMaxRank + k]);
  }
  DimsExprs o{};
  const int32_t rc = build(plugin)->getOutputShapes(in.data(), nb_inputs, nullptr, 0, &o, 1, eb);
  out.nbDims = o.nbDims;
  for (int k = 0; rc == 0 && k < o.nbDims; ++k) out.d[k] = o.d[k] && o.d[k]->isConstant() ? o.d[k]->getConstantValue() : -1;
  return rc;
}

}  // namespace

extern "C" {

#define VPTQ_HOST_API __attribute__((visibility("default")))

VPTQ_HOST_API void* vptq_trt_host_open(const char* path, char* err, int errlen) {
  dlerror();
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    copy_out(std::string("dlopen ") + path + ": " + (e ? e : "failed"), err, errlen);
    return nullptr;
  }
  using SetFinder = void (*)(ILoggerFinder*);
  using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
  auto set_finder = reinterpret_cast<SetFinder>(dlsym(lib, "setLoggerFinder"));
  auto get_creators = reinterpret_cast<GetCreators>(dlsym(lib, "getCreators"));
  if (!set_finder || !get_creators) {
    copy_out(std::string(path) + " does not export " + (!set_finder ? "setLoggerFinder" : "getCreators"), err, errlen);
    dlclose(lib);
    return nullptr;
  }
  auto* h = new Host;
  h->lib = lib;
  set_finder(&h->finder);
  int32_t n = 0;
  IPluginCreatorInterface* const* creators = get_creators(n);
  for (int32_t i = 0; creators && i < n; ++i) {
    const InterfaceInfo info = creators[i]->getInterfaceInfo();
    if (std::strcmp(info.kind, "PLUGIN CREATOR_V3ONE") != 0) continue;
    h->creator = static_cast<IPluginCreatorV3One*>(creators[i]);
    break;
  }
  if (!h->creator) {
    copy_out(std::string(path) + ": getCreators returned no IPluginCreatorV3One", err, errlen);
    set_finder(nullptr);
    dlclose(lib);
    delete h;
    return nullptr;
  }
  return h;
}

VPTQ_HOST_API void vptq_trt_host_close(void* host) {
  auto* h = static_cast<Host*>(host);
  if (!h) return;
  using SetFinder = void (*)(ILoggerFinder*);
  if (auto set_finder = reinterpret_cast<SetFinder>(dlsym(h->lib, "setLoggerFinder"))) set_finder(nullptr);
  // The library stays loaded (as TensorRT keeps it): plugins may outlive the host in tests.
  delete h;
}

// Copies and clears the captured log; with buf == null only returns its length.
VPTQ_HOST_API int vptq_trt_host_take_log(void* host, char* buf, int len) {
  auto* h = static_cast<Host*>(host);
  if (!buf) return static_cast<int>(h->logger.pending());
  return copy_out(h->logger.take(), buf, len);
}

// "name|version|namespace|interface kind|field:type:length\n..."
VPTQ_HOST_API int vptq_trt_host_creator_info(void* host, char* buf, int len) {
  IPluginCreatorV3One* c = static_cast<Host*>(host)->creator;
  std::string s = std::string(c->getPluginName()) + "|" + c->getPluginVersion() + "|" + c->getPluginNamespace() +
                  "|" + c->getInterfaceInfo().kind + "|" + fields_text(c->getFieldNames());
  return copy_out(s, buf, len);
}

// Fields: names[i] with PluginFieldType types[i]: kINT32 / kINT64 take ints[i], kFLOAT32 takes
// (float)ints[i], kCHAR takes strs[i]. phase: 0 build, 1 runtime.
VPTQ_HOST_API void* vptq_trt_host_create(void* host, const char* node, int n, const char** names, const int* types,
                                         const int64_t* ints, const char** strs, int phase) {
  auto* h = static_cast<Host*>(host);
  std::vector<int32_t> i32(n);
  std::vector<float> f32(n);
  std::vector<PluginField> fields;
  for (int i = 0; i < n; ++i) {
    const auto t = static_cast<PluginFieldType>(types[i]);
    i32[i] = static_cast<int32_t>(ints[i]);
    f32[i] = static_cast<float>(ints[i]);
    if (t == PluginFieldType::kINT32) fields.emplace_back(names[i], &i32[i], t, 1);
    else if (t == PluginFieldType::kINT64) fields.emplace_back(names[i], &ints[i], t, 1);
    else if (t == PluginFieldType::kFLOAT32) fields.emplace_back(names[i], &f32[i], t, 1);
    else fields.emplace_back(names[i], strs[i], t, static_cast<int32_t>(std::strlen(strs[i])));
  }
  PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
  return h->creator->createPlugin(node, &fc, phase ? TensorRTPhase::kRUNTIME : TensorRTPhase::kBUILD);
}

VPTQ_HOST_API void* vptq_trt_host_clone(void* plugin) { return static_cast<IPluginV3*>(plugin)->clone(); }

VPTQ_HOST_API void* vptq_trt_host_attach(void* plugin) {
  return runtime(static_cast<IPluginV3*>(plugin))->attachToContext(nullptr);
}

VPTQ_HOST_API void vptq_trt_host_destroy(void* plugin) { delete static_cast<IPluginV3*>(plugin); }

// "name|version|namespace|timing cache id|capabilities (kinds of core, build, runtime)"
VPTQ_HOST_API int vptq_trt_host_plugin_info(void* plugin, char* buf, int len) {
  auto* p = static_cast<IPluginV3*>(plugin);
  IPluginV3OneCore* c = core(p);
  IPluginV3OneBuild* b = build(p);
  IPluginV3OneRuntime* r = runtime(p);
  const char* id = b ? b->getTimingCacheID() : nullptr;
  std::string s = std::string(c->getPluginName()) + "|" + c->getPluginVersion() + "|" + c->getPluginNamespace() + "|" +
                  (id ? id : "") + "|" + c->getInterfaceInfo().kind + "," + (b ? b->getInterfaceInfo().kind : "") +
                  "," + (r ? r->getInterfaceInfo().kind : "") + "|" + std::to_string(b ? b->getNbOutputs() : -1);
  return copy_out(s, buf, len);
}

// The fields the plugin serializes, one "name:type:length=value" per line.
VPTQ_HOST_API int vptq_trt_host_serialized_fields(void* plugin, char* buf, int len) {
  return copy_out(fields_text(runtime(static_cast<IPluginV3*>(plugin))->getFieldsToSerialize()), buf, len);
}

// What TensorRT does when it deserializes an engine: createPlugin(kRUNTIME) with the plugin's
// serialized fields.
VPTQ_HOST_API void* vptq_trt_host_deserialize(void* host, void* plugin, const char* node) {
  auto* h = static_cast<Host*>(host);
  const PluginFieldCollection* fc = runtime(static_cast<IPluginV3*>(plugin))->getFieldsToSerialize();
  return h->creator->createPlugin(node, fc, TensorRTPhase::kRUNTIME);
}

// dims: [nb_inputs * 8]; a negative entry is a runtime (symbolic) dimension, given symbol id
// (input * 8 + axis). out_dims[k]: the constant, or -(1 + symbol id) for an input symbol, or
// INT64_MIN for another symbolic expression. Returns the plugin's status.
VPTQ_HOST_API int vptq_trt_host_output_shapes(void* plugin, int nb_inputs, const int* ranks, const int64_t* dims,
                                              int* out_rank, int64_t* out_dims) {
  HostExprBuilder eb;
  std::vector<DimsExprs> in(nb_inputs);
  for (int i = 0; i < nb_inputs; ++i) {
    in[i].nbDims = ranks[i];
    for (int k = 0; k < ranks[i]; ++k) {
      const int64_t v = dims[i * kMaxRank + k];
      in[i].d[k] = v >= 0 ? eb.arena().constant(v) : eb.arena().make(false, 0, i * kMaxRank + k);
    }
  }
  DimsExprs o{};
  const int32_t rc = build(static_cast<IPluginV3*>(plugin))->getOutputShapes(in.data(), nb_inputs, nullptr, 0, &o, 1, eb);
  *out_rank = o.nbDims;
  for (int k = 0; rc == 0 && k < o.nbDims && k < kMaxRank; ++k) {
    const auto* e = static_cast<const Expr*>(o.d[k]);
    if (!e) out_dims[k] = std::numeric_limits<int64_t>::min();
    else if (e->isConstant()) out_dims[k] = e->getConstantValue();
    else if (e->value().symbol() >= 0) out_dims[k] = -(1 + static_cast<int64_t>(e->value().symbol()));
    else out_dims[k] = std::numeric_limits<int64_t>::min();
  }
  return rc;
}

VPTQ_HOST_API int vptq_trt_host_output_types(void* plugin, int nb_inputs, const int* in_types, int* out_type) {
  std::vector<DataType> t(nb_inputs);
  for (int i = 0; i < nb_inputs; ++i) t[i] = static_cast<DataType>(in_types[i]);
  DataType o = DataType::kFLOAT;
  const int32_t rc = build(static_cast<IPluginV3*>(plugin))->getOutputDataTypes(&o, 1, t.data(), nb_inputs);
  *out_type = static_cast<int>(o);
  return rc;
}

// types / formats: [nb_inputs + nb_outputs]; only entries <= pos are meaningful (as in TensorRT).
VPTQ_HOST_API int vptq_trt_host_supports(void* plugin, int pos, int nb_inputs, int nb_outputs, const int* types,
                                         const int* formats) {
  std::vector<DynamicPluginTensorDesc> io(nb_inputs + nb_outputs);
  for (int i = 0; i < nb_inputs + nb_outputs; ++i) {
    io[i].desc.type = static_cast<DataType>(types[i]);
    io[i].desc.format = static_cast<TensorFormat>(formats[i]);
    io[i].desc.dims.nbDims = 0;
  }
  return build(static_cast<IPluginV3*>(plugin))->supportsFormatCombination(pos, io.data(), nb_inputs, nb_outputs) ? 1 : 0;
}

namespace {
std::vector<DynamicPluginTensorDesc> dynamic_descs(int nb_inputs, const int* ranks, const int64_t* dims,
                                                   const int64_t* dmin, const int64_t* dmax, const int* types) {
  std::vector<DynamicPluginTensorDesc> in(nb_inputs);
  for (int i = 0; i < nb_inputs; ++i) {
    in[i].desc.dims = make_dims(ranks[i], dims + i * kMaxRank);
    in[i].desc.type = static_cast<DataType>(types[i]);
    in[i].desc.format = TensorFormat::kLINEAR;
    in[i].desc.scale = 1.f;
    in[i].min = make_dims(ranks[i], dmin + i * kMaxRank);
    in[i].opt = make_dims(ranks[i], dmax + i * kMaxRank);
    in[i].max = make_dims(ranks[i], dmax + i * kMaxRank);
  }
  return in;
}

DynamicPluginTensorDesc output_desc(const std::vector<DynamicPluginTensorDesc>& in) {
  DynamicPluginTensorDesc out = in[0];  // VPTQGemm ignores the output desc in configurePlugin
  return out;
}
}  // namespace

// dims / dmin / dmax: [nb_inputs * 8] (dims may hold -1 for runtime dimensions).
VPTQ_HOST_API int vptq_trt_host_configure(void* plugin, int nb_inputs, const int* ranks, const int64_t* dims,
                                          const int64_t* dmin, const int64_t* dmax, const int* types) {
  auto in = dynamic_descs(nb_inputs, ranks, dims, dmin, dmax, types);
  DynamicPluginTensorDesc out = output_desc(in);
  return build(static_cast<IPluginV3*>(plugin))->configurePlugin(in.data(), nb_inputs, &out, 1);
}

VPTQ_HOST_API int64_t vptq_trt_host_workspace(void* plugin, int nb_inputs, const int* ranks, const int64_t* dims,
                                              const int64_t* dmin, const int64_t* dmax, const int* types) {
  auto in = dynamic_descs(nb_inputs, ranks, dims, dmin, dmax, types);
  DynamicPluginTensorDesc out = output_desc(in);
  return static_cast<int64_t>(build(static_cast<IPluginV3*>(plugin))->getWorkspaceSize(in.data(), nb_inputs, &out, 1));
}

// onShapeChange + enqueue with concrete dims (as an execution context does). inputs: device
// pointers in node order; stream: a cudaStream_t (0 = legacy default stream).
VPTQ_HOST_API int vptq_trt_host_enqueue(void* plugin, int nb_inputs, const int* ranks, const int64_t* dims,
                                        const int* types, const void* const* inputs, void* output, void* workspace,
                                        void* stream) {
  auto* p = static_cast<IPluginV3*>(plugin);
  std::vector<PluginTensorDesc> in(nb_inputs);
  for (int i = 0; i < nb_inputs; ++i) {
    in[i].dims = make_dims(ranks[i], dims + i * kMaxRank);
    in[i].type = static_cast<DataType>(types[i]);
    in[i].format = TensorFormat::kLINEAR;
    in[i].scale = 1.f;
  }
  PluginTensorDesc out = in[0];
  Dims od;
  int32_t rc = output_dims(p, nb_inputs, ranks, dims, od);
  if (rc != 0) return rc;
  out.dims = od;
  rc = runtime(p)->onShapeChange(in.data(), nb_inputs, &out, 1);
  if (rc != 0) return rc;
  void* outputs[1] = {output};
  return runtime(p)->enqueue(in.data(), &out, inputs, outputs, workspace, static_cast<cudaStream_t>(stream));
}

}  // extern "C"
