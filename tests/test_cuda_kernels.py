"""CUDA kernels of VPTQGemm (csrc/cuda/, vptq_export._kernels.gemm_cuda*) against the fp64
reference (`reference.dequantize(layer, torch.float64)`), on fresh random layers and inputs.

Every configuration runs for fp32 / fp16 / bf16 activations and M in ROWS (1 .. 300): M <= 8
takes the fused decode kernels, 9 <= M <= 16 (and 16-row slices up to the measured limits) the
tensor-core kernels' 16-row variants where the layout has one, otherwise the prefill path
(dequantize + cuBLAS, and the tiled fallback GEMM without a BLAS handle). The output buffer is poisoned with NaN before each call and
must be fully written; each case runs twice and must be bitwise identical (no float atomics).

Skipped (with the reason) without a CUDA device or without the CUDA build of the module.
VPTQ_CUDA_TEST_QUICK=1 keeps a few small cases (for compute-sanitizer runs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from vptq_export import synthetic
from vptq_export.op_spec import OpAttributes
from vptq_export.reference.dequant import dequantize

from gpu_backends import cuda_kernels_module, device_weights

pytestmark = pytest.mark.gpu

QUICK = os.environ.get("VPTQ_CUDA_TEST_QUICK") == "1"
# set by test_mma_kernel_both_pair_counts for its child run (with VPTQ_GEMV_MMA_PAIRS)
FORCED_PAIRS = os.environ.get("VPTQ_CUDA_TEST_FORCED_PAIRS", "")
# set by test_mma_gather_kernel_at_one_row for its child run (with VPTQ_GEMV_MMA_GATHER_MIN_M=1)
GATHER_AT_M1 = os.environ.get("VPTQ_CUDA_TEST_GATHER_M1") == "1"
FAST_AT_M1 = os.environ.get("VPTQ_CUDA_TEST_FAST_M1") == "1"
# set by test_mma_12bit_kernel_forced_warps for its child run (with VPTQ_GEMV_MMA_WIDE_WARPS, and
# VPTQ_GEMV_MMA_WIDE_MIN_M=1 so that M = 1 takes it too)
WIDE_WARPS = os.environ.get("VPTQ_CUDA_TEST_WIDE_WARPS", "")
# set by test_decode_slices_forced for its child run (with VPTQ_GEMV_CHUNKED_MAX_M=64): more rows
SLICE_ROWS = (18, 34, 50) if os.environ.get("VPTQ_CUDA_TEST_SLICES") == "1" else ()

# Relative tolerance per dtype, for ||y - ref|| / ||ref|| and for max|y - ref| / max|ref|.
# Inputs (codebooks, X, scale, biases) are generated in the dtype, so the reference sees exactly
# what the kernel sees; the remaining error is the kernel's rounding:
#   fp32: fp32 accumulation over I <= 4096 terms, ~1e-6 observed; bound 1e-5.
#   fp16: output rounded to fp16 (2^-11 = 4.9e-4 relative) plus, on the prefill path, centroid
#         sums and x*scale rounded to fp16 before the tensor-core GEMM; bound 2e-3.
#   bf16: the same with 2^-8 = 3.9e-3 per rounding; bound 1.6e-2.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
DTYPE_NAME = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
# 12 and 16: one launch of a tensor-core kernel's two-n-tile (16-row) variant, the second n-tile
# partial and full; 17: decode slices (16 + 1 rows) for the layouts whose crossover lies above 16
# rows (dispatch.cu, chunked_decode_max_rows), else prefill; 300: prefill
ROWS = (1, 2, 3, 6, 8, 12, 16, 17, 300)


_kernels = cuda_kernels_module


# name -> make_spec keyword arguments. Covers v in {2,4,6,8,12,16} (table kernels) and others
# (generic kernel), index bits 4..16, residual bits 0..16, T up to 32 with straddling words,
# outliers, perm, norm, G > 1, bias, O not a multiple of v, codebooks in shared memory and not.
CONFIGS = {
    "v8-k256": dict(in_features=256, out_features=64, v=8, k=256),
    "v8-k65536-256-bias": dict(in_features=512, out_features=96, v=8, k=65536, k_res=256, bias=True),
    "v16-k65536-65536": dict(in_features=256, out_features=80, v=16, k=65536, k_res=65536),
    "v8-k256-256-perm-norm": dict(in_features=384, out_features=72, v=8, k=256, k_res=256,
                                  perm=True, norm=True),
    "v6-k4096-O-ragged": dict(in_features=300, out_features=100, v=6, k=4096),
    "v12-k4096-4096-G2": dict(in_features=288, out_features=70, v=12, k=4096, k_res=4096,
                              group_num=2),
    "v2-k16-res16-straddle": dict(in_features=100, out_features=33, v=2, k=16, k_res=16),
    "v4-k32-res8-T13": dict(in_features=160, out_features=45, v=4, k=32, k_res=256, bias=True),
    "v8-k8192-256-all": dict(in_features=320, out_features=61, v=8, k=8192, k_res=256,
                             group_num=2, outlier_size=64, v_o=4, k_o=16, perm=True, norm=True,
                             bias=True),
    "v4-k1024-G4-outliers": dict(in_features=272, out_features=50, v=4, k=1024, group_num=4,
                                 outlier_size=16, v_o=3, k_o=8),
    "v6-k64-res1024-G3-norm": dict(in_features=198, out_features=40, v=6, k=64, k_res=1024,
                                   group_num=3, norm=True),
    "v16-k128-perm": dict(in_features=128, out_features=50, v=16, k=128, perm=True),
    "v12-k512-res32-outl-bias": dict(in_features=200, out_features=37, v=12, k=512, k_res=32,
                                     outlier_size=8, v_o=5, k_o=4, bias=True),
    # generic kernel (v not in the table)
    "v1-k256": dict(in_features=96, out_features=21, v=1, k=256),
    "v3-k4096-res16-perm-norm": dict(in_features=150, out_features=31, v=3, k=4096, k_res=16,
                                     perm=True, norm=True, bias=True),
    "v5-k32768-G2": dict(in_features=140, out_features=23, v=5, k=32768, group_num=2),
    "v10-k256-256-outl": dict(in_features=136, out_features=47, v=10, k=256, k_res=256,
                              outlier_size=8, v_o=2, k_o=32),
    "v7-k16": dict(in_features=64, out_features=15, v=7, k=16),
    "v20-k1024": dict(in_features=96, out_features=45, v=20, k=1024),
    # widest code: 16 + 16 bits, and odd widths that straddle words
    "v4-k65536-65536-G2-norm": dict(in_features=192, out_features=30, v=4, k=65536, k_res=65536,
                                    group_num=2, norm=True),
    "v8-k2048-res512-T20": dict(in_features=96, out_features=40, v=8, k=2048, k_res=512),
    "v8-k32768-res128-T22": dict(in_features=80, out_features=24, v=8, k=32768, k_res=128,
                                 outlier_size=16, v_o=8, k_o=64),
    # tall layers: many index rows (several tiles per block), ragged last row
    "v8-k256-res16-tall": dict(in_features=64, out_features=6403, v=8, k=256, k_res=16, bias=True),
    "v3-k512-tall-all": dict(in_features=48, out_features=2500, v=3, k=512, outlier_size=16, v_o=4,
                             k_o=8, perm=True, norm=True),
    "v12-k4096-4096-tall": dict(in_features=32, out_features=9650, v=12, k=4096, k_res=4096),
    # a Llama-like width with big codebooks read from global memory
    "v8-k65536-wide": dict(in_features=4096, out_features=64, v=8, k=65536),
    "v6-k4096-wide-norm": dict(in_features=2048, out_features=60, v=6, k=4096, norm=True, perm=True),
    # fast kernel (gemv_fast.cuh) layouts: G > 1 with staged codebooks and ragged O; S = 3 items
    # per row; T = 21 (4-byte index loads) with a partial last warp item; T = 12 / 20 / 24
    "v8-k256-256-G2-ragged-fast": dict(in_features=512, out_features=4100, v=8, k=256, k_res=256,
                                       group_num=2, bias=True),
    "v8-k4096-256-S3-fast": dict(in_features=3072, out_features=200, v=8, k=4096, k_res=256, norm=True),
    "v8-k8192-256-T21-fast": dict(in_features=1056, out_features=64, v=8, k=8192, k_res=256, perm=True),
    "v8-k4096-fast": dict(in_features=1024, out_features=1000, v=8, k=4096),
    "v8-k65536-256-fast": dict(in_features=2048, out_features=72, v=8, k=65536, k_res=256),
    # tensor-core kernel (gemv_mma.cuh, v8-k256-256): odd index-row count (last pair half empty)
    # with perm (x' exact in T), a partial last 4-unit chunk (9 units per row), split-K over
    # several warp items per row pair, bf16 + norm (hi / lo activations; fp16 + norm takes the
    # fast kernel: see dispatch.cu)
    "v8-k256-256-perm-mma": dict(in_features=1024, out_features=520, v=8, k=256, k_res=256, perm=True),
    "v8-k256-256-9units-mma": dict(in_features=288, out_features=40, v=8, k=256, k_res=256, bias=True),
    "v8-k256-256-splitk-mma": dict(in_features=4096, out_features=264, v=8, k=256, k_res=256),
    "v8-k256-256-norm-mma": dict(in_features=2048, out_features=136, v=8, k=256, k_res=256, norm=True,
                                 bias=True),
    # many row blocks per launch (several tiles per persistent block), odd index-row count
    "v8-k256-256-tall-mma": dict(in_features=256, out_features=8200, v=8, k=256, k_res=256),
    # the same kernel for v6-k4096 (12-byte entries padded to 16 bytes in shared memory): O not a
    # multiple of 6 (last index row 4 outputs) and an odd index-row count (167: last pair half
    # empty) with perm; many tiles with bias
    "v6-k4096-ragged-perm-mma": dict(in_features=1024, out_features=1000, v=6, k=4096, perm=True),
    "v6-k4096-tall-mma": dict(in_features=256, out_features=6000, v=6, k=4096, bias=True),
    # v12-k4096-4096 kernel (gemv_mma_v12.cuh: head / tail tables, one index row per mma): O not a
    # multiple of 12 (last row 4 outputs) with perm and a partial last chunk (9 units per row);
    # many tiles with bias; bf16 + norm (hi / lo activations; fp16 + norm takes the fast kernel)
    "v12-k4096-4096-ragged-perm-mma": dict(in_features=288, out_features=1000, v=12, k=4096, k_res=4096,
                                           perm=True),
    "v12-k4096-4096-tall-mma": dict(in_features=1024, out_features=9000, v=12, k=4096, k_res=4096, bias=True),
    "v12-k4096-4096-norm-mma": dict(in_features=2048, out_features=120, v=12, k=4096, k_res=4096, norm=True,
                                    bias=True),
    # tensor-core gather kernel (gemv_mma_gather.cuh, v8 with 16-bit main codes): G = 2 with 9
    # units per group (a partial chunk, groups switching inside a chunk), an odd index-row count
    # with perm and a partial last chunk, bf16 + norm (hi / lo), split-K, many tiles per block
    "v8-k65536-G2-9units-mma": dict(in_features=576, out_features=72, v=8, k=65536, group_num=2, bias=True),
    "v8-k65536-256-odd-perm-mma": dict(in_features=1056, out_features=120, v=8, k=65536, k_res=256,
                                       perm=True),
    "v8-k65536-256-norm-mma": dict(in_features=2048, out_features=136, v=8, k=65536, k_res=256, norm=True,
                                   bias=True),
    "v8-k65536-256-splitk-mma": dict(in_features=4096, out_features=264, v=8, k=65536, k_res=256),
    "v8-k65536-tall-mma": dict(in_features=256, out_features=8200, v=8, k=65536),
    # the gather kernel for v16-k65536-65536 (both codebooks gathered, one index row per mma):
    # G = 2 with 9 units per group and O not a multiple of 16, bf16 + norm with perm, split-K,
    # many tiles per block
    "v16-k65536-65536-G2-ragged-mma": dict(in_features=576, out_features=88, v=16, k=65536, k_res=65536,
                                           group_num=2, bias=True),
    "v16-k65536-65536-perm-norm-mma": dict(in_features=2048, out_features=136, v=16, k=65536, k_res=65536,
                                           perm=True, norm=True, bias=True),
    "v16-k65536-65536-splitk-mma": dict(in_features=4096, out_features=256, v=16, k=65536, k_res=65536),
    "v16-k65536-65536-tall-mma": dict(in_features=256, out_features=8208, v=16, k=65536, k_res=65536),
    # the gather kernel for 12 / 13-bit main codes (20 / 21-bit codes with the residual: funnel
    # shifts across words): bias, an odd index-row count with perm and a partial last chunk,
    # bf16 + norm, G = 2 without residual, split-K. With G = 1 these run its staged-main variant
    # (main codebook in shared memory; test_mma_gather_kernel_gathering_main runs them gathered);
    # G = 2 keeps the gathering one
    "v8-k4096-256-mma": dict(in_features=2048, out_features=136, v=8, k=4096, k_res=256, bias=True),
    "v8-k8192-256-odd-perm-mma": dict(in_features=1056, out_features=120, v=8, k=8192, k_res=256, perm=True),
    "v8-k4096-256-norm-mma": dict(in_features=1024, out_features=64, v=8, k=4096, k_res=256, norm=True),
    "v8-k4096-G2-mma": dict(in_features=576, out_features=72, v=8, k=4096, group_num=2, bias=True),
    "v8-k8192-256-splitk-mma": dict(in_features=4096, out_features=264, v=8, k=8192, k_res=256),
    "v8-k4096-odd-perm-mma": dict(in_features=1056, out_features=120, v=8, k=4096, perm=True, bias=True),
    # the staged-codebook kernel (gemv_mma.cuh) for 12-bit main codes with the residual (G = 1):
    # an odd index-row count with perm and a partial last chunk (33 units per row), split-K
    "v8-k4096-256-odd-perm-mma": dict(in_features=1056, out_features=120, v=8, k=4096, k_res=256, perm=True,
                                      bias=True),
    "v8-k4096-256-splitk-mma": dict(in_features=4096, out_features=264, v=8, k=4096, k_res=256),
    "v8-k4096-tall-mma": dict(in_features=256, out_features=8200, v=8, k=4096),
    # the same kernel for 13-bit main codes (21-bit codes, row-major ring chunks, one block of 16
    # warps; group_size % 128 == 0, else the gather kernel: v8-k8192-256-odd-perm-mma): perm + bias,
    # bf16 + norm (hi / lo), a tall layer (odd index-row count); split-K:
    # v8-k8192-256-splitk-mma above
    "v8-k8192-256-perm-mma": dict(in_features=2048, out_features=136, v=8, k=8192, k_res=256, perm=True, bias=True),
    "v8-k8192-256-norm-mma": dict(in_features=1024, out_features=64, v=8, k=8192, k_res=256, norm=True),
    "v8-k8192-256-tall-mma": dict(in_features=512, out_features=4216, v=8, k=8192, k_res=256),
    # more tiles (256) than blocks (one per SM): each block walks several tiles
    "v8-k8192-256-tiles-mma": dict(in_features=1024, out_features=8192, v=8, k=8192, k_res=256),
    # prefill over several dequantized row chunks (128 MiB each, dispatch.cu: 1024 rows of fp32 at
    # I = 32768, 2048 of fp16 / bf16), v = 6 so an index row straddles each chunk boundary
    # (1024 = 6 * 170 + 4, 2048 = 6 * 341 + 2)
    "v6-k256-256-chunks": dict(in_features=32768, out_features=2100, v=6, k=256, k_res=256, bias=True),
    # one chunk by default; with VPTQ_PREFILL_CHUNK_MB=1 (test_prefill_chunk_rows_rounded) 1 MiB
    # holds 524 fp16 / 262 fp32 rows, rounded down to 512 / 256 (dispatch.cu,
    # kDequantChunkRowAlign = 128 only from 128 rows on: 256 = 2 x 128), index rows straddling
    "v6-k256-256-chunks-small": dict(in_features=1000, out_features=1500, v=6, k=256, k_res=256, bias=True),
    # the tiled dequantizer (prefill.cu) on v = 8: several 512-row chunks under
    # VPTQ_PREFILL_CHUNK_MB=1 with a ragged last index row; a tall layer whose 800 index rows x 2
    # slabs of 256 tiles (the second half empty: 384 tiles per row) are ~4 work items per block,
    # so each block's look-ahead load of the next item's index words crosses rows and slabs
    "v8-k128-64-chunks-small": dict(in_features=1000, out_features=1500, v=8, k=128, k_res=64, bias=True),
    "v8-k4096-256-tall": dict(in_features=3072, out_features=6400, v=8, k=4096, k_res=256),
}
QUICK_CONFIGS = ("v8-k256-256-perm-norm", "v8-k8192-256-all", "v3-k4096-res16-perm-norm",
                 "v12-k512-res32-outl-bias", "v3-k512-tall-all", "v8-k256-256-G2-ragged-fast",
                 "v8-k8192-256-T21-fast", "v12-k4096-4096-tall", "v16-k65536-65536",
                 "v8-k256-256-perm-mma", "v8-k256-256-norm-mma", "v8-k65536-G2-9units-mma",
                 "v8-k65536-256-odd-perm-mma", "v16-k65536-65536-G2-ragged-mma", "v8-k8192-256-odd-perm-mma",
                 "v8-k4096-G2-mma", "v8-k4096-256-tall", "v8-k4096-odd-perm-mma", "v8-k4096-256-odd-perm-mma",
                 "v8-k8192-256-perm-mma", "v8-k8192-256-tiles-mma", "v6-k4096-ragged-perm-mma",
                 "v12-k4096-4096-ragged-perm-mma")


def _run(mod, attrs, dtype, x, weights, use_blas):
    m = x.shape[0]
    o = attrs["out_features"]
    name = DTYPE_NAME[dtype]
    y = torch.full((m, o), float("nan"), dtype=dtype, device="cuda")
    nbytes = mod.gemm_cuda_workspace_bytes(attrs, name, m)
    ws = torch.full((max(nbytes, 1),), 0xFF, dtype=torch.uint8, device="cuda")  # NaN bit patterns
    mod.gemm_cuda_ptr(attrs, name, x.data_ptr(), y.data_ptr(), m,
                      {k: v.data_ptr() for k, v in weights.items()}, ws.data_ptr(), nbytes,
                      torch.cuda.current_stream().cuda_stream, use_blas)
    torch.cuda.synchronize()
    return y


def _check(y, ref, dtype, what):
    assert not torch.isnan(y).any(), f"{what}: {int(torch.isnan(y).sum())} outputs not written (NaN)"
    y64 = y.double().cpu()
    err = (y64 - ref).norm() / ref.norm().clamp_min(1e-30)
    maxerr = (y64 - ref).abs().max() / ref.abs().max().clamp_min(1e-30)
    tol = TOLERANCE[dtype]
    assert err <= tol and maxerr <= 4 * tol, f"{what}: relative error {err:.3g} (max {maxerr:.3g}), tolerance {tol}"


@pytest.mark.parametrize("config", [c for c in CONFIGS if not QUICK or c in QUICK_CONFIGS])
def test_gemm_cuda_matches_fp64_reference(config):
    mod = _kernels()
    seed = int.from_bytes(os.urandom(4), "little")
    rng = np.random.default_rng(seed)
    spec = synthetic.make_spec(name=config, **CONFIGS[config])
    attrs = OpAttributes.from_spec(spec).as_dict()
    rows = ((1, 2, 12, 17) if QUICK else ROWS) + SLICE_ROWS
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        layer = synthetic.random_layer(spec, dtype, rng)
        w64 = dequantize(layer, torch.float64)
        b64 = layer.bias.double() if spec.bias else None
        weights = device_weights(layer, dtype)
        for m in rows:
            x = torch.from_numpy(rng.normal(0, 1, (m, spec.in_features)).astype(np.float32)).to(dtype)
            ref = x.double() @ w64.T
            if b64 is not None:
                ref = ref + b64
            xd = x.cuda()
            paths = (True, False) if m > 8 else (True,)
            for use_blas in paths:
                what = (f"{config} {DTYPE_NAME[dtype]} M={m} blas={use_blas} seed={seed} "
                        f"kernel={mod.gemm_cuda_kernel_name(attrs, DTYPE_NAME[dtype], m)}")
                if FORCED_PAIRS and what.endswith(">") and "kernel=vptq_gemv_mma<" in what:
                    # P = 2 has no two-n-tile variant: M > 8 then runs 8-row slices of P = 2
                    assert re.search(rf",P={FORCED_PAIRS}(,MB=16)?(,W=16)?>$", what), f"{what}: VPTQ_GEMV_MMA_PAIRS ignored"
                if os.environ.get("VPTQ_GEMV_MMA_STAGE_MAIN") == "0":
                    assert ",cb=smem>" not in what, f"{what}: VPTQ_GEMV_MMA_STAGE_MAIN=0 ignored"
                if GATHER_AT_M1 and m == 1 and dtype != torch.float32 and not (spec.enable_norm and dtype == torch.float16):
                    assert "kernel=vptq_gemv_mma_gather<" in what, f"{what}: VPTQ_GEMV_MMA_GATHER_MIN_M ignored"
                if "kernel=vptq_gemv_mma<" in what and ",V=8,IB=12," in what:
                    # 16 warps: forced, or by default the two-n-tile variant with the residual
                    want16 = WIDE_WARPS == "16" if WIDE_WARPS else (",RB=8," in what and ",MB=16" in what)
                    assert what.endswith(",W=16>") == want16, f"{what}: 16 warps expected: {want16}"
                if (WIDE_WARPS == "16" and m <= 16 and dtype != torch.float32 and spec.vector_len == 8
                        and spec.index_bits == 12 and spec.res_index_bits in (0, 8) and spec.group_num == 1
                        and spec.outlier_size == 0 and spec.group_size % 32 == 0
                        and not (spec.enable_norm and dtype == torch.float16)):
                    assert what.endswith(",W=16>"), f"{what}: the 16-warp 12-bit kernel did not run"
                if FAST_AT_M1 and m == 1 and dtype != torch.float32:
                    assert "kernel=vptq_gemv_fast<" in what, f"{what}: VPTQ_GEMV_MMA_WIDE_MIN_M ignored"
                y1 = _run(mod, attrs, dtype, xd, weights, use_blas)
                _check(y1, ref, dtype, what)
                y2 = _run(mod, attrs, dtype, xd, weights, use_blas)
                assert torch.equal(y1, y2), f"{what}: two runs differ (non-deterministic)"


def test_tensor_api_and_batch_shape():
    """gemm_cuda on tensors: leading dims of X are kept, the current stream is used."""
    mod = _kernels()
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    spec = synthetic.make_spec(name="api", in_features=128, out_features=40, v=8, k=256, k_res=16,
                               bias=True, perm=True)
    attrs = OpAttributes.from_spec(spec).as_dict()
    layer = synthetic.random_layer(spec, torch.float16, rng)
    weights = device_weights(layer, torch.float16)
    x = torch.from_numpy(rng.normal(0, 1, (2, 3, 128)).astype(np.float32)).half()
    ref = x.double() @ dequantize(layer, torch.float64).T + layer.bias.double()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        y = mod.gemm_cuda(x.cuda(), attrs, weights)
    stream.synchronize()
    assert y.shape == (2, 3, 40) and y.dtype == torch.float16 and y.is_cuda
    _check(y.reshape(6, 40), ref.reshape(6, 40), torch.float16, "tensor api")


def test_kernel_names_follow_the_dispatch_table():
    mod = _kernels()
    attrs = OpAttributes.from_spec(synthetic.make_spec(in_features=64, out_features=48, v=8, k=256)).as_dict()
    # fp16 / bf16, (v, index bits, residual bits) in gemv_fast_table.h, group_size % 32 == 0
    assert mod.gemm_cuda_kernel_name(attrs, "float16", 1) == "vptq_gemv_fast<float16,V=8,IB=8,RB=0,MB=1>"
    assert mod.gemm_cuda_kernel_name(attrs, "bfloat16", 8) == "vptq_gemv_fast<bfloat16,V=8,IB=8,RB=0,MB=8>"
    assert mod.gemm_cuda_kernel_name(attrs, "bfloat16", 3) == "vptq_gemv<bfloat16,VT=8,MB=4,R=1,exact=true>"
    assert mod.gemm_cuda_kernel_name(attrs, "float32", 1) == "vptq_gemv<float32,VT=8,MB=1,R=1,exact=true>"
    wide = OpAttributes.from_spec(synthetic.make_spec(in_features=64, out_features=48, v=16, k=65536,
                                                      k_res=65536)).as_dict()
    assert mod.gemm_cuda_kernel_name(wide, "float16", 1) == "vptq_gemv_fast<float16,V=16,IB=16,RB=16,MB=1>"
    # V = 16 at M = 1: the fast kernel up to 256 index rows, the generic kernel above (dispatch.cu)
    for out_features, kernel in ((4096, "vptq_gemv_fast<float16,V=16,IB=16,RB=16,MB=1>"),
                                 (4112, "vptq_gemv<float16,VT=16,MB=1,R=1,exact=true>")):
        tall = OpAttributes.from_spec(synthetic.make_spec(in_features=64, out_features=out_features, v=16,
                                                          k=65536, k_res=65536)).as_dict()
        assert mod.gemm_cuda_kernel_name(tall, "float16", 1) == kernel
    wide_m2 = (_gather_name("float16", 16, v=16) if _mma_expected() and "VPTQ_GEMV_MMA_GATHER_MIN_M" not in os.environ
               else "vptq_gemv<float16,VT=16,MB=2,R=1,exact=true>")
    assert mod.gemm_cuda_kernel_name(wide, "float16", 2) == wide_m2
    outl = OpAttributes.from_spec(synthetic.make_spec(in_features=96, out_features=48, v=8, k=256,
                                                      outlier_size=32, v_o=4, k_o=16)).as_dict()
    assert mod.gemm_cuda_kernel_name(outl, "float16", 1) == "vptq_gemv<float16,VT=8,MB=1,R=1,exact=true>"
    # prefill: the tiled dequantizer for v in {2, 4, 6, 8, 12, 16} and gs, os, I multiples of 8
    assert mod.gemm_cuda_kernel_name(attrs, "float16", 9).startswith("vptq_dequant_tiles<float16>+")
    assert mod.gemm_cuda_kernel_name(outl, "float32", 9).startswith("vptq_dequant_tiles<float32>+")
    generic = OpAttributes.from_spec(synthetic.make_spec(in_features=64, out_features=48, v=3, k=256)).as_dict()
    assert mod.gemm_cuda_kernel_name(generic, "float32", 8) == "vptq_gemv<float32,VT=4,MB=8,R=1,exact=false>"
    assert mod.gemm_cuda_kernel_name(generic, "float16", 9).startswith("vptq_dequant<float16>+")


def _mma_expected():
    """The tensor-core kernel runs on sm_80+ for every M <= 8 (kMmaMinRows = 1) unless
    VPTQ_GEMV_MMA=0 or VPTQ_GEMV_MMA_MIN_M is set (dispatch.cu)."""
    return (torch.cuda.get_device_capability()[0] >= 8
            and not os.environ.get("VPTQ_GEMV_MMA", "").startswith("0")
            and "VPTQ_GEMV_MMA_MIN_M" not in os.environ)


def _mma_name(dt):
    """Name of the tensor-core kernel for dtype `dt`: P = 1 or 2 index-row pairs per warp step,
    whichever dispatch.cu's cost model picks for the shape (or VPTQ_GEMV_MMA_PAIRS forces)."""
    return re.compile(rf"vptq_gemv_mma<{dt},V=8,IB=8,RB=8,P=[12]>")


