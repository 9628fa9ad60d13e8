"""Edge refinement: the colour-guided filter of He, Sun & Tang (TPAMI 2013) on class probabilities.

Why: a UNet's errors gather on object edges (for the built-in small model 85% of its errors
are shape/background confusions at edges), where its coarse features blur the boundary.  The
guided filter replaces each probability map by one that is, in every (2r+1)^2 window, a linear
function of the image's colour, so probabilities change where the colour changes and stay flat
where it does not: a boundary snaps to the image's own edge.  The network still decides *what*
each region is; the filter only decides *where* its edge runs.

The filter is linear in the probabilities, so classes are filtered in chunks with the guide's
statistics computed once; each output pixel depends on the probabilities within
``Refinement.reach`` pixels (about twice the radius), which the tiler adds to its halo so tiled
and whole-image results agree.  Whether a model gets refinement, and with which radius, is fitted on annotated images by
``core.segment.calibration`` and stored in the checkpoint's ``inference`` metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

CLASS_CHUNK = 8  # classes filtered together: bounds memory for models with many classes


@dataclass(frozen=True)
class Refinement:
    radius: int  # box radius in pixels: how far an edge may move
    eps: float  # regularisation: colour variance below this counts as flat (guide in 0..1 units)

    def __post_init__(self):
        if not (1 <= int(self.radius) <= 64) or not (0 < float(self.eps) <= 1):
            raise ValueError(f"refinement needs 1 <= radius <= 64 and 0 < eps <= 1, got {self.radius}, {self.eps}")

    @property
    def step(self) -> int:
        """Cell size of the fast filter: radius / 4 rounded down to 1, 2, 4 or 8."""
        return max(s for s in (1, 2, 4, 8) if s <= max(1, int(self.radius) // 4))

    @property
    def reach(self) -> int:
        """Pixels of probability map each refined pixel depends on: two boxes, a cell, upsampling."""
        return 2 * (int(self.radius) // self.step) * self.step + 2 * self.step

    def to_json(self) -> dict:
        return {"radius": int(self.radius), "eps": float(self.eps)}

    @classmethod
    def from_json(cls, raw: Any) -> "Refinement | None":
        """The stored setting, or None (off) for anything absent or malformed."""
        if not isinstance(raw, Mapping):
            return None
        try:
            return cls(int(raw["radius"]), float(raw["eps"]))
        except (KeyError, TypeError, ValueError):
            return None

    def __str__(self) -> str:
        return f"guided filter, radius {self.radius} px, eps {self.eps:g}"


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window around each pixel of N x H x W planes, shrunk at the borders."""
    k = 2 * r + 1
    y = F.avg_pool2d(x[None], (k, 1), 1, (r, 0), count_include_pad=False)
    return F.avg_pool2d(y, (1, k), 1, (0, r), count_include_pad=False)[0]


