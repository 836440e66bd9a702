"""Weighted k-means in torch (Lloyd iterations), deterministic for a seed.

VPTQ initialises each codebook with Hessian-weighted k-means (cuML `KMeans(init='random')` with
`sample_weight` = the vector's Hessian diagonal; vptq-reference.md section 3.2 step 3). This is the
same algorithm on the CPU: random distinct samples as initial centroids, then assignment to the
nearest centroid (Euclidean) and weighted-mean updates until the centroids stop moving.
"""

from __future__ import annotations

import torch


def nearest(x: torch.Tensor, centroids: torch.Tensor, chunk: int = 65536,
            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Index of the nearest centroid (squared Euclidean, ties to the lowest index) of each row of
    x [N, d], for centroids [k, d]; int64 [N]. Distances in `dtype` (fp64: exact enough that the
    quantizer's assignments are the true nearest; k-means iterations use fp32 for speed)."""
    c = centroids.to(dtype)
    c_sq = (c * c).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.int64)
    for start in range(0, x.shape[0], chunk):
        xs = x[start:start + chunk].to(dtype)
        dist = c_sq[None, :] - 2.0 * (xs @ c.T)      # + |x|^2, the same for every centroid
        out[start:start + chunk] = dist.argmin(1)
    return out


def weighted_kmeans(x: torch.Tensor, k: int, weights: torch.Tensor | None = None, *,
                    iters: int = 100, tol: float = 1e-5, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the rows of x [N, d] into k centroids. Returns (centroids [k, d] fp32,
    assignment [N] int64). `weights` [N] >= 0 weight each row (None: all 1).

    With N <= k every point becomes a centroid and the rest of the codebook repeats points, so the
    codebook always has exactly k rows. Empty clusters keep their previous centroid."""
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"k-means needs a non-empty [N, d] matrix, got {tuple(x.shape)}")
    n, d = x.shape
    xd = x.double()
    w = torch.ones(n, dtype=torch.float64) if weights is None else weights.double().clamp_min(0)
    if float(w.sum()) <= 0:
        w = torch.ones(n, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    if n <= k:
        fill = torch.randint(0, n, (k - n,), generator=gen)
        centroids = torch.cat([xd, xd[fill]])
        return centroids.float(), nearest(x, centroids)
    centroids = xd[torch.randperm(n, generator=gen)[:k]].clone()
    scale = float((xd * xd).sum(1).mean().clamp_min(1e-30))
    x32 = x.float()
    assign = nearest(x32, centroids, dtype=torch.float32)
    for _ in range(iters):
        sums = torch.zeros(k, d, dtype=torch.float64).index_add_(0, assign, xd * w[:, None])
        mass = torch.zeros(k, dtype=torch.float64).index_add_(0, assign, w)
        filled = mass > 0
        new = centroids.clone()
        new[filled] = sums[filled] / mass[filled, None]
        shift = float(((new - centroids) ** 2).sum(1).max())
        centroids = new
        assign = nearest(x32, centroids, dtype=torch.float32)
        if shift <= tol * scale:
            break
    return centroids.float(), assign
