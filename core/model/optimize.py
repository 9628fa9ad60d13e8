"""Turning a trained UNet into a fast inference network (done once per model and device).

* BatchNorm is folded into the preceding conv (eval statistics are constants).
* On the CPU each ``conv -> ReLU`` runs as one oneDNN call with the ReLU fused
  (``mkldnn._convolution_pointwise``, the op Inductor's freezing pass emits), in channels_last.
  The op is probed once and replaced by plain ``conv2d + relu_`` where it is missing or wrong.
* The 1x1 classifier never materialises a full tile of logits: ``argmax_into`` applies it as a
  matrix product over chunks of pixels and writes class ids straight into the uint8 output.
  (For a 256-class model that removes a 1 GB tensor per 1024x1024 tile and most of its cost.)

The result computes the same function as the eval-mode model up to float rounding.

``reuse_freed_memory`` is the other half of CPU speed: glibc returns every freed block over
128 KB to the kernel, so each layer's fresh 256 MB activation (64 channels of a 1024x1024
tile) is page-faulted in again, 65,536 faults at a time; that costs a third of a UNetLarge
forward.  Inside the context large blocks stay in the heap for reuse; the heap is trimmed
back to the kernel once no call has used it for ``IDLE_RELEASE_S`` seconds, so back-to-back
calls of a long-lived process (the app) find it warm.
"""

from __future__ import annotations

import contextlib
import copy
import threading

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from core.memory_pages import glibc
from core.model.networks import _UNetBase

_POINTWISE_OK: bool | None = None
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_GLIBC_DEFAULT_MMAP, _GLIBC_DEFAULT_TRIM = 128 * 1024, 128 * 1024
_heap_lock = threading.Lock()
_heap_users = 0
_heap_warm = False
_release_timer: threading.Timer | None = None
IDLE_RELEASE_S = 30.0  # a warm heap outlives its last user by this long (see reuse_freed_memory)


_LIBC = glibc()


@contextlib.contextmanager
def reuse_freed_memory(idle_release_s: float | None = None):
    """Keep freed large blocks in the heap while inside (glibc only; elsewhere a no-op).

    When the last user leaves, the heap is trimmed back to the kernel only after
    ``idle_release_s`` seconds (default ``IDLE_RELEASE_S``) with no new user: a long-lived
    process (the app, a streaming run's successive calls) keeps a warm heap across calls, and
    still gives the memory back once it is idle.
    """
    global _heap_users, _release_timer, _heap_warm
    if _LIBC is None:
        yield
        return
    with _heap_lock:
        _heap_users += 1
        if _release_timer is not None:
            _release_timer.cancel()
            _release_timer = None
        if not _heap_warm:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, 1 << 31)
            _heap_warm = True
    try:
        yield
    finally:
        with _heap_lock:
            _heap_users -= 1
            if _heap_users == 0:
                delay = IDLE_RELEASE_S if idle_release_s is None else idle_release_s
                if delay <= 0:
                    _release_locked()
                else:
                    _release_timer = threading.Timer(delay, release_heap)
                    _release_timer.daemon = True
                    _release_timer.start()


def release_heap() -> None:
    """Give the warm heap back to the kernel now, unless a ``reuse_freed_memory`` block is running."""
    with _heap_lock:
        if _heap_users == 0:
            _release_locked()


def heap_is_warm() -> bool:
    return _heap_warm


def _release_locked() -> None:
    global _heap_warm, _release_timer
    if _release_timer is not None:
        _release_timer.cancel()
        _release_timer = None
    if _heap_warm:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_MMAP)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_TRIM)
        _LIBC.malloc_trim(0)
        _heap_warm = False


CHUNK_ELEMENTS = 1 << 22  # logits per argmax chunk on a GPU (16 MB of float32)
CPU_CHUNK_ELEMENTS = 1 << 19  # on the CPU: 2 MB, so a chunk's logits stay in cache


def _mkldnn_pointwise_works() -> bool:
    """Probe the fused CPU op once: present, and equal to conv + ReLU on a small case."""
    global _POINTWISE_OK
    if _POINTWISE_OK is None:
        try:
            op = torch.ops.mkldnn._convolution_pointwise
            conv = nn.Conv2d(4, 8, 3, padding=1)
            x = torch.randn(1, 4, 16, 16).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                got = op(x, conv.weight, conv.bias, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
                _POINTWISE_OK = bool(torch.allclose(got, F.relu(conv(x)), atol=1e-5))
        except Exception:  # missing op, unsupported build: the plain path is always right
            _POINTWISE_OK = False
    return _POINTWISE_OK


class ConvReLU(nn.Module):
    """A 3x3 conv with BatchNorm already folded in, followed by ReLU, as one call where possible."""

    def __init__(self, conv: nn.Conv2d, fused_cpu: bool):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.padding = list(conv.padding)
        self.fused_cpu = fused_cpu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused_cpu and x.device.type == "cpu" and x.dtype == torch.float32:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, self.padding, [1, 1], [1, 1], 1, "relu", [], ""
            )
        return F.relu_(F.conv2d(x, self.weight, self.bias, padding=self.padding))


