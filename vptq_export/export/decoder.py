"""The decoder graph (Llama / Qwen2 / Mistral): standard ONNX ops (opset 17) around one
`vptq.VPTQGemm` per VPTQ linear, with the KV-cache I/O of `io_spec`.

Per layer, mirroring transformers' eager code path (the reference):
  h = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   n1 = RMSNorm(x)
  y = h + down_proj(silu(gate_proj(n2)) * up_proj(n2))                          n2 = RMSNorm(h)
- RMSNorm in fp32 (Cast for fp16/bf16 exports), `weight * normed.to(dtype)`.
- RoPE: cos/sin computed once per graph from position_ids and the checkpoint's inv_freq
  (`DecoderConfig`), rotate_half by Split / Neg / Concat.
- Attention: present = Concat(past, new) on the sequence axis; GQA without copying K/V: the
  query heads are regrouped as [B, kv_heads, groups * S, head_dim] (query head h uses KV head
  h // groups, as transformers' repeat_kv), so one MatMul per layer serves every group.
  Scores * head_dim^-0.5, then in fp32: + mask, Softmax; probabilities cast back to the dtype.
- Mask (once per graph and window size): key j is visible to query i (absolute position
  past + i) iff j <= past + i, attention_mask[b, j] != 0 and, with a sliding window w,
  j > past + i - w. Additive fp32 bias (0 / float32 min, as transformers' eager mask), so fully
  masked rows (left padding) stay finite.
- lm_head: Gemm(transB=1) over [B*S, H] with the [V, H] weight as stored (the embedding when
  tied), reshaped to [B, S, V].
"""

from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto, helper
from tqdm import tqdm

from .decoder_config import DecoderConfig
from .graph_builder import GraphBuilder
from .io_spec import (ATTENTION_MASK, BATCH, INPUT_IDS, LOGITS, PAST_KEY, PAST_VALUE,
                      POSITION_IDS, PRESENT_KEY, PRESENT_VALUE, SEQ, decoder_io)
from .linear import LinearResolver, gemm_2d
from .options import ONNX_TYPES