def _mma16_name(dt):
    """Its two-n-tile variant (9 <= M <= 16 rows per launch; P = 1 only)."""
    return f"vptq_gemv_mma<{dt},V=8,IB=8,RB=8,P=1,MB=16>"


def test_mma_kernel_dispatch():
    mod = _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    spec = synthetic.make_spec(in_features=256, out_features=64, v=8, k=256, k_res=256)
    attrs = OpAttributes.from_spec(spec).as_dict()
    for dt in ("float16", "bfloat16"):
        for m in (1, 2, 3, 5, 6, 8):
            assert _mma_name(dt).fullmatch(mod.gemm_cuda_kernel_name(attrs, dt, m))
        # M = 9 .. 16 one launch of the 16-row variant, up to 32 as 16-row slices, prefill from
        # M = 33 (this W fits one dequantization chunk)
        for m in (9, 16, 17, 32):
            assert mod.gemm_cuda_kernel_name(attrs, dt, m) == _mma16_name(dt)
        assert mod.gemm_cuda_kernel_name(attrs, dt, 33).startswith(f"vptq_dequant_tiles<{dt}>+")
    assert mod.gemm_cuda_kernel_name(attrs, "float32", 1).startswith("vptq_gemv<float32,")
    # no perm / norm: X is read directly, no workspace
    assert mod.gemm_cuda_workspace_bytes(attrs, "float16", 8) == 0
    norm = OpAttributes.from_spec(synthetic.make_spec(in_features=256, out_features=64, v=8, k=256,
                                                      k_res=256, norm=True)).as_dict()
    assert _mma_name("bfloat16").fullmatch(mod.gemm_cuda_kernel_name(norm, "bfloat16", 8))
    assert _mma_name("bfloat16").fullmatch(mod.gemm_cuda_kernel_name(norm, "bfloat16", 1))
    assert mod.gemm_cuda_kernel_name(norm, "float16", 8) == "vptq_gemv_fast<float16,V=8,IB=8,RB=8,MB=8>"
    assert mod.gemm_cuda_kernel_name(norm, "float16", 1) == "vptq_gemv_fast<float16,V=8,IB=8,RB=8,MB=1>"


