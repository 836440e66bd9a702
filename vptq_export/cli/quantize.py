"""`vptq-export quantize`: HF model dir -> VPTQ checkpoint dir, mirrors
`vptq_export.quantize.quantize_model`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ..quantize.options import DEFAULT_LAYERS, QuantizeOptions

    d = QuantizeOptions()
    p = subparsers.add_parser(
        "quantize", help="quantize a small Hugging Face model into a VPTQ checkpoint",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Quantize every decoder-layer projection (q/k/v/o, gate/up/down) of a "
                    "Hugging Face causal LM with VPTQ and write a checkpoint in VPTQ-community "
                    "layout (config.json with quantization_config, safetensors with packed int32 "
                    "indices and fp16 codebooks). Codebooks come from Hessian-weighted k-means "
                    "(input statistics from running the model on a built-in text), followed by a "
                    "GPTQ-style column pass. Meant for small models (tests, demos): it runs on the "
                    "CPU, one layer at a time.\n\n"
                    "bits per weight = (log2 centroids + log2 res-centroids) / vector-len, e.g. "
                    "v8 k65536 = 2 bits, v4 k256 + k_res 16 = 3 bits.",
        epilog="examples:\n"
               "  vptq-export quantize out/tiny-llama -o out/tiny-llama-vptq\n"
               "  vptq-export quantize out/tiny-llama -o out/q --vector-len 4 --centroids 256 "
               "--res-centroids 16\n"
               "  vptq-export quantize out/tiny-qwen2 -o out/q --group-num 2 "
               "--outlier-fraction 0.05 --perm --norm\n"
               "  vptq-export quantize out/tiny-llama -o out/q --layers 'mlp\\.(gate|up)_proj$'\n"
               "  vptq-export inspect out/q\n")
    p.add_argument("model", metavar="HF_MODEL_DIR", help="full-precision model directory")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="checkpoint directory")
    p.add_argument("--vector-len", type=int, default=d.vector_len, metavar="V",
                   help=f"output rows per vector (default {d.vector_len})")
    p.add_argument("--centroids", type=int, default=d.centroids, metavar="K",
                   help=f"main codebook size, a power of two (default {d.centroids})")
    p.add_argument("--res-centroids", type=int, default=d.res_centroids, metavar="K",
                   help="residual codebook size, a power of two; 0 = none (default 0)")
    p.add_argument("--group-num", type=int, default=d.group_num, metavar="G",
                   help="codebooks along in_features (default 1)")
    p.add_argument("--outlier-fraction", type=float, default=d.outlier_fraction, metavar="F",
                   help="fraction of input columns (the first stored ones: the highest Hessian "
                        "diagonals with --perm) quantized with their own codebook (default 0)")
    p.add_argument("--outlier-vector-len", type=int, default=d.outlier_vector_len, metavar="V",
                   help=f"outlier vector length (default {d.outlier_vector_len})")
    p.add_argument("--outlier-centroids", type=int, default=d.outlier_centroids, metavar="K",
                   help=f"outlier codebook size (default {d.outlier_centroids})")
    p.add_argument("--perm", action="store_true",
                   help="permute input columns by descending Hessian diagonal (stores `perm`)")
    p.add_argument("--norm", action="store_true",
                   help="per-input-column min/max normalisation (stores weight_scale/weight_bias)")
    p.add_argument("--unpacked", action="store_true",
                   help="store int16 indices (and separate res_indices) instead of packed int32")
    p.add_argument("--seed", type=int, default=d.seed, help="k-means seed (default 0)")
    p.add_argument("--layers", default=DEFAULT_LAYERS, metavar="REGEX",
                   help="regex (searched in module names) of the nn.Linear layers to quantize "
                        "(default: every q/k/v/o/gate/up/down projection; lm_head and embeddings "
                        "stay in full precision)")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..inspection import inspect_checkpoint
    from ..quantize import QuantizeOptions, quantize_model

    options = QuantizeOptions(
        vector_len=args.vector_len, centroids=args.centroids, res_centroids=args.res_centroids,
        group_num=args.group_num, outlier_fraction=args.outlier_fraction,
        outlier_vector_len=args.outlier_vector_len, outlier_centroids=args.outlier_centroids,
        perm=args.perm, norm=args.norm, packed=not args.unpacked, seed=args.seed,
        layers=args.layers)
    out = quantize_model(args.model, args.output, options, overwrite=args.overwrite,
                         progress=not args.quiet)
    info = inspect_checkpoint(out)
    print(f"wrote {out}: {info['num_layers']} VPTQ layers, "
          f"{info['bits_per_weight']:.3f} index bits/weight "
          f"(+{info['codebook_bits_per_weight']:.3f} codebook), {info['size_bytes']} bytes")
    return 0
