"""Build-checked timing of the CUDA VPTQGemm kernels (vptq_export._kernels.gemm_cuda_ptr) on
Llama-3.1-8B / 70B layer shapes, against dense fp16 cuBLAS (torch.matmul) at the same shape.

    python benchmarks/bench_kernels.py [--quick] [--out results.md]

Method (docs/kernels.md):
  * random layers made on the GPU: packed index words are uniform random bits (every code in
    range since k = 2^index_bits), codebooks N(0, 0.05) in the activation dtype;
  * each configuration x shape is first checked: the first index rows of the layer are rebuilt
    as a QuantizedLinear (op_spec.layer_from_op) and dequantized by the fp64 reference;
  * cold L2: a 256 MB buffer is overwritten before every timed call; CUDA events bracket the
    call only (the flush runs while the host enqueues, so launch latency is hidden); median of
    --iters calls;
  * roofline: a 1 GiB device copy in the same run, (read + write bytes) / time;
  * bytes per call = packed indices + codebooks + X + Y (what a kernel must read / write);
    lookups = codes x (1 + residual);
  * "graph us" = one call replayed from a CUDA graph of 20 calls, warm L2 (launch gaps only);
  * "host us" = host time per vptq::gemm_cuda call measured in C++ (gemm_cuda_host_us: 200
    back-to-back calls, checks + plan + launches, no Python): the per-call overhead a runtime
    pays; plus, once (8B kv), the wall time per gemm_cuda_ptr call from Python (pybind argument
    conversion included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from vptq_export import native
from vptq_export.op_spec import OpAttributes, layer_from_op
from vptq_export.reference.dequant import dequantize
from vptq_export import synthetic

SHAPES = {  # name: (out_features, in_features)
    "8B q/o": (4096, 4096),
    "8B qkv": (6144, 4096),  # fused q + k + v (the 4096 x 6144 per-call-overhead shape)
    "8B kv": (1024, 4096),
    "8B up": (14336, 4096),
    "8B down": (4096, 14336),
    "70B o": (8192, 8192),
    "70B up": (28672, 8192),
    "70B down": (8192, 28672),
}
CONFIGS = {  # name: (v, k, k_res)
    "v8-k65536": (8, 65536, 0),
    "v8-k65536-256": (8, 65536, 256),
    "v16-k65536-65536": (16, 65536, 65536),
    "v8-k256-256": (8, 256, 256),
    "v6-k4096": (6, 4096, 0),
    "v12-k4096-4096": (12, 4096, 4096),
    "v8-k4096": (8, 4096, 0),  # the pair of v8-k4096-256 for the "residual adds <= 15%" target
    "v8-k4096-256": (8, 4096, 256),
    "v8-k8192-256": (8, 8192, 256),
}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAME = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}
FLUSH_BYTES = 256 << 20


class Bench:
    def __init__(self, iters: int):
        self.iters = iters
        self.flush_buf = torch.ones(FLUSH_BYTES // 8, dtype=torch.int64, device="cuda")
        self.flush_sink = torch.zeros((), dtype=torch.int64, device="cuda")
        self.mod = native.kernels_module()
        self._dense = {}

    def cold(self, fn) -> float:
        """Median µs of fn() with L2 flushed before each call."""
        for _ in range(3):
            fn()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(self.iters)]
        for i in range(self.iters):
            # read-only flush: leaves L2 full of clean lines (a write flush would leave up to
            # 50 MB of dirty lines whose write-back lands in the timed call)
            self.flush_sink += self.flush_buf.sum()
            starts[i].record()
            fn()
            ends[i].record()
        torch.cuda.synchronize()
        return statistics.median(s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends))

    def graph(self, fn, calls: int = 20) -> float:
        """µs per call replayed from a CUDA graph of `calls` back-to-back calls (warm L2)."""
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(calls):
                fn()
        g.replay()
        torch.cuda.synchronize()
        reps = 20
        t0 = torch.cuda.Event(enable_timing=True)
        t1 = torch.cuda.Event(enable_timing=True)
        t0.record()
        for _ in range(reps):
            g.replay()
        t1.record()
        torch.cuda.synchronize()
        return t0.elapsed_time(t1) * 1e3 / (reps * calls)

    def copy_bandwidth(self) -> float:
        a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        for _ in range(3):
            b.copy_(a)
        t0 = torch.cuda.Event(enable_timing=True)
        t1 = torch.cuda.Event(enable_timing=True)
        n = 20
        torch.cuda.synchronize()
        t0.record()
        for _ in range(n):
            b.copy_(a)
        t1.record()
        torch.cuda.synchronize()
        sec = t0.elapsed_time(t1) / 1e3 / n
        del a, b
        return 2 * (1 << 30) / sec / 1e9

    def dense_us(self, shape, m: int) -> float:
        key = (shape, m)
        if key not in self._dense:
            o, i = shape
            w = torch.randn(o, i, dtype=torch.float16, device="cuda") * 0.02
            x = torch.randn(m, i, dtype=torch.float16, device="cuda")
            self._dense[key] = self.cold(lambda: torch.matmul(x, w.T))
            del w
        return self._dense[key]


def make_layer(cfg, shape, dtype, gen):
    v, k, k_res = cfg
    o, i = shape
    spec = synthetic.make_spec(name="bench", in_features=i, out_features=o, v=v, k=k, k_res=k_res)
    attrs = OpAttributes.from_spec(spec)
    shapes = attrs.input_shapes()
    inputs = {"packed_indices": torch.randint(-2**31, 2**31 - 1, shapes["packed_indices"],
                                              dtype=torch.int32, device="cuda", generator=gen)}
    inputs["centroids"] = (torch.randn(shapes["centroids"], device="cuda", generator=gen) * 0.05).to(dtype)
    if k_res:
        inputs["res_centroids"] = (torch.randn(shapes["res_centroids"], device="cuda",
                                               generator=gen) * 0.0125).to(dtype)
    return attrs, inputs


def check_slice(attrs: OpAttributes, inputs, x, y, dtype) -> float:
    """Relative error of y's first index rows against the fp64 reference."""
    nr = min(4, -(-attrs.out_features // attrs.vector_len))
    rows = min(attrs.out_features, nr * attrs.vector_len)
    d = attrs.as_dict()
    d["out_features"] = rows
    sub = OpAttributes.from_dict(d)
    cpu = {n: t.cpu() for n, t in inputs.items()}
    cpu["packed_indices"] = cpu["packed_indices"][:, :nr, :].contiguous().numpy()
    layer = layer_from_op(sub, cpu)
    ref = x.double().cpu() @ dequantize(layer, torch.float64).T
    got = y[:, :rows].double().cpu()
    return float((got - ref).norm() / ref.norm())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="8B shapes only, fewer M")
    ap.add_argument("--out", help="write the table (markdown) here too")
    ap.add_argument("--configs", help="comma-separated subset of " + ",".join(CONFIGS))
    ap.add_argument("--shapes", help="comma-separated subset of " + ",".join(SHAPES))
    ap.add_argument("--rows", help="comma-separated subset of M values")
    ap.add_argument("--no-baseline", action="store_true", help="skip cuBLAS (for profilers)")
    ap.add_argument("--sweep-m", help="comma-separated M values to time on every selected configuration x "
                                      "shape (fp16), e.g. 8,9,16,32,64 for the decode / prefill switch")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    b = Bench(args.iters)
    mod = b.mod
    if not getattr(mod, "has_cuda", False):
        print("vptq_export._kernels has no CUDA kernels")
        return 1
    gen = torch.Generator(device="cuda")
    gen.manual_seed(1234)
    props = torch.cuda.get_device_properties(0)
    bw = b.copy_bandwidth()
    header = (f"card: {props.name}, {props.multi_processor_count} SMs; torch {torch.__version__}; "
              f"measured copy bandwidth {bw:.0f} GB/s (read + write, 1 GiB); cuBLAS in kernels: "
              f"{getattr(mod, 'cuda_has_blas', False)}")
    print(header)

    shapes = ["8B q/o", "8B qkv", "8B kv", "8B up", "8B down"] if args.quick else list(SHAPES)
    plan = []  # (config, shape, dtype, m)
    for c in CONFIGS:
        for s in shapes:
            plan.append((c, s, "fp16", 1))
        plan.append((c, "8B q/o", "bf16", 1))
        if not args.quick:
            plan.append((c, "70B up", "bf16", 1))
        for m in ((2, 8, 16) if args.quick else (2, 4, 8, 16)):
            plan.append((c, "8B up", "fp16", m))
    for c in ("v8-k65536-256", "v8-k256-256", "v6-k4096"):
        for s in (["8B q/o"] if args.quick else ["8B q/o", "8B up"]):
            plan.append((c, s, "fp16", 512))
            if not args.quick:
                plan.append((c, s, "fp16", 2048))

    if args.sweep_m:
        plan = [(c, s, "fp16", int(m)) for c in CONFIGS for s in shapes for m in args.sweep_m.split(",")]

    def keep(item):
        c, s, _, m = item
        return ((not args.configs or c in args.configs.split(","))
                and (not args.shapes or s in args.shapes.split(","))
                and (not args.rows or args.sweep_m or str(m) in args.rows.split(",")))
    plan = [p for p in plan if keep(p)]
    rows = []
    for cfg_name, shape_name, dt_name, m in plan:
        dtype = DTYPES[dt_name]
        attrs, inputs = make_layer(CONFIGS[cfg_name], SHAPES[shape_name], dtype, gen)
        ad = attrs.as_dict()
        o, i = SHAPES[shape_name]
        x = torch.randn(m, i, dtype=dtype, device="cuda", generator=gen)
        y = torch.full((m, o), float("nan"), dtype=dtype, device="cuda")
        nbytes = mod.gemm_cuda_workspace_bytes(ad, DTYPE_NAME[dtype], m)
        ws = torch.empty(max(nbytes, 1), dtype=torch.uint8, device="cuda")
        ptrs = {n: t.data_ptr() for n, t in inputs.items()}

        def call():
            mod.gemm_cuda_ptr(ad, DTYPE_NAME[dtype], x.data_ptr(), y.data_ptr(), m, ptrs,
                              ws.data_ptr(), nbytes, torch.cuda.current_stream().cuda_stream, True)

        call()
        torch.cuda.synchronize()
        if torch.isnan(y).any():
            print(f"FAIL {cfg_name} {shape_name} {dt_name} M={m}: outputs not written")
            return 1
        err = check_slice(attrs, inputs, x, y, dtype)
        tol = 2e-3 if dtype == torch.float16 else 1.6e-2
        if not err <= tol:
            print(f"FAIL {cfg_name} {shape_name} {dt_name} M={m}: relative error {err:.3g}")
            return 1
        us = b.cold(call)
        graph_us = b.graph(call) if m <= 8 else float("nan")
        host_cpp = float("nan")
        if m <= 8:
            torch.cuda.synchronize()
            host_cpp = mod.gemm_cuda_host_us(ad, DTYPE_NAME[dtype], x.data_ptr(), y.data_ptr(), m, ptrs,
                                             ws.data_ptr(), nbytes, torch.cuda.current_stream().cuda_stream,
                                             True, 200)
            torch.cuda.synchronize()
        host_us = float("nan")
        if m == 1 and shape_name == "8B kv" and dt_name == "fp16":
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(1000):
                call()
            host_us = (time.perf_counter() - t0) * 1e3
            torch.cuda.synchronize()
        ibytes = sum(t.numel() * t.element_size() for t in inputs.values())
        moved = ibytes + x.numel() * x.element_size() + y.numel() * y.element_size()
        codes = attrs.group_num * (-(-o // attrs.vector_len)) * attrs.group_size
        lookups = codes * (2 if attrs.num_res_centroids else 1)
        dense = float("nan") if args.no_baseline else b.dense_us(SHAPES[shape_name], m)
        gbs = moved / (us * 1e-6) / 1e9
        rows.append(dict(config=cfg_name, shape=f"{shape_name} {o}x{i}", dtype=dt_name, m=m, us=us,
                         gbs=gbs, pct=100 * gbs / bw, glk=lookups / (us * 1e-6) / 1e9,
                         dense=dense, speedup=dense / us, graph=graph_us, host=host_us, host_cpp=host_cpp,
                         kernel=mod.gemm_cuda_kernel_name(ad, DTYPE_NAME[dtype], m), err=err))
        print(f"{cfg_name:18s} {shape_name:9s} {dt_name} M={m:<5d} {us:9.1f} us {gbs:7.0f} GB/s "
              f"{100 * gbs / bw:5.1f}% {rows[-1]['glk']:7.1f} Glk/s  cuBLAS {dense:8.1f} us "
              f"x{dense / us:5.2f}  graph {graph_us:7.1f}  host {host_cpp:5.2f} us  err {err:.1e}", flush=True)
        del inputs, ws, x, y

    lines = [header, "",
             "| config | shape (O x I) | dtype | M | µs | GB/s | % HBM (copy bw) | G lookups/s | "
             "cuBLAS fp16 µs | speed-up vs fp16 | graph µs/call (warm) | host µs/call (C++) | kernel |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['shape']} | {r['dtype']} | {r['m']} | {r['us']:.1f} | "
                     f"{r['gbs']:.0f} | {r['pct']:.1f}% | {r['glk']:.1f} | {r['dense']:.1f} | "
                     f"{r['speedup']:.2f}x | {r['graph']:.1f} | {r['host_cpp']:.2f} | `{r['kernel']}` |")
    host = [r["host"] for r in rows if r["host"] == r["host"]]
    if host:
        lines.append("")
        lines.append(f"host time per gemm_cuda_ptr call (Python + pybind + gemm_cuda, 8B kv, M=1): "
                     f"{host[0]:.2f} µs")
    torch.cuda.synchronize()
    empty = mod.gpu_empty_launch_host_us(torch.cuda.current_stream().cuda_stream, 1000)
    torch.cuda.synchronize()
    lines.append("")
    lines.append(f"host time per empty kernel launch (same argument block, C++ loop of 1000): {empty:.2f} µs")
    text = "\n".join(lines)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