_ELEM = {"int64": TensorProto.INT64, "float32": TensorProto.FLOAT,
         "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
# Tensors a checkpoint may hold that the architecture does not use as weights.
IGNORED_TENSOR_SUFFIXES = ("rotary_emb.inv_freq",)


class DecoderGraph:
    def __init__(self, b: GraphBuilder, cfg: DecoderConfig, linears: LinearResolver,
                 dtype: torch.dtype, *, progress: bool = True):
        self.b = b
        self.cfg = cfg
        self.linears = linears
        self.dtype = dtype
        self.elem = ONNX_TYPES[dtype]
        self.progress = progress
        self._masks: dict[int | None, str] = {}

    # ------------------------------------------------------------------ helpers
    def to_float32(self, x: str) -> str:
        return x if self.dtype == torch.float32 else self.b.op("Cast", [x], name="Cast",
                                                               to=TensorProto.FLOAT)

    def to_dtype(self, x: str) -> str:
        return x if self.dtype == torch.float32 else self.b.op("Cast", [x], name="Cast",
                                                               to=self.elem)

    def rms_norm(self, x: str, weight_name: str) -> str:
        b = self.b
        weight = self.linears.fp_tensor(b, weight_name)
        with b.scope(weight_name.rsplit(".", 1)[0]):
            xf = self.to_float32(x)
            var = b.op("ReduceMean", [b.op("Mul", [xf, xf], name="Mul")], name="ReduceMean",
                       axes=[-1], keepdims=1)
            eps = b.const(np.float32(self.cfg.rms_norm_eps))
            inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [var, eps], name="Add")],
                                            name="Sqrt")], name="Reciprocal")
            normed = self.to_dtype(b.op("Mul", [xf, inv], name="Mul"))
            return b.op("Mul", [weight, normed], name="Mul")

    # ------------------------------------------------------------------ shared subgraphs
    def shapes(self) -> None:
        b = self.b
        with b.scope("model/shapes"):
            self.seq_len = b.op("Shape", [INPUT_IDS], name="Shape", start=1, end=2)        # [1]
            self.total_len = b.op("Shape", [ATTENTION_MASK], name="Shape", start=1, end=2)  # [1]
            past = b.op("Sub", [self.total_len, self.seq_len], name="Sub")
            zero = b.const_i64([0])
            self.past_scalar = b.op("Squeeze", [past, zero], name="Squeeze")
            self.total_scalar = b.op("Squeeze", [self.total_len, zero], name="Squeeze")

    def rotary(self) -> None:
        """cos, sin [B, 1, S, head_dim] in the graph dtype."""
        b, cfg = self.b, self.cfg
        with b.scope("model/rotary_emb"):
            pos = b.op("Cast", [POSITION_IDS], name="Cast", to=TensorProto.FLOAT)
            pos = b.op("Unsqueeze", [pos, b.const_i64([-1])], name="Unsqueeze")      # [B, S, 1]
            freqs = b.op("Mul", [pos, b.const(cfg.inv_freq.astype(np.float32))], name="Mul")
            emb = b.op("Concat", [freqs, freqs], name="Concat", axis=-1)           # [B, S, hd]
            out = []
            for fn in ("Cos", "Sin"):
                v = b.op(fn, [emb], name=fn)
                if cfg.attention_scaling != 1.0:
                    v = b.op("Mul", [v, b.const(np.float32(cfg.attention_scaling))], name="Mul")
                v = self.to_dtype(v)
                out.append(b.op("Unsqueeze", [v, b.const_i64([1])], name="Unsqueeze"))
            self.cos, self.sin = out

    def apply_rotary(self, x: str) -> str:
        """x * cos + rotate_half(x) * sin, x [B, heads, S, hd]."""
        b = self.b
        half = self.cfg.head_dim // 2
        x1, x2 = b.op("Split", [x, b.const_i64([half, half])], name="Split", outputs=2, axis=-1)
        rotated = b.op("Concat", [b.op("Neg", [x2], name="Neg"), x1], name="Concat", axis=-1)
        return b.op("Add", [b.op("Mul", [x, self.cos], name="Mul"),
                            b.op("Mul", [rotated, self.sin], name="Mul")], name="Add")

    def mask(self, window: int | None) -> str:
        """Additive fp32 attention bias [B, 1, groups * S, T] for a window size (None: full)."""
        if window in self._masks:
            return self._masks[window]
        b = self.b
        with b.scope("model/attn_mask" + (f"_window{window}" if window else "")):
            one = b.const(np.int64(1))
            kv_idx = b.op("Range", [b.const(np.int64(0)), self.total_scalar, one], name="Range")
            q_idx = b.op("Range", [self.past_scalar, self.total_scalar, one], name="Range")
            kv_row = b.op("Unsqueeze", [kv_idx, b.const_i64([0])], name="Unsqueeze")   # [1, T]
            q_col = b.op("Unsqueeze", [q_idx, b.const_i64([1])], name="Unsqueeze")     # [S, 1]
            allowed = b.op("LessOrEqual", [kv_row, q_col], name="LessOrEqual")         # [S, T]
            if window:
                lower = b.op("Sub", [q_col, b.const(np.int64(window))], name="Sub")
                allowed = b.op("And", [allowed, b.op("Greater", [kv_row, lower],
                                                     name="Greater")], name="And")
            keep = b.op("Cast", [ATTENTION_MASK], name="Cast", to=TensorProto.BOOL)    # [B, T]
            keep = b.op("Unsqueeze", [keep, b.const_i64([1, 2])], name="Unsqueeze")  # [B,1,1,T]
            allowed = b.op("And", [keep, allowed], name="And")                         # [B,1,S,T]
            bias = b.op("Where", [allowed, b.const(np.float32(0.0)),
                                  b.const(np.float32(np.finfo(np.float32).min))], name="Where")
            if self.cfg.kv_groups > 1:
                bias = b.op("Tile", [bias, b.const_i64([1, 1, self.cfg.kv_groups, 1])],
                            name="Tile")
        self._masks[window] = bias
        return bias

    # ------------------------------------------------------------------ layers
    def heads(self, x: str, n: int) -> str:
        """[B, S, n * hd] -> [B, n, S, hd]."""
        b = self.b
        x = b.op("Reshape", [x, b.const_i64([0, 0, n, self.cfg.head_dim])], name="Reshape")
        return b.op("Transpose", [x], name="Transpose", perm=[0, 2, 1, 3])

    def attention(self, i: int, x: str) -> str:
        b, cfg, lin = self.b, self.cfg, self.linears
        p = f"{cfg.layer_prefix(i)}.self_attn"
        dims = [BATCH, SEQ]
        q = lin.linear(b, x, f"{p}.q_proj", dims)
        k = lin.linear(b, x, f"{p}.k_proj", dims)
        v = lin.linear(b, x, f"{p}.v_proj", dims)
        with b.scope(p):
            q = self.apply_rotary(self.heads(q, cfg.num_heads))
            k = self.apply_rotary(self.heads(k, cfg.num_kv_heads))
            v = self.heads(v, cfg.num_kv_heads)
            key = b.op("Concat", [PAST_KEY.format(i), k], name="Concat", axis=2,
                       output_names=[PRESENT_KEY.format(i)])
            value = b.op("Concat", [PAST_VALUE.format(i), v], name="Concat", axis=2,
                         output_names=[PRESENT_VALUE.format(i)])
            hd, kv = cfg.head_dim, cfg.num_kv_heads
            qg = b.op("Reshape", [q, b.const_i64([0, kv, -1, hd])], name="Reshape")
            kt = b.op("Transpose", [key], name="Transpose", perm=[0, 1, 3, 2])
            scores = b.op("MatMul", [qg, kt], name="MatMul")                  # [B,kv,g*S,T]
            scores = b.op("Mul", [scores, b.const_float(hd ** -0.5, self.dtype)], name="Mul")
            scores = b.op("Add", [self.to_float32(scores), self.mask(cfg.sliding_windows[i])],
                          name="Add")
            probs = self.to_dtype(b.op("Softmax", [scores], name="Softmax", axis=-1))
            ctx = b.op("MatMul", [probs, value], name="MatMul")               # [B,kv,g*S,hd]
            ctx = b.op("Reshape", [ctx, b.const_i64([0, cfg.num_heads, -1, hd])], name="Reshape")
            ctx = b.op("Transpose", [ctx], name="Transpose", perm=[0, 2, 1, 3])
            ctx = b.op("Reshape", [ctx, b.const_i64([0, 0, cfg.num_heads * hd])], name="Reshape")
        return lin.linear(b, ctx, f"{p}.o_proj", dims)

    def mlp(self, i: int, x: str) -> str:
        b, lin = self.b, self.linears
        p = f"{self.cfg.layer_prefix(i)}.mlp"
        dims = [BATCH, SEQ]
        gate = lin.linear(b, x, f"{p}.gate_proj", dims)
        up = lin.linear(b, x, f"{p}.up_proj", dims)
        with b.scope(p):
            act = b.op("Mul", [gate, b.op("Sigmoid", [gate], name="Sigmoid")], name="Mul")
            h = b.op("Mul", [act, up], name="Mul")
        return lin.linear(b, h, f"{p}.down_proj", dims)

    def layer(self, i: int, x: str) -> str:
        b = self.b
        prefix = self.cfg.layer_prefix(i)
        h = self.rms_norm(x, f"{prefix}.input_layernorm.weight")
        with b.scope(prefix):
            x = b.op("Add", [x, self.attention(i, h)], name="Add")
        h = self.rms_norm(x, f"{prefix}.post_attention_layernorm.weight")
        with b.scope(prefix):
            return b.op("Add", [x, self.mlp(i, h)], name="Add")

    # ------------------------------------------------------------------ whole model
    def build(self) -> None:
        b, cfg, lin = self.b, self.cfg, self.linears
        io = decoder_io(cfg, str(self.dtype).replace("torch.", ""))
        for spec in io["inputs"]:
            b.add_input(spec["name"], _ELEM[spec["dtype"]], spec["shape"])
        self.shapes()
        self.rotary()
        embed = lin.fp_tensor(b, "model.embed_tokens.weight")
        with b.scope("model/embed_tokens"):
            x = b.op("Gather", [embed, INPUT_IDS], name="Gather", axis=0)
        for i in tqdm(range(cfg.num_layers), desc="export", unit="layer",
                      disable=not self.progress):
            x = self.layer(i, x)
        x = self.rms_norm(x, "model.norm.weight")
        if cfg.tie_word_embeddings:
            lin.used.add("lm_head.weight")
            with b.scope("lm_head"):
                gemm_2d(b, x, embed, None, cfg.vocab_size, output_name=LOGITS)
        else:
            lin.linear(b, x, "lm_head", [BATCH, SEQ], output_name=LOGITS)
        for spec in io["outputs"]:
            b.outputs.append(_value_info(spec))

    def unused_tensors(self) -> list[str]:
        """Non-VPTQ checkpoint tensors the graph did not consume."""
        ckpt = self.linears.ckpt
        return [n for n in ckpt.non_vptq_tensor_names()
                if n not in self.linears.used and not n.endswith(IGNORED_TENSOR_SUFFIXES)]


def _value_info(spec: dict):
    return helper.make_tensor_value_info(spec["name"], _ELEM[spec["dtype"]], spec["shape"])