def _gather_name(dt, rb, v=8, ib=16, rows=8, staged=False):
    """The gather kernel's name: one n-tile (M <= 8) or two (rows=16: 9 <= M <= 16 per launch);
    staged: its staged-main variant (main codebook in shared memory)."""
    return (f"vptq_gemv_mma_gather<{dt},V={v},IB={ib},RB={rb}{',MB=16' if rows == 16 else ''}"
            f"{',cb=smem' if staged else ''}>")


def _wide_expected():
    """v8-k4096-256 and v8-k4096 with G = 1 run the staged-codebook kernel (gemv_mma.cuh, IB = 12)
    from M = 2 (M = 1 on small layers), unless VPTQ_GEMV_MMA_WIDE=0 or VPTQ_GEMV_MMA_WIDE_MIN_M
    moves it (dispatch.cu, kMmaWideMinRows)."""
    return os.environ.get("VPTQ_GEMV_MMA_WIDE", "1") != "0" and "VPTQ_GEMV_MMA_WIDE_MIN_M" not in os.environ


def _stage_main_expected():
    """The 12-bit layouts (v8-k4096, v8-k4096-256) with G = 1 run the gather kernel's staged-main
    variant from M = 2, unless VPTQ_GEMV_MMA_STAGE_MAIN=0 (dispatch.cu, kMmaStageMainMinRows)."""
    return os.environ.get("VPTQ_GEMV_MMA_STAGE_MAIN", "1") != "0"


