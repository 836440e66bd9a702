"""`build_engine`: exported `model.onnx` -> serialized TensorRT (or TensorRT-RTX) engine, with the
VPTQGemm plugin library loaded so that the ONNX parser maps every `vptq.VPTQGemm` node to it.

    from vptq_export.tensorrt.builder import build_engine, BuildOptions
    build_engine("out/model.onnx", "out/model.engine", BuildOptions(max_batch=1, max_seq=512))
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import native
from ..errors import VPTQError
from ..op_spec import DOMAIN, OP_TYPE
from .backend import TensorRTBackend, load_backend
from .profiles import ProfileLimits, input_profile
from .progress import make_progress_monitor, spinner


class EngineBuildError(VPTQError):
    """TensorRT could not parse the model or build the engine (the message holds its errors)."""


@dataclass(frozen=True)
class BuildOptions:
    backend: str | None = None        # "tensorrt", "tensorrt-rtx" or None (first installed)
    fp16: bool = False                # TensorRT 10 only: weakly typed network, FP16 kernels allowed
    bf16: bool = False                # TensorRT 10 only: weakly typed network, BF16 kernels allowed
    limits: ProfileLimits = field(default_factory=ProfileLimits)
    workspace_mib: int | None = None  # builder workspace limit (None: TensorRT's default)
    version_compatible: bool = False  # TensorRT 10 only: embed the plugin library in the plan
    verbose: bool = False
    progress: bool = True


@dataclass
class BuildResult:
    engine_path: Path
    backend: str
    engine_bytes: int
    plugin_layers: int
    vptq_nodes: int
    seconds: float
    profile: dict[str, tuple]
    strongly_typed: bool

    def summary(self) -> str:
        lines = [f"built {self.engine_path} ({self.engine_bytes / 2**20:.1f} MiB) with {self.backend} "
                 f"in {self.seconds:.1f} s",
                 f"  {self.plugin_layers} VPTQGemm plugin layers ({self.vptq_nodes} VPTQGemm nodes in the model); "
                 f"{'strongly typed (the model dtypes)' if self.strongly_typed else 'weakly typed'}",
                 "  optimization profile (min / opt / max):"]
        for name, (lo, opt, hi) in self.profile.items():
            lines.append(f"    {name}: {lo} / {opt} / {hi}")
        return "\n".join(lines)


class CapturingLogger:
    """A trt.ILogger that prints warnings and errors and keeps every message (for error reports)."""

    def __new__(cls, trt, verbose: bool = False):
        base = trt.ILogger

        class Logger(base):
            def __init__(self):
                base.__init__(self)
                self.messages: list[tuple[str, str]] = []
                self.min_severity = trt.ILogger.Severity.VERBOSE if verbose else trt.ILogger.Severity.WARNING

            def log(self, severity, msg):
                name = str(severity).rsplit(".", 1)[-1]
                self.messages.append((name, msg))
                if int(severity) <= int(self.min_severity):
                    print(f"[TensorRT] {name}: {msg}", flush=True)

            def errors(self) -> list[str]:
                return [m for s, m in self.messages if s in ("ERROR", "INTERNAL_ERROR")]

        return Logger()


def count_vptq_nodes(onnx_path: str | os.PathLike) -> int:
    """Number of vptq.VPTQGemm nodes in the model (graph only; external data is not loaded)."""
    import onnx
    model = onnx.load(str(onnx_path), load_external_data=False)
    return sum(1 for n in model.graph.node if n.op_type == OP_TYPE and n.domain == DOMAIN)


def plugin_layers(trt, network) -> list:
    """The network's IPluginV3 layers whose plugin is VPTQGemm."""
    out = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type != trt.LayerType.PLUGIN_V3:
            continue
        layer.__class__ = trt.IPluginV3Layer
        plugin = layer.plugin
        core = plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
        if core.plugin_name == OP_TYPE:
            out.append(layer)
    return out


_LOADED_LIBRARIES: dict[tuple[str, str], object] = {}   # (TensorRT module, library path) -> handle


def load_plugin_library(backend: TensorRTBackend, plugin_library: str | os.PathLike | None = None):
    """Loads libvptq_trt.so into the module's global plugin registry once per process; returns
    (path, handle). A second load_library of the same library fails in TensorRT (its creators are
    registered already), so later calls return the first handle."""
    path = Path(plugin_library) if plugin_library else native.trt_plugin_path()
    key = (backend.module_name, str(path.resolve()))
    if key in _LOADED_LIBRARIES:
        return path, _LOADED_LIBRARIES[key]
    registry = backend.module.get_plugin_registry()
    handle = registry.load_library(str(path))
    if handle is None:
        raise EngineBuildError(f"{backend.name}: loading the plugin library {path} failed (see the TensorRT "
                               f"log above)")
    _LOADED_LIBRARIES[key] = handle
    return path, handle


