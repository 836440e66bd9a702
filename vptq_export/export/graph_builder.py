"""`GraphBuilder`: the small layer over `onnx.helper` the exporter writes graphs with.

Nodes and tensors get unique, readable names from a scope stack (`/model/layers.3/attn/q_proj/
VPTQGemm`, as ORT GenAI's builder names them); constants are deduplicated; initializers go to
the external data file through `ExternalDataWriter` as they are made.
"""

from __future__ import annotations

import contextlib

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from .external_data import ExternalDataWriter

OPSET = 17
IR_VERSION = 8          # the IR version of opset 17 (accepted by every runtime that has opset 17)


class GraphBuilder:
    def __init__(self, writer: ExternalDataWriter):
        self.writer = writer
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.value_infos: list[onnx.ValueInfoProto] = []
        self.opsets: dict[str, int] = {"": OPSET}
        self._scope: list[str] = []
        self._used: set[str] = set()
        self._consts: dict[tuple, str] = {}

    # ------------------------------------------------------------------ names
    @contextlib.contextmanager
    def scope(self, name: str):
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def unique(self, base: str) -> str:
        name = "/" + "/".join(self._scope + [base]) if self._scope else base
        candidate, i = name, 1
        while candidate in self._used:
            candidate = f"{name}_{i}"
            i += 1
        self._used.add(candidate)
        return candidate

    # ------------------------------------------------------------------ graph I/O
    def add_input(self, name: str, elem_type: int, dims) -> str:
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, dims))
        return name

    def add_output(self, value: str, name: str, elem_type: int, dims) -> str:
        """Expose `value` as graph output `name` (an Identity when the names differ)."""
        if value != name:
            self._used.add(name)
            self.nodes.append(helper.make_node("Identity", [value], [name],
                                               name=self.unique(f"{name}/Identity")))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, dims))
        return name

    def annotate(self, value: str, elem_type: int, dims) -> None:
        self.value_infos.append(helper.make_tensor_value_info(value, elem_type, dims))

    # ------------------------------------------------------------------ nodes
    def op(self, op_type: str, inputs: list[str], *, outputs: int = 1, domain: str = "",
           name: str | None = None, output_names: list[str] | None = None,
           **attrs) -> str | list[str]:
        """Add a node; returns its output name (or names when outputs > 1). `output_names` names
        the outputs explicitly (graph outputs such as `present.0.key`)."""
        node_name = self.unique(name or op_type)
        outs = output_names or [f"{node_name}/output_{i}" for i in range(outputs)]
        outputs = len(outs)
        self._used.update(outs)
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=node_name,
                                           domain=domain or None, **attrs))
        return outs[0] if outputs == 1 else outs

    # ------------------------------------------------------------------ tensors
    def const(self, value, dtype=None) -> str:
        """A small constant initializer (deduplicated by dtype, shape and value)."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.unique(f"const_{arr.dtype.name}_{'x'.join(map(str, arr.shape)) or 'scalar'}")
            self.initializers.append(self.writer.tensor(name, arr))
            self._consts[key] = name
        return self._consts[key]

    def const_i64(self, values) -> str:
        return self.const(np.asarray(values, dtype=np.int64))

    def const_float(self, values, dtype: torch.dtype) -> str:
        """A float constant in the graph dtype (torch does the fp16/bf16 rounding)."""
        t = torch.tensor(values, dtype=torch.float32).to(dtype)
        if dtype == torch.bfloat16:
            key = ("bf16", tuple(t.shape), t.view(torch.int16).numpy().tobytes())
            if key not in self._consts:
                name = self.unique("const_bfloat16")
                self.initializers.append(self.writer.tensor(name, t))
                self._consts[key] = name
            return self._consts[key]
        return self.const(t.numpy())

    def initializer(self, name: str, value) -> str:
        self._used.add(name)
        self.initializers.append(self.writer.tensor(name, value))
        return name

    def add_initializer_proto(self, proto: TensorProto) -> str:
        self._used.add(proto.name)
        self.initializers.append(proto)
        return proto.name

    # ------------------------------------------------------------------ model
    def model(self, graph_name: str, *, doc: str = "", metadata: dict | None = None) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, graph_name, self.inputs, self.outputs,
                                  initializer=self.initializers, value_info=self.value_infos)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid(d, v) for d, v in self.opsets.items()],
            producer_name="vptq-export", doc_string=doc)
        model.ir_version = IR_VERSION
        for key, value in (metadata or {}).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, str(value)
        return model