def test_mma_gather_kernel_dispatch():
    """The gather layouts (v8-k65536, v8-k65536-256, v16-k65536-65536, v8-k4096, v8-k4096-256,
    v8-k8192-256) take the tensor-core gather kernel for 2 <= M <= 8 (fp16 / bf16; M = 1 the fast
    kernel), G = 1 when the residual is the staged 256-row one, not fp16 + norm; the 12-bit ones
    with G = 1 its staged-main variant (dispatch.cu)."""
    mod = _kernels()
    if not _mma_expected() or "VPTQ_GEMV_MMA_GATHER_MIN_M" in os.environ:
        pytest.skip("tensor-core decode kernels off (device below sm_80, VPTQ_GEMV_MMA=0) or moved")
    for v, ib, k_res, rb in ((8, 16, 0, 0), (8, 16, 256, 8), (16, 16, 65536, 16), (8, 12, 0, 0), (8, 12, 256, 8),
                             (8, 13, 256, 8)):
        if ib in (12, 13) and _wide_expected():
            continue  # the staged-codebook kernel: test_mma_wide_kernel_dispatch
        attrs = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=v, k=2**ib,
                                                           k_res=k_res)).as_dict()
        staged = ib == 12 and _stage_main_expected()
        for dt in ("float16", "bfloat16"):
            assert mod.gemm_cuda_kernel_name(attrs, dt, 1) == f"vptq_gemv_fast<{dt},V={v},IB={ib},RB={rb},MB=1>"
            # 12 / 13-bit main codes with the 256-row residual, gathered: from M = 3 (generic
            # measured faster at M = 2); staged main: from M = 2
            first = 3 if ib < 16 and rb == 8 and not staged else 2
            if first == 3:
                assert mod.gemm_cuda_kernel_name(attrs, dt, 2) == f"vptq_gemv<{dt},VT=8,MB=2,R=1,exact=true>"
            for m in (first, 5, 8):
                assert mod.gemm_cuda_kernel_name(attrs, dt, m) == _gather_name(dt, rb, v, ib, staged=staged)
            # M = 9 .. 16: one launch of the two-n-tile variant; then 16-row slices up to 32 for
            # V = 16 and the staged-main v8-k4096, else prefill
            last = 32 if v == 16 or (staged and rb == 0) else 16
            for m in (9, 16, last):
                assert mod.gemm_cuda_kernel_name(attrs, dt, m) == _gather_name(dt, rb, v, ib, rows=16, staged=staged)
            assert mod.gemm_cuda_kernel_name(attrs, dt, last + 1).startswith(f"vptq_dequant_tiles<{dt}>+")
        assert mod.gemm_cuda_kernel_name(attrs, "float32", 1).startswith("vptq_gemv<float32,")
        assert mod.gemm_cuda_workspace_bytes(attrs, "float16", 8) == 0
    g2 = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=8, k=65536,
                                                    k_res=256, group_num=2)).as_dict()
    assert mod.gemm_cuda_kernel_name(g2, "float16", 2) == "vptq_gemv<float16,VT=8,MB=2,R=1,exact=true>"
    g2_plain = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=8, k=65536,
                                                          group_num=2)).as_dict()
    assert mod.gemm_cuda_kernel_name(g2_plain, "bfloat16", 4) == _gather_name("bfloat16", 0)
    g2_wide = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=16, k=65536,
                                                         k_res=65536, group_num=2)).as_dict()
    assert mod.gemm_cuda_kernel_name(g2_wide, "float16", 8) == _gather_name("float16", 16, v=16)
    norm = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=8, k=65536,
                                                      k_res=256, norm=True)).as_dict()
    assert mod.gemm_cuda_kernel_name(norm, "bfloat16", 8) == _gather_name("bfloat16", 8)
    assert mod.gemm_cuda_kernel_name(norm, "float16", 8) == "vptq_gemv_fast<float16,V=8,IB=16,RB=8,MB=8>"


