"""Parity tolerances per export dtype (the derivation is in docs/runtime.md, section Tolerances).

The backend is compared with the fp32 PyTorch reference by default: the checkpoint's codebooks
are fp16, so fp32 holds them exactly and the fp32 reference is the checkpoint's exact math; any
difference is then the backend's own error (summation order in fp32, plus activation rounding
in fp16/bf16 exports).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    max_rel: float      # per step: max|b - r| / max|r|
    kl_max: float       # per step, per position: KL(r ‖ b) in nats
    kl_mean: float      # over every compared position

    def as_dict(self) -> dict:
        return asdict(self)


# fp32: only accumulation order differs (K-term dot products: relative error ~ sqrt(K)·2^-24,
#       ~1e-6 through a few layers); 1e-4 leaves two orders of margin, KL ~ ½·Var(δ) ≲ 1e-8.
# fp16: every activation stored in fp16 is rounded with relative error ≤ u = 2^-11 ≈ 4.9e-4; a
#       decoder layer stores ~10 of them, so the hidden state drifts by ~u·sqrt(10·L) (≈ 5e-3 for
#       L = 2 ... 1.2e-2 for L = 64), and the logits themselves are rounded (u). Hence max_rel
#       2e-2. With logit errors δ of that size on logits of scale ~10, KL ≈ ½·Var_p(δ) is ~1e-4
#       typical; 5e-3 per position / 5e-4 mean.
# bf16: u = 2^-8 (8× fp16): max_rel 8× fp16 rounded up (0.15); KL grows with δ² (64×).
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float32: Tolerance(max_rel=1e-4, kl_max=1e-6, kl_mean=1e-7),
    torch.float16: Tolerance(max_rel=2e-2, kl_max=5e-3, kl_mean=5e-4),
    torch.bfloat16: Tolerance(max_rel=1.5e-1, kl_max=3e-1, kl_mean=3e-2),
}


def tolerance_for(dtype: torch.dtype) -> Tolerance:
    try:
        return TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"no parity tolerance for dtype {dtype}") from None