def require_plugin_v3_layers(backend: TensorRTBackend, network) -> None:
    """Refuse, with the reason, a TensorRT whose networks cannot hold IPluginV3 layers.

    TensorRT-RTX 1.7.1 is one: its INetworkDefinition has no add_plugin_v3, and its ONNX parser,
    on reaching a plugin node, creates the plugin through our creator and then aborts the whole
    process inside addPluginV3 ("terminate called without an active exception"; measured on the
    GPU host, docs/tensorrt.md). Checking first turns that abort into this error."""
    if not hasattr(network, "add_plugin_v3"):
        raise EngineBuildError(
            f"{backend.describe()} cannot hold IPluginV3 layers (its INetworkDefinition has no "
            f"add_plugin_v3; its ONNX parser aborts the process on a plugin node), so the VPTQGemm "
            f"plugin cannot be added to a network; build with TensorRT 10.x (--backend tensorrt)")


def parse_onnx(backend: TensorRTBackend, logger, onnx_path: Path, *, strongly_typed: bool):
    """(builder, network, parser) for `onnx_path`; parser errors are raised verbatim."""
    trt = backend.module
    builder = trt.Builder(logger)
    flags = 0
    if strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    require_plugin_v3_layers(backend, network)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file resolves the external data file (model.onnx.data) next to the model.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"{backend.name} ONNX parser rejected {onnx_path}:\n" + "\n".join(errors))
    return builder, network, parser


def _atomic_write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(memoryview(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike,
                 options: BuildOptions = BuildOptions(), *,
                 plugin_library: str | os.PathLike | None = None) -> BuildResult:
    """Parse `onnx_path` with the plugin library loaded, build with one optimization profile over
    the decoder inputs, and write the engine atomically to `engine_path`."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise VPTQError(f"{onnx_path}: no such ONNX model")
    options.limits.check()
    backend = load_backend(options.backend)
    trt = backend.module
    if (options.fp16 or options.bf16) and backend.strongly_typed_only:
        raise VPTQError(f"{backend.name} builds strongly typed networks only, so --fp16/--bf16 do not apply: "
                        f"export the model in that dtype instead (vptq-export export --dtype float16)")
    if options.fp16 and options.bf16:
        raise VPTQError("choose one of --fp16 and --bf16")
    strongly_typed = not (options.fp16 or options.bf16)
    started = time.monotonic()
    logger = CapturingLogger(trt, options.verbose)
    plugin_path, _handle = load_plugin_library(backend, plugin_library)
    builder, network, _parser = parse_onnx(backend, logger, onnx_path, strongly_typed=strongly_typed)

    expected = count_vptq_nodes(onnx_path)
    found = len(plugin_layers(trt, network))
    if found != expected:
        raise EngineBuildError(f"{onnx_path}: {expected} VPTQGemm nodes but {found} VPTQGemm plugin layers after "
                               f"parsing; is {plugin_path} the library that was loaded?")

    config = builder.create_builder_config()
    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if options.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if options.bf16:
        config.set_flag(trt.BuilderFlag.BF16)
    if options.version_compatible:
        if backend.is_rtx:
            raise VPTQError("--version-compatible is a TensorRT 10 option (TensorRT-RTX engines are portable "
                            "across RTX GPUs by design)")
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        config.set_flag(trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME)
        config.plugins_to_serialize = [str(plugin_path)]
    profile = builder.create_optimization_profile()
    shapes = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        lo, opt, hi = input_profile(tensor.name, tuple(tensor.shape), options.limits)
        profile.set_shape(tensor.name, lo, opt, hi)
        shapes[tensor.name] = (lo, opt, hi)
    config.add_optimization_profile(profile)

    monitor = make_progress_monitor(trt) if options.progress else None
    if monitor is not None:
        config.progress_monitor = monitor
        serialized = builder.build_serialized_network(network, config)
    elif options.progress:
        with spinner(f"building {engine_path.name} with {backend.name}"):
            serialized = builder.build_serialized_network(network, config)
    else:
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        errors = "\n".join(logger.errors()) or "(no error message from TensorRT)"
        raise EngineBuildError(f"{backend.describe()} could not build an engine from {onnx_path}:\n{errors}")
    _atomic_write(engine_path, serialized)
    result = BuildResult(engine_path=engine_path, backend=backend.describe(), engine_bytes=serialized.nbytes,
                         plugin_layers=found, vptq_nodes=expected, seconds=time.monotonic() - started,
                         profile=shapes, strongly_typed=strongly_typed)
    return result
