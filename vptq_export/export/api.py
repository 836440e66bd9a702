"""`export_model` / `export_layer`: a VPTQ checkpoint -> `model.onnx` (+ `model.onnx.data`).

    from vptq_export.export import export_model, ExportOptions
    export_model("ckpt/", "out/model.onnx", ExportOptions(dtype="float16"))

The graph is written directly (onnx.helper + numpy), not traced from PyTorch; docs/export.md
explains why. Weights go to the external data file as they are read, one tensor (or one block of
embedding rows) at a time; both files are published atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from .. import __version__
from ..checkpoint import VPTQCheckpoint
from ..errors import UnsupportedModelError, VPTQError
from .atomic import atomic_model_output, data_file_name
from .decoder import DecoderGraph
from .decoder_config import DecoderConfig
from .external_data import ExternalDataWriter
from .graph_builder import GraphBuilder
from .io_spec import BATCH, SEQ
from .linear import LinearResolver, vptq_gemm
from .options import ONNX_TYPES, ExportOptions
from .tensor_source import TensorSource


def _open(ckpt_dir) -> VPTQCheckpoint:
    return ckpt_dir if isinstance(ckpt_dir, VPTQCheckpoint) else VPTQCheckpoint(ckpt_dir)


def _publish(b: GraphBuilder, writer: ExternalDataWriter, model_path: Path, graph_name: str,
             options: ExportOptions, metadata: dict) -> None:
    writer.close()
    model = b.model(graph_name, doc=f"exported by vptq-export {__version__}", metadata=metadata)
    onnx.save_model(model, str(model_path))
    del model
    if options.validate:
        from .. import onnx_op  # noqa: F401  (registers the VPTQGemm schema)
        try:
            onnx.checker.check_model(str(model_path), full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise VPTQError(f"exported graph {model_path.name} failed onnx.checker: {exc}") from exc


def export_model(ckpt_dir: str | os.PathLike | VPTQCheckpoint, out_path: str | os.PathLike,
                 options: ExportOptions = ExportOptions()) -> Path:
    """Export the decoder with KV cache (I/O: `io_spec.decoder_io`). Returns out_path."""
    ckpt = _open(ckpt_dir)
    cfg = DecoderConfig.from_checkpoint(ckpt)
    dtype = options.torch_dtype
    out = Path(out_path)
    with atomic_model_output(out) as (model_path, data_path), TensorSource(ckpt) as src:
        writer = ExternalDataWriter(data_path, data_file_name(out))
        try:
            b = GraphBuilder(writer)
            linears = LinearResolver(src, dtype, check_indices=options.check_indices)
            graph = DecoderGraph(b, cfg, linears, dtype, progress=options.progress)
            graph.build()
            unused = graph.unused_tensors()
            if unused:
                raise UnsupportedModelError(
                    f"{ckpt.path}: checkpoint tensors the {cfg.model_type} graph has no place "
                    f"for: {', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}")
            missing = sorted(set(ckpt.layer_names()) - set(linears.emitted_vptq))
            if missing:
                raise UnsupportedModelError(
                    f"{ckpt.path}: VPTQ layers that are not linears of the {cfg.model_type} "
                    f"architecture: {', '.join(missing[:5])}")
            metadata = {"vptq_export.version": __version__, "model_type": cfg.model_type,
                        "source": str(ckpt.path.resolve()), "dtype": str(dtype)[6:],
                        "num_vptq_layers": len(linears.emitted_vptq)}
            _publish(b, writer, model_path, "vptq_decoder", options, metadata)
        finally:
            writer.close()
    return out


def export_layer(ckpt_dir: str | os.PathLike | VPTQCheckpoint, layer_name: str,
                 out_path: str | os.PathLike, options: ExportOptions = ExportOptions()) -> Path:
    """Export one VPTQ linear as a one-node model: X [batch_size, sequence_length, I] -> Y."""
    ckpt = _open(ckpt_dir)
    dtype = options.torch_dtype
    out = Path(out_path)
    with atomic_model_output(out) as (model_path, data_path), TensorSource(ckpt) as src:
        writer = ExternalDataWriter(data_path, data_file_name(out))
        try:
            layer = src.layer(layer_name, check_ranges=options.check_indices)
            b = GraphBuilder(writer)
            elem = ONNX_TYPES[dtype]
            b.add_input("X", elem, [BATCH, SEQ, layer.spec.in_features])
            vptq_gemm(b, "X", layer, dtype, [BATCH, SEQ], output_name="Y")
            b.outputs.append(onnx.helper.make_tensor_value_info(
                "Y", elem, [BATCH, SEQ, layer.spec.out_features]))
            metadata = {"vptq_export.version": __version__, "layer": layer_name,
                        "source": str(ckpt.path.resolve()), "dtype": str(dtype)[6:]}
            _publish(b, writer, model_path, "vptq_layer", options, metadata)
        finally:
            writer.close()
    return out