class GuidedFilter:
    """The guide's window statistics, computed once and reused for every chunk of classes.

    This is the fast guided filter (He & Sun, 2015): the linear coefficients are fitted on the
    guide and the probabilities averaged over ``step`` x ``step`` cells (``step`` = radius / 4,
    a power of two dividing the tiler's 8-pixel grid), then upsampled and applied at full
    resolution; it costs about 1/step^2 of the exact filter and edges still follow the
    full-resolution guide.
    """

    def __init__(self, guide: torch.Tensor, refinement: Refinement):
        """``guide``: G x H x W float in 0..1 (G = 3 for colour, 1 for grey)."""
        self.step = step = refinement.step
        self.r = max(1, int(refinement.radius) // step)
        self.guide = guide = guide.float()
        self.size = guide.shape[1:]
        small = _cells(guide, step)
        g, h, w = small.shape
        self.small, self.mean = small, box_mean(small, self.r)
        pairs = [(i, j) for i in range(g) for j in range(i, g)]
        moments = box_mean(torch.stack([small[i] * small[j] for i, j in pairs]), self.r)
        cov = torch.empty(g, g, h, w, device=guide.device)
        for n, (i, j) in enumerate(pairs):
            cov[i, j] = cov[j, i] = moments[n] - self.mean[i] * self.mean[j]
        for i in range(g):
            cov[i, i] += refinement.eps
        self.inverse = _inverse(cov)  # G x G x h x w

    def __call__(self, p: torch.Tensor, region: tuple[slice, slice] | None = None) -> torch.Tensor:
        """Filtered K x H x W maps, or only their ``region`` (linear in ``p``: a pixel's
        probabilities still sum to one)."""
        ys, xs = region or (slice(0, self.size[0]), slice(0, self.size[1]))
        out = torch.empty((p.shape[0], ys.stop - ys.start, xs.stop - xs.start), dtype=torch.float32, device=p.device)
        for c0 in range(0, p.shape[0], CLASS_CHUNK):
            out[c0 : c0 + CLASS_CHUNK] = self._filter(p[c0 : c0 + CLASS_CHUNK].float(), ys, xs)
        return out

    def _filter(self, p: torch.Tensor, ys: slice, xs: slice) -> torch.Tensor:
        g, r, step = self.small.shape[0], self.r, self.step
        p = _cells(p, step)
        k, h, w = p.shape
        mean_p = box_mean(p, r)
        cross = torch.stack([box_mean(self.small[i : i + 1] * p, r) - self.mean[i : i + 1] * mean_p for i in range(g)])
        a = torch.einsum("ijhw,jkhw->ikhw", self.inverse, cross)  # G x K x h x w
        b = mean_p - (a * self.mean[:, None]).sum(0)
        coeffs = box_mean(torch.cat([a.reshape(g * k, h, w), b]), r)
        guide = self.guide[:, ys, xs]
        if step > 1:
            # upsample only the cells around the region: one cell of margin gives the same
            # bilinear weights as upsampling everything
            y0, y1 = max(0, ys.start // step - 1), min(h, (ys.stop - 1) // step + 2)
            x0, x1 = max(0, xs.start // step - 1), min(w, (xs.stop - 1) // step + 2)
            coeffs = F.interpolate(coeffs[None, :, y0:y1, x0:x1], scale_factor=step, mode="bilinear",
                                   align_corners=False)[0]
            ys = slice(ys.start - y0 * step, ys.stop - y0 * step)
            xs = slice(xs.start - x0 * step, xs.stop - x0 * step)
        coeffs = coeffs[:, ys, xs]
        return (coeffs[: g * k].reshape(g, k, *guide.shape[1:]) * guide[:, None]).sum(0) + coeffs[g * k :]


def _cells(x: torch.Tensor, step: int) -> torch.Tensor:
    """Means over step x step cells (edge cells padded by replication to whole cells)."""
    if step == 1:
        return x
    h, w = x.shape[1:]
    pad_h, pad_w = (-h) % step, (-w) % step
    if pad_h or pad_w:
        x = F.pad(x[None], (0, pad_w, 0, pad_h), mode="replicate")[0]
    return F.avg_pool2d(x[None], step)[0]


def _inverse(m: torch.Tensor) -> torch.Tensor:
    """Per-pixel inverse of G x G x H x W symmetric positive-definite matrices (G = 1 or 3)."""
    g = m.shape[0]
    if g == 1:
        return 1.0 / m
    if g != 3:
        return torch.linalg.inv(m.permute(2, 3, 0, 1)).permute(2, 3, 0, 1)
    a, b, c = m[0, 0], m[0, 1], m[0, 2]
    d, e, f = m[1, 1], m[1, 2], m[2, 2]
    adj = torch.stack([
        d * f - e * e, c * e - b * f, b * e - c * d,
        c * e - b * f, a * f - c * c, b * c - a * e,
        b * e - c * d, b * c - a * e, a * d - b * b,
    ]).reshape(3, 3, *m.shape[2:])
    det = a * adj[0, 0] + b * adj[1, 0] + c * adj[2, 0]
    return adj / det


def guide_from_pixels(pixels: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """H x W x C uint8 pixels (any view, even read-only) -> the guide: C x H x W float in 0..1.

    Float pixels are a raw-channel model's input, already scaled to about 0..1, and kept as they are.
    """
    t = torch.from_numpy(np.array(pixels)).to(device).permute(2, 0, 1).float()
    return t if np.asarray(pixels).dtype.kind == "f" else t / 255.0
