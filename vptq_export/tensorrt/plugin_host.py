"""Drive the TensorRT plugin library without TensorRT: a ctypes wrapper of
`libvptq_trt_host.so` (plugins/tensorrt/plugin_host.cpp), which loads `libvptq_trt.so` as
TensorRT does (dlopen, `setLoggerFinder`, `getCreators`) and calls the plugin's IPluginV3
methods: createPlugin from PluginFields, clone, attachToContext, getFieldsToSerialize ->
createPlugin(kRUNTIME), getOutputShapes (through an IExprBuilder of its own),
getOutputDataTypes, supportsFormatCombination, configurePlugin, getWorkspaceSize, and
onShapeChange + enqueue on torch CUDA tensors.

Used by tests/test_tensorrt_plugin.py and `verify` diagnostics; everything but `enqueue` works on
a machine without a GPU.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from .. import native
from ..errors import BackendUnavailableError, VPTQError
from ..op_spec import INT_ATTRIBUTES, OpAttributes

HOST_LIBRARY_ENV = "VPTQ_TRT_HOST_LIBRARY"
MAX_RANK = 8  # dims arrays are [n_tensors, MAX_RANK] (plugin_host.cpp kMaxRank)


class DataType(IntEnum):
    """nvinfer1::DataType values (NvInferRuntimeBase.h; part of TensorRT's stable ABI)."""
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8


class FieldType(IntEnum):
    """nvinfer1::PluginFieldType values used here."""
    FLOAT32 = 1
    INT32 = 5
    CHAR = 6
    INT64 = 10


class TensorFormat(IntEnum):
    LINEAR = 0
    CHW2 = 1
    HWC8 = 2


class PluginError(VPTQError):
    """The plugin refused (createPlugin returned null or a method returned non-zero); the message
    carries what the plugin logged."""


@dataclass(frozen=True)
class Symbol:
    """A runtime dimension in an output shape: dimension `axis` of input `input`."""
    input: int
    axis: int


def host_library_path() -> Path:
    override = os.environ.get(HOST_LIBRARY_ENV)
    if override:
        if not Path(override).is_file():
            raise BackendUnavailableError(f"{HOST_LIBRARY_ENV}={override}: no such file")
        return Path(override)
    path = native.LIB_DIR / "libvptq_trt_host.so"
    if not path.is_file():
        why = native.build_report().get("TensorRT plugin")
        reason = f" (build report: {why})" if why else ""
        raise BackendUnavailableError(f"TensorRT plugin host {path} is not built{reason}; {native.BUILD_HINT}")
    return path


def _declare(lib: ctypes.CDLL) -> None:
    P, I, C = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    IP, LP = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int64)
    sig = {
        "vptq_trt_host_open": (P, [C, C, I]),
        "vptq_trt_host_close": (None, [P]),
        "vptq_trt_host_take_log": (I, [P, C, I]),
        "vptq_trt_host_creator_info": (I, [P, C, I]),
        "vptq_trt_host_create": (P, [P, C, I, ctypes.POINTER(C), IP, LP, ctypes.POINTER(C), I]),
        "vptq_trt_host_clone": (P, [P]),
        "vptq_trt_host_attach": (P, [P]),
        "vptq_trt_host_destroy": (None, [P]),
        "vptq_trt_host_plugin_info": (I, [P, C, I]),
        "vptq_trt_host_serialized_fields": (I, [P, C, I]),
        "vptq_trt_host_deserialize": (P, [P, P, C]),
        "vptq_trt_host_output_shapes": (I, [P, I, IP, LP, IP, LP]),
        "vptq_trt_host_output_types": (I, [P, I, IP, IP]),
        "vptq_trt_host_supports": (I, [P, I, I, I, IP, IP]),
        "vptq_trt_host_configure": (I, [P, I, IP, LP, LP, LP, IP]),
        "vptq_trt_host_workspace": (ctypes.c_int64, [P, I, IP, LP, LP, LP, IP]),
        "vptq_trt_host_enqueue": (I, [P, I, IP, LP, IP, ctypes.POINTER(P), P, P, P]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args


def _text(fn, *args) -> str:
    n = fn(*args, None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    fn(*args, buf, n + 1)
    return buf.value.decode()


def _ints(values, ctype=ctypes.c_int):
    values = list(values)
    return (ctype * max(1, len(values)))(*values)


def _dims(shapes, fill=-1):
    flat = []
    for shape in shapes:
        if len(shape) > MAX_RANK:
            raise ValueError(f"rank {len(shape)} > {MAX_RANK}")
        flat += [fill if d is None else int(d) for d in shape] + [0] * (MAX_RANK - len(shape))
    return _ints(flat, ctypes.c_int64)


def _parse_fields(text: str) -> dict[str, tuple[str, int, object]]:
    """'name:type:length=value' lines -> {name: (type, length, value)} (ints for int32)."""
    out = {}
    for line in text.splitlines():
        head, _, value = line.partition("=")
        name, ftype, length = head.split(":")
        out[name] = (ftype, int(length), int(value) if ftype == "int32" and value else value)
    return out


def op_fields(attrs: OpAttributes, *, parser_extras: bool = True) -> dict[str, tuple[FieldType, object]]:
    """The PluginFields TensorRT's ONNX parser makes from an exported node's attributes: every
    integer attribute as kINT32, index_layout (and plugin_version / plugin_namespace, which the
    exporter writes for parsers before 10.10) as kCHAR."""
    fields: dict[str, tuple[FieldType, object]] = {
        name: (FieldType.INT32, getattr(attrs, name)) for name in INT_ATTRIBUTES}
    fields["index_layout"] = (FieldType.CHAR, attrs.index_layout)
    if parser_extras:
        fields["plugin_version"] = (FieldType.CHAR, "1")
        fields["plugin_namespace"] = (FieldType.CHAR, "vptq")
    return fields


class PluginHost:
    """libvptq_trt.so loaded into the TensorRT-free host."""

    def __init__(self, plugin_library: str | os.PathLike | None = None,
                 host_library: str | os.PathLike | None = None):
        self.plugin_library = Path(plugin_library) if plugin_library else native.trt_plugin_path()
        self._lib = ctypes.CDLL(str(host_library or host_library_path()))
        _declare(self._lib)
        err = ctypes.create_string_buffer(4096)
        self._h = self._lib.vptq_trt_host_open(str(self.plugin_library).encode(), err, len(err))
        if not self._h:
            raise BackendUnavailableError(f"cannot load the TensorRT plugin library: {err.value.decode()}")

    def close(self) -> None:
        if self._h:
            self._lib.vptq_trt_host_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def take_log(self) -> str:
        """What the plugin logged since the last call (one 'SEVERITY: message' per line)."""
        return _text(self._lib.vptq_trt_host_take_log, self._h)

    def creator_info(self) -> dict:
        name, version, namespace, kind, fields = _text(self._lib.vptq_trt_host_creator_info, self._h).split("|", 4)
        return {"name": name, "version": version, "namespace": namespace, "interface": kind,
                "fields": {k: (t, n) for k, (t, n, _) in _parse_fields(fields).items()}}

    def create(self, node: str, fields: dict[str, tuple[FieldType, object]], *, phase: str = "build") -> "HostPlugin":
        """createPlugin(node, fields, phase); raises PluginError with the plugin's log on null."""
        names = list(fields)
        types = [int(fields[n][0]) for n in names]
        ints = [int(v) if t != FieldType.CHAR else 0 for t, v in fields.values()]
        strs = [str(v).encode() if t == FieldType.CHAR else b"" for t, v in fields.values()]
        ptr = self._lib.vptq_trt_host_create(
            self._h, node.encode(), len(names), (ctypes.c_char_p * max(1, len(names)))(*[n.encode() for n in names]),
            _ints(types), _ints(ints, ctypes.c_int64), (ctypes.c_char_p * max(1, len(names)))(*strs),
            1 if phase == "runtime" else 0)
        return self._wrap(ptr, f"createPlugin({node!r})")

    def _wrap(self, ptr, what: str) -> "HostPlugin":
        if not ptr:
            raise PluginError(f"{what} returned null: {self.take_log().strip()}")
        return HostPlugin(self, ptr)


class HostPlugin:
    """One IPluginV3 object created by the plugin library (destroyed on close / garbage collection)."""

    def __init__(self, host: PluginHost, ptr: int):
        self.host = host
        self._lib = host._lib
        self._p = ptr

    def close(self) -> None:
        if self._p:
            self._lib.vptq_trt_host_destroy(self._p)
            self._p = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            raise PluginError(f"{what} returned {rc}: {self.host.take_log().strip()}")

    def info(self) -> dict:
        name, version, namespace, timing_id, kinds, nb_outputs = _text(
            self._lib.vptq_trt_host_plugin_info, self._p).split("|")
        return {"name": name, "version": version, "namespace": namespace, "timing_cache_id": timing_id,
                "interfaces": kinds.split(","), "nb_outputs": int(nb_outputs)}

    def clone(self) -> "HostPlugin":
        return self.host._wrap(self._lib.vptq_trt_host_clone(self._p), "clone()")

    def attach_to_context(self) -> "HostPlugin":
        return self.host._wrap(self._lib.vptq_trt_host_attach(self._p), "attachToContext()")

    def serialized_fields(self) -> dict[str, tuple[str, int, object]]:
        """getFieldsToSerialize(): {name: (type, length, value)}."""
        return _parse_fields(_text(self._lib.vptq_trt_host_serialized_fields, self._p))

    def deserialize(self, node: str) -> "HostPlugin":
        """createPlugin(node, getFieldsToSerialize(), kRUNTIME), as at engine deserialization."""
        return self.host._wrap(self._lib.vptq_trt_host_deserialize(self.host._h, self._p, node.encode()),
                               f"createPlugin({node!r}, serialized fields, kRUNTIME)")

    def output_shape(self, input_shapes: list[tuple]) -> list:
        """getOutputShapes; None in an input shape is a runtime dimension. Output entries are ints
        (constants) or Symbol(input, axis) for runtime dimensions passed through."""
        out_rank = ctypes.c_int(0)
        out = (ctypes.c_int64 * MAX_RANK)()
        rc = self._lib.vptq_trt_host_output_shapes(self._p, len(input_shapes), _ints(len(s) for s in input_shapes),
                                                   _dims(input_shapes), ctypes.byref(out_rank), out)
        self._check(rc, "getOutputShapes")
        result = []
        for v in out[: out_rank.value]:
            if v >= 0:
                result.append(v)
            elif v == -(2 ** 63):
                result.append(None)
            else:
                sym = -v - 1
                result.append(Symbol(sym // MAX_RANK, sym % MAX_RANK))
        return result

    def output_type(self, input_types: list[DataType]) -> DataType:
        out = ctypes.c_int(-1)
        rc = self._lib.vptq_trt_host_output_types(self._p, len(input_types), _ints(input_types), ctypes.byref(out))
        self._check(rc, "getOutputDataTypes")
        return DataType(out.value)

    def supports(self, pos: int, types: list[DataType], formats: list[TensorFormat] | None = None,
                 nb_outputs: int = 1) -> bool:
        """supportsFormatCombination(pos, ...) for `types` (inputs then outputs; only [0..pos] matter)."""
        formats = formats or [TensorFormat.LINEAR] * len(types)
        nb_inputs = len(types) - nb_outputs
        return bool(self._lib.vptq_trt_host_supports(self._p, pos, nb_inputs, nb_outputs, _ints(types), _ints(formats)))

    def _desc_args(self, shapes, types, min_shapes, max_shapes):
        min_shapes = min_shapes or shapes
        max_shapes = max_shapes or shapes
        return (len(shapes), _ints(len(s) for s in shapes), _dims(shapes), _dims(min_shapes), _dims(max_shapes),
                _ints(types))

    def configure(self, shapes, types, min_shapes=None, max_shapes=None) -> None:
        rc = self._lib.vptq_trt_host_configure(self._p, *self._desc_args(shapes, types, min_shapes, max_shapes))
        self._check(rc, "configurePlugin")

    def workspace_size(self, shapes, types, min_shapes=None, max_shapes=None) -> int:
        return int(self._lib.vptq_trt_host_workspace(self._p, *self._desc_args(shapes, types, min_shapes, max_shapes)))

    def enqueue(self, inputs: list, output, workspace=None, stream=None) -> None:
        """onShapeChange + enqueue on torch CUDA tensors (contiguous), on `stream` (a
        torch.cuda.Stream; default: the current stream). Does not synchronize."""
        import torch
        for i, t in enumerate(list(inputs) + [output]):
            if not (t.is_cuda and t.is_contiguous()):
                raise ValueError(f"tensor {i} must be a contiguous CUDA tensor")
        types = [torch_to_trt(t.dtype) for t in inputs]
        shapes = [tuple(t.shape) for t in inputs]
        ptrs = (ctypes.c_void_p * len(inputs))(*[t.data_ptr() for t in inputs])
        stream = stream or torch.cuda.current_stream()
        rc = self._lib.vptq_trt_host_enqueue(
            self._p, len(inputs), _ints(len(s) for s in shapes), _dims(shapes), _ints(types), ptrs,
            ctypes.c_void_p(output.data_ptr()), ctypes.c_void_p(workspace.data_ptr() if workspace is not None else 0),
            ctypes.c_void_p(stream.cuda_stream))
        self._check(rc, "enqueue")


def torch_to_trt(dtype) -> DataType:
    import torch
    table = {torch.float32: DataType.FLOAT, torch.float16: DataType.HALF, torch.bfloat16: DataType.BF16,
             torch.int32: DataType.INT32, torch.int64: DataType.INT64, torch.bool: DataType.BOOL,
             torch.int8: DataType.INT8, torch.uint8: DataType.UINT8}
    return table[dtype]
