"""`vptq-export inspect`: validate a VPTQ checkpoint and list its layers, mirrors
`vptq_export.inspection.inspect_checkpoint`."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="validate a VPTQ checkpoint and list its layers",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a VPTQ checkpoint directory (config.json with quantization_config + "
                    "safetensors), check every VPTQ layer's config and tensors (names, shapes, "
                    "dtypes, the format's invariants), and print one line per layer: shape, "
                    "vector length v, codebook sizes k / k_res, groups, outliers, perm/norm/bias "
                    "and index bits per weight. Exit status 0 when valid, 2 with a one-line "
                    "error naming the file, layer and tensor otherwise.",
        epilog="examples:\n"
               "  vptq-export inspect out/tiny-llama-vptq\n"
               "  vptq-export inspect out/tiny-llama-vptq --check-indices   # also decode indices\n"
               "  vptq-export inspect out/tiny-llama-vptq --json | jq .bits_per_weight\n")
    p.add_argument("checkpoint", metavar="CKPT_DIR", help="VPTQ checkpoint directory")
    p.add_argument("--check-indices", action="store_true",
                   help="also decode every index (each < its codebook size, padding bits zero) "
                        "and check that perm is a permutation (reads all index data)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..inspection import inspect_checkpoint

    info = inspect_checkpoint(args.checkpoint, check_indices=args.check_indices)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['model_type']}, {info['dtype']}, {info['num_layers']} VPTQ "
          f"layers, {info['non_vptq_tensors']} other tensors, {info['size_bytes']} bytes in "
          f"{', '.join(info['files'])}")
    width = max(len(l["name"]) for l in info["layers"])
    for l in info["layers"]:
        parts = [f"{l['out_features']}x{l['in_features']}", f"v{l['vector_len']}",
                 f"k{l['num_centroids']}"]
        if l["num_res_centroids"]:
            parts.append(f"k_res{l['num_res_centroids']}")
        if l["group_num"] > 1:
            parts.append(f"G{l['group_num']}x{l['group_size']}")
        if l["outlier_size"]:
            parts.append(f"outliers {l['outlier_size']} (v{l['outlier_vector_len']} "
                         f"k{l['outlier_num_centroids']})")
        flags = [f for f, on in (("perm", l["enable_perm"]), ("norm", l["enable_norm"]),
                                 ("bias", l["bias"])) if on]
        if not l["is_indice_packed"]:
            flags.append("unpacked-float16" if l["indices_as_float"] else "unpacked")
        if flags:
            parts.append("+".join(flags))
        parts.append(f"{l['bits_per_weight']:.3f} bpw")
        print(f"  {l['name']:<{width}}  {' '.join(parts)}")
    print(f"index bits/weight {info['bits_per_weight']:.3f}, codebooks "
          f"+{info['codebook_bits_per_weight']:.3f}; "
          f"{'indices checked' if info['indices_checked'] else 'indices not decoded (--check-indices)'}"
          f"; valid")
    return 0