def test_mma_wide_kernel_dispatch():
    """v8-k4096-256, v8-k4096, v6-k4096 (12-bit main codes) and v8-k8192-256 (13-bit) with G = 1: the
    staged-codebook kernel (gemv_mma.cuh, IB = 12 / 13, P = 1) for 2 <= M <= 8 and M = 1 (12-bit
    codes only on layers of <= 512 index rows: the fast kernel above), its 16-row variant for
    9 <= M <= 16, 16-row slices up to M = 32 for v8-k4096, prefill from 17 / 33; 13-bit codes only
    with group_size % 128 == 0; G = 2 keeps the generic kernel (the gather kernel's residual is
    G = 1 only too); fp32 never."""
    mod = _kernels()
    if not _mma_expected() or not _wide_expected() or "VPTQ_GEMV_CHUNKED_MAX_M" in os.environ:
        pytest.skip("tensor-core decode kernels off or moved by the environment")
    for k, k_res, ib, rb in ((4096, 256, 12, 8), (4096, 0, 12, 0), (8192, 256, 13, 8)):
        attrs = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=8, k=k,
                                                           k_res=k_res)).as_dict()
        # M = 1, 12-bit codes: this kernel on layers of <= 512 index rows (here 8; 4096 / 8 = 512),
        # else the fast kernel; 13-bit codes: this kernel on every layer
        at_512 = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=4096, v=8, k=k,
                                                            k_res=k_res)).as_dict()
        at_513 = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=4104, v=8, k=k,
                                                            k_res=k_res)).as_dict()
        mma, fast = f"V=8,IB={ib},RB={rb},P=1", f"V=8,IB={ib},RB={rb},MB=1"
        for dt in ("float16", "bfloat16"):
            for layer in (attrs, at_512):
                assert mod.gemm_cuda_kernel_name(layer, dt, 1) == f"vptq_gemv_mma<{dt},{mma}>"
            one_row_513 = f"vptq_gemv_mma<{dt},{mma}>" if ib == 13 else f"vptq_gemv_fast<{dt},{fast}>"
            assert mod.gemm_cuda_kernel_name(at_513, dt, 1) == one_row_513
            assert mod.gemm_cuda_kernel_name(at_513, dt, 2) == f"vptq_gemv_mma<{dt},{mma}>"
            for m in (2, 5, 8):
                assert mod.gemm_cuda_kernel_name(attrs, dt, m) == f"vptq_gemv_mma<{dt},{mma}>"
            # M = 9 .. 16 one launch of two n-tiles (16 warps per block for v8-k4096-256); 16-row
            # slices up to 32 rows for v8-k4096, else prefill
            last = 32 if rb == 0 else 16
            w16 = ",W=16" if (ib, rb) == (12, 8) else ""
            for m in (9, 16, last):
                assert mod.gemm_cuda_kernel_name(attrs, dt, m) == f"vptq_gemv_mma<{dt},{mma},MB=16{w16}>"
            assert mod.gemm_cuda_kernel_name(attrs, dt, last + 1).startswith(f"vptq_dequant_tiles<{dt}>+")
    # 13-bit codes need group_size % 128 == 0 (whole 16-byte-aligned ring chunks): 544 = 17 x 32
    # columns keeps the gather kernel (from M = 3; the generic kernel at M = 2)
    odd = OpAttributes.from_spec(synthetic.make_spec(in_features=544, out_features=64, v=8, k=8192,
                                                     k_res=256)).as_dict()
    assert mod.gemm_cuda_kernel_name(odd, "float16", 2) == "vptq_gemv<float16,VT=8,MB=2,R=1,exact=true>"
    for m in (3, 8):
        assert mod.gemm_cuda_kernel_name(odd, "float16", m) == _gather_name("float16", 8, ib=13)
    assert mod.gemm_cuda_kernel_name(attrs, "float32", 1).startswith("vptq_gemv<float32,")
    assert mod.gemm_cuda_workspace_bytes(attrs, "float16", 8) == 0  # X read in place
    g2 = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=64, v=8, k=4096, k_res=256,
                                                    group_num=2)).as_dict()
    assert mod.gemm_cuda_kernel_name(g2, "float16", 4) == "vptq_gemv<float16,VT=8,MB=4,R=1,exact=true>"
    # v6-k4096 (12-byte entries padded to 16 when staged) and v12-k4096-4096 (gemv_mma_v12.cuh): the
    # tensor-core kernel from M = 1 on every layer (kMmaWideV6MinRows, kMmaWideV12MinRows), its
    # 16-row variant for 9 <= M <= 16 and 16-row slices up to 32 rows on layers of more than
    # 4096 x 4096 (v6) / 8192 x 8192 (v12) weights, else prefill from 17
    for v, k_res, layout, cases in (
            (6, 0, "V=6,IB=12,RB=0", ((512, 1000, 16), (4096, 4096, 16), (4096, 4104, 32))),
            (12, 4096, "V=12,IB=12,RB=12", ((512, 1000, 16), (8192, 8192, 16), (8192, 8200, 32)))):
        for in_features, out_features, last in cases:
            layer = OpAttributes.from_spec(synthetic.make_spec(in_features=in_features, out_features=out_features,
                                                               v=v, k=4096, k_res=k_res)).as_dict()
            for dt in ("float16", "bfloat16"):
                for m in (1, 2, 8):
                    assert mod.gemm_cuda_kernel_name(layer, dt, m) == f"vptq_gemv_mma<{dt},{layout},P=1>"
                for m in (9, 16, last):
                    assert mod.gemm_cuda_kernel_name(layer, dt, m) == f"vptq_gemv_mma<{dt},{layout},P=1,MB=16>"
                assert mod.gemm_cuda_kernel_name(layer, dt, last + 1).startswith(f"vptq_dequant_tiles<{dt}>+")
    # not fp16 with norm (the fast kernel at M = 1); G = 2 keeps the fast kernel
    v12_g2 = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=120, v=12, k=4096,
                                                        k_res=4096, group_num=2)).as_dict()
    assert mod.gemm_cuda_kernel_name(v12_g2, "float16", 1) == "vptq_gemv_fast<float16,V=12,IB=12,RB=12,MB=1>"
    v6_norm = OpAttributes.from_spec(synthetic.make_spec(in_features=512, out_features=1000, v=6, k=4096,
                                                         norm=True)).as_dict()
    assert mod.gemm_cuda_kernel_name(v6_norm, "float16", 1) == "vptq_gemv_fast<float16,V=6,IB=12,RB=0,MB=1>"
    assert mod.gemm_cuda_kernel_name(v6_norm, "bfloat16", 1) == "vptq_gemv_mma<bfloat16,V=6,IB=12,RB=0,P=1>"