def _fold_block(block: nn.Sequential, fused_cpu: bool) -> nn.Sequential:
    layers = list(block)
    out: list[nn.Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if (
            isinstance(layer, nn.Conv2d)
            and i + 2 < len(layers)
            and isinstance(layers[i + 1], nn.BatchNorm2d)
            and isinstance(layers[i + 2], nn.ReLU)
        ):
            out.append(ConvReLU(fuse_conv_bn_eval(layer, layers[i + 1]), fused_cpu))
            i += 3
        else:
            out.append(layer)
            i += 1
    return nn.Sequential(*out)


def prepare_for_inference(model: _UNetBase, device: torch.device) -> _UNetBase:
    """A folded, fused, channels_last copy on ``device``; the original is left untouched."""
    fused_cpu = device.type == "cpu" and _mkldnn_pointwise_works()
    fast = copy.deepcopy(model).cpu().eval()
    for name, child in list(fast.named_children()):
        if isinstance(child, nn.Sequential):
            setattr(fast, name, _fold_block(child, fused_cpu))
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast.to(device=device, memory_format=torch.channels_last)


def argmax_into(features: torch.Tensor, head: nn.Conv2d, out: np.ndarray) -> None:
    """Class ids of ``head(features)`` for one image (1xCxhxw) written into ``out`` (h x w uint8).

    Works on chunks of rows as (pixels x C) @ (C x classes), so the logits held at any time
    stay small whatever the tile size or class count.  On the CPU each chunk's logits go into
    one reused, cache-sized buffer (a fresh one per chunk would be page-faulted in each time),
    and ``max`` (values and indices) is used because it is faster than ``argmax`` there.
    """
    _, c, h, w = features.shape
    k = head.out_channels
    weight = head.weight.detach().reshape(k, c).t().to(features.dtype)
    bias = head.bias.detach().to(features.dtype)
    pixels = features[0].permute(1, 2, 0)  # h x w x C; a free view for channels_last input
    on_cpu = features.device.type == "cpu"
    budget = CPU_CHUNK_ELEMENTS if on_cpu else CHUNK_ELEMENTS
    rows = max(1, budget // max(1, w * k))
    if on_cpu:
        logits = torch.empty(rows * w, k, dtype=features.dtype)
        values = torch.empty(rows * w, dtype=features.dtype)
        ids = torch.empty(rows * w, dtype=torch.long)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        n = (r1 - r0) * w
        flat = pixels[r0:r1].reshape(n, c)
        if on_cpu:
            torch.addmm(bias, flat, weight, out=logits[:n])
            torch.max(logits[:n], 1, out=(values[:n], ids[:n]))
            out[r0:r1] = ids[:n].to(torch.uint8).reshape(r1 - r0, w).numpy()
        else:
            best = torch.addmm(bias, flat, weight).argmax(dim=1)
            out[r0:r1] = best.to(torch.uint8).reshape(r1 - r0, w).cpu().numpy()


def add_probabilities(features: torch.Tensor, head: nn.Conv2d, total: torch.Tensor | None) -> torch.Tensor:
    """``total`` (classes x h x w, float32) plus softmax(head(features)), computed in row chunks.

    Class-major, so the softmax runs across rows of pixels: with few classes that is about
    20x faster on the CPU than a softmax along a short last axis, and it is the layout the
    edge refinement (core.model.refine) and ``max(0)`` want.
    """
    _, c, h, w = features.shape
    k = head.out_channels
    weight = head.weight.detach().reshape(k, c).to(features.dtype)
    bias = head.bias.detach().to(features.dtype)[:, None]
    if total is None:
        total = torch.zeros(k, h, w, dtype=torch.float32, device=features.device)
    pixels = features[0].permute(1, 2, 0)
    rows = max(1, CHUNK_ELEMENTS // max(1, w * k))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        logits = torch.addmm(bias, weight, pixels[r0:r1].reshape(-1, c).t()).float()
        total[:, r0:r1] += logits.softmax(dim=0).reshape(k, r1 - r0, w)
    return total
