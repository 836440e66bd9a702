"""ONNX export of VPTQ checkpoints: one `vptq.VPTQGemm` node per VPTQ linear, standard ONNX
(opset 17) elsewhere, decoder with KV cache in ORT GenAI naming, weights streamed to
`model.onnx.data`.

    from vptq_export.export import export_model, export_layer, ExportOptions, io_summary
"""

from .api import export_layer, export_model
from .io_spec import decoder_io, io_summary
from .options import DTYPES, ExportOptions

__all__ = ["export_model", "export_layer", "ExportOptions", "io_summary", "decoder_io", "DTYPES"]