def test_chunked_decode_dispatch():
    """M > 8 as 16-row decode slices (dispatch.cu, chunked_decode_max_rows): a layer whose fp16 W
    needs several 128 MiB dequantization chunks (8192 x 16384) keeps the staged-codebook kernel
    up to M = 64, the gather kernel up to M = 16 (32 for V = 16) as for one chunk; fp32 always
    dequantizes from M = 9. (The workspace of a shorter last slice that runs a CUDA-core kernel
    is exercised by test_decode_slices_forced.)"""
    mod = _kernels()
    if not _mma_expected() or "VPTQ_GEMV_CHUNKED_MAX_M" in os.environ or "VPTQ_PREFILL_CHUNK_MB" in os.environ:
        pytest.skip("tensor-core decode kernels off, or the chunking thresholds moved by the environment")
    big_gather = OpAttributes.from_spec(synthetic.make_spec(in_features=16384, out_features=8192, v=8,
                                                            k=65536)).as_dict()
    assert mod.gemm_cuda_kernel_name(big_gather, "float16", 16) == _gather_name("float16", 0, rows=16)
    assert mod.gemm_cuda_kernel_name(big_gather, "float16", 17).startswith("vptq_dequant_tiles<float16>+")
    assert mod.gemm_cuda_workspace_bytes(big_gather, "float16", 16) == 0  # X read in place
    big_wide = OpAttributes.from_spec(synthetic.make_spec(in_features=16384, out_features=8192, v=16, k=65536,
                                                          k_res=65536)).as_dict()
    assert mod.gemm_cuda_kernel_name(big_wide, "bfloat16", 32) == _gather_name("bfloat16", 16, v=16, rows=16)
    assert mod.gemm_cuda_kernel_name(big_wide, "bfloat16", 33).startswith("vptq_dequant_tiles<bfloat16>+")
    big_mma = OpAttributes.from_spec(synthetic.make_spec(in_features=16384, out_features=8192, v=8, k=256,
                                                         k_res=256)).as_dict()
    assert mod.gemm_cuda_kernel_name(big_mma, "bfloat16", 64) == _mma16_name("bfloat16")
    assert mod.gemm_cuda_kernel_name(big_mma, "bfloat16", 65).startswith("vptq_dequant_tiles<bfloat16>+")
    assert mod.gemm_cuda_kernel_name(big_mma, "float32", 9).startswith("vptq_dequant_tiles<float32>+")


