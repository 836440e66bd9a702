"""CPU VPTQGemm benchmark: vptq_export._kernels.gemm_cpu on random layers of LLM shapes.

    python benchmarks/bench_cpu.py                       # M=1, 4096x4096, 2-bit configs, 1 thread
    python benchmarks/bench_cpu.py --m 1 8 --threads 1 2 --shape 4096x4096 4096x14336 --dtype float16

Reports the median time per call, weights/s and the dense fp32 torch matmul of the same shape as
a yardstick (torch's dense GEMV reads 16x-32x more weight bytes). Results go in docs/benchmarks.md
with the machine and date.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from vptq_export.native import kernels_module
from vptq_export.op_spec import OpAttributes, op_weight_inputs
from vptq_export.synthetic import make_spec, random_layer

# name -> make_spec keywords (v, k, k_res): the 2-bit configurations of published VPTQ models
CONFIGS = {
    "v8-k65536": dict(v=8, k=65536),
    "v8-k256-256": dict(v=8, k=256, k_res=256),
    "v8-k65536-256": dict(v=8, k=65536, k_res=256),
    "v16-k65536-65536": dict(v=16, k=65536, k_res=65536),
    "v8-k4096": dict(v=8, k=4096),
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def time_call(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", nargs="+", default=["v8-k65536", "v8-k256-256"], choices=sorted(CONFIGS))
    p.add_argument("--shape", nargs="+", default=["4096x4096"], help="OUTxIN")
    p.add_argument("--m", nargs="+", type=int, default=[1])
    p.add_argument("--threads", nargs="+", type=int, default=[1])
    p.add_argument("--dtype", nargs="+", default=["float32", "float16"], choices=sorted(DTYPES))
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args(argv)
    k = kernels_module()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"{'config':18} {'shape':>11} {'dtype':>8} {'M':>4} {'thr':>3} {'ms':>9} {'Gw/s':>7} "
          f"{'dense fp32 ms':>13}")
    for shape in args.shape:
        out_f, in_f = (int(s) for s in shape.split("x"))
        for name in args.config:
            spec = make_spec(name, in_f, out_f, **CONFIGS[name])
            attrs = OpAttributes.from_spec(spec).as_dict()
            for dname in args.dtype:
                dtype = DTYPES[dname]
                layer = random_layer(spec, dtype, seed=0)
                weights = op_weight_inputs(layer, dtype)
                dense = torch.randn(out_f, in_f)
                for m in args.m:
                    x = torch.randn(m, in_f).to(dtype)
                    xf = x.float()
                    for threads in args.threads:
                        torch.set_num_threads(threads)
                        t = time_call(lambda: k.gemm_cpu(x, attrs, weights, num_threads=threads),
                                      args.repeat)
                        td = time_call(lambda: xf @ dense.T, args.repeat)
                        print(f"{name:18} {shape:>11} {dname:>8} {m:4d} {threads:3d} {t * 1e3:9.3f} "
                              f"{out_f * in_f * m / t / 1e9:7.2f} {td * 1e3:13.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