def _run_child_tests(select, **env_vars):
    """Run this file's tests matching `select` in a fresh interpreter with `env_vars` set (the
    dispatch knobs are read once per process); all must pass, none may skip."""
    env = dict(os.environ, **env_vars)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__,
                           "-k", select], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize("pairs", [1, 2])
def test_mma_kernel_both_pair_counts(pairs):
    """Both compiled variants of the tensor-core kernel (P = 1 and 2 index-row pairs per warp
    step) on every mma configuration, M in {1, 3, 8}, fp16 and bf16: VPTQ_GEMV_MMA_PAIRS forces P
    (read once per process, so each P runs in a fresh interpreter)."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and mma", VPTQ_GEMV_MMA_PAIRS=str(pairs), VPTQ_CUDA_TEST_FORCED_PAIRS=str(pairs))


def test_decode_slices_forced():
    """Decode slices on every tensor-core configuration (small layers, whose crossover would pick
    prefill): VPTQ_GEMV_CHUNKED_MAX_M=64 in a fresh interpreter, M = 18, 34, 50 added (16-row
    slices and a 2-row last slice, which the 12 / 13-bit layouts with a residual run on the
    generic kernel with fp32 activations prepared in the workspace, where the 16-row slices need
    none: gemm_cuda_workspace_bytes must cover both, or gemm_cuda reports a short workspace)."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and mma", VPTQ_GEMV_CHUNKED_MAX_M="64", VPTQ_CUDA_TEST_SLICES="1")


def test_prefill_chunk_rows_rounded():
    """Prefill over dequantization chunks whose row count is rounded down to a multiple of 128
    (VPTQ_PREFILL_CHUNK_MB=1 in a fresh interpreter: 3 chunks of 512 rows for fp16 / bf16, 6 of
    256 for fp32, on 1500 x 1000 v6 and v8 layers) against the fp64 reference."""
    _kernels()
    _run_child_tests("matches_fp64 and chunks-small", VPTQ_PREFILL_CHUNK_MB="1")


def test_mma_gather_kernel_gathering_main():
    """The gathering variant of the 12 / 13-bit layouts with G = 1, which dispatch gives to the
    staged-main variant (and, for v8-k4096-256, the staged-codebook kernel): VPTQ_GEMV_MMA_STAGE_MAIN=0
    and VPTQ_GEMV_MMA_WIDE=0 in a fresh interpreter; the child asserts that no staged-main kernel ran."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and (mma or fast) and (k4096 or k8192)", VPTQ_GEMV_MMA_STAGE_MAIN="0",
                     VPTQ_GEMV_MMA_WIDE="0")


def test_mma_gather_staged_main_with_residual():
    """The gather kernel's staged-main variant for v8-k4096 and v8-k4096-256, which dispatch gives
    to the staged-codebook kernel: VPTQ_GEMV_MMA_WIDE=0 in a fresh interpreter."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and mma and k4096", VPTQ_GEMV_MMA_WIDE="0")


def test_fast_kernel_12bit_codes_at_one_row():
    """The fast kernel's 12-bit layouts at M = 1, which dispatch gives to the staged-codebook
    kernel on layers of <= 512 index rows (all of this file's "-fast" v8-k4096 configurations):
    VPTQ_GEMV_MMA_WIDE_MIN_M=2 in a fresh interpreter; the child asserts the fast kernel ran."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and fast and k4096", VPTQ_GEMV_MMA_WIDE_MIN_M="2", VPTQ_CUDA_TEST_FAST_M1="1")


@pytest.mark.parametrize("warps", [8, 16])
def test_mma_12bit_kernel_forced_warps(warps):
    """The staged-codebook kernel for 12-bit main codes with 8 or 16 warps per block at every M
    (dispatch uses 16 for the two-n-tile variant with the residual only): VPTQ_GEMV_MMA_WIDE_WARPS
    and VPTQ_GEMV_MMA_WIDE_MIN_M=1 in a fresh interpreter, every v8-k4096 / v8-k4096-256
    configuration; the child asserts which variant ran."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and k4096", VPTQ_GEMV_MMA_WIDE_WARPS=str(warps), VPTQ_GEMV_MMA_WIDE_MIN_M="1",
                     VPTQ_CUDA_TEST_WIDE_WARPS=str(warps))


def test_mma_gather_kernel_at_one_row():
    """The gather kernel at M = 1 too (dispatch gives M = 1 to the fast kernel):
    VPTQ_GEMV_MMA_GATHER_MIN_M=1 (read once per process, so in a fresh interpreter) on every
    gather-kernel mma configuration (VPTQ_GEMV_MMA_WIDE=0: v8-k4096-256 too; v6 and v12 have no
    gather kernel); the child asserts the gather kernel ran at M = 1."""
    _kernels()
    if not _mma_expected():
        pytest.skip("tensor-core decode kernel off (device below sm_80 or VPTQ_GEMV_MMA=0)")
    _run_child_tests("matches_fp64 and mma and (k65536 or k4096 or k8192) and not v6 and not v12", VPTQ_GEMV_MMA_GATHER_MIN_M="1",
                     VPTQ_GEMV_MMA_WIDE="0", VPTQ_CUDA_TEST_GATHER_M1="1")


@pytest.mark.parametrize("m", [1, 2, 5, 8, 12])
@pytest.mark.parametrize("v,k,k_res", [(8, 256, 256), (8, 65536, 256), (8, 65536, 0), (16, 65536, 65536),
                                       (8, 4096, 256), (8, 4096, 0), (6, 4096, 0),
                                       (12, 4096, 4096)])
def test_mma_kernel_unaligned_activations(m, v, k, k_res):
    """X at an address that is not 16-byte aligned: element loads instead of vector loads (both
    tensor-core kernels)."""
    mod = _kernels()
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    spec = synthetic.make_spec(in_features=512, out_features=88, v=v, k=k, k_res=k_res)
    attrs = OpAttributes.from_spec(spec).as_dict()
    layer = synthetic.random_layer(spec, torch.float16, rng)
    weights = device_weights(layer, torch.float16)
    x = torch.from_numpy(rng.normal(0, 1, (m, 512)).astype(np.float32)).half()
    buf = torch.zeros(m * 512 + 1, dtype=torch.float16, device="cuda")
    buf[1:] = x.reshape(-1).cuda()
    xd = buf[1:].view(m, 512)
    assert xd.data_ptr() % 16 != 0
    ref = x.double() @ dequantize(layer, torch.float64).T
    what = f"unaligned X M={m} kernel={mod.gemm_cuda_kernel_name(attrs, 'float16', m)}"
    _check(_run(mod, attrs, torch.float16, xd, weights, True), ref, torch.float16, what)


def test_errors_are_reported_not_silent():
    mod = _kernels()
    spec = synthetic.make_spec(in_features=64, out_features=48, v=8, k=256, perm=True)
    attrs = OpAttributes.from_spec(spec).as_dict()
    layer = synthetic.random_layer(spec, torch.float16, 0)
    weights = device_weights(layer, torch.float16)
    x = torch.zeros(4, 64, dtype=torch.float16, device="cuda")
    y = torch.empty(4, 48, dtype=torch.float16, device="cuda")
    need = mod.gemm_cuda_workspace_bytes(attrs, "float16", 4)
    assert need > 0  # perm: activations are permuted into the workspace
    with pytest.raises(RuntimeError, match="workspace"):
        mod.gemm_cuda_ptr(attrs, "float16", x.data_ptr(), y.data_ptr(), 4,
                          {k: v.data_ptr() for k, v in weights.items()}, 0, 0,
                          torch.cuda.current_stream().cuda_stream)
    with pytest.raises(RuntimeError, match="perm"):
        ptrs = {k: v.data_ptr() for k, v in weights.items()}
        ptrs["perm"] = 0
        ws = torch.empty(need, dtype=torch.uint8, device="cuda")
        mod.gemm_cuda_ptr(attrs, "float16", x.data_ptr(), y.data_ptr(), 4, ptrs, ws.data_ptr(), need,
                          torch.cuda.current_stream().cuda_stream)
    with pytest.raises(ValueError, match="must be a CUDA"):
        mod.gemm_cuda(x.cpu(), attrs, weights)
