"""Instances of a class mask alone: each 8-connected component of one class is one object.

This is what an object was before models separated touching objects, and what the instance
outputs hold until a model gives its own instance labels.  Ids follow the raster order of each
object's first pixel (top row first, then left), as ``skimage.measure.label`` numbers them, so
the same mask always gives the same ids; ``chunked_component_labels`` numbers a chunked mask's
objects exactly as the whole mask in memory would be numbered.

API::

    component_labels(labels) -> uint32 array              # in memory
    chunked_component_labels(labels, work, block=2048, make_out=None) -> int  # any 2-D array-like
        # into a writable uint32 one (a zarr array), or, with make_out(count) -> array, into the array
        # it makes once the number of objects is known (so a file's dtype can follow it); returns
        # that number.  Two passes over the blocks; memory is one block, the last row and column of
        # the blocks read, and about 24 bytes per provisional piece.
"""

from __future__ import annotations

import numpy as np

from core.io.label_images import MAX_ID


def component_labels(labels: np.ndarray) -> np.ndarray:
    """Each 8-connected component of one non-zero class gets its own id, 1..n in raster order."""
    from skimage.measure import label

    labels = np.asarray(labels)
    out = label(labels, background=0, connectivity=2)
    top = int(out.max()) if out.size else 0
    if top > MAX_ID:
        raise ValueError(f"the mask has {top} objects, more than 2^32 - 1, which a 32-bit label image cannot hold")
    return out.astype(np.uint32, copy=False)


def chunked_component_labels(labels, work, block: int = 2048, make_out=None) -> int:
    """``component_labels`` of a chunked mask written block by block into ``work`` (same shape,
    uint32), or into ``make_out(count)``; objects that cross block borders get one id.  Returns
    the number of objects."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from skimage.measure import label

    h, w = (int(v) for v in labels.shape[:2])
    first_keys: list[np.ndarray] = []  # per provisional piece: raster index of its first pixel
    pairs: list[np.ndarray] = []  # provisional pieces joined across a block border
    offset = 0
    above: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # block column -> (classes, ids) of its last row
    for r0 in range(0, h, block):
        left: tuple[np.ndarray, np.ndarray] | None = None  # last column of the block to the left
        row_below: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for bj, c0 in enumerate(range(0, w, block)):
            cls = np.asarray(labels[r0:r0 + block, c0:c0 + block])
            local = label(cls, background=0, connectivity=2).astype(np.int64)
            n = int(local.max()) if local.size else 0
            ids = np.where(local > 0, local + offset, 0)
            if n:
                _, first = np.unique(local.ravel(), return_index=True)
                first = first[1:] if local.ravel()[first[0]] == 0 else first
                fy, fx = np.divmod(first, local.shape[1])
                first_keys.append((fy + r0).astype(np.int64) * w + fx + c0)
            if left is not None:
                pairs.append(_joins(left, (cls[:, 0], ids[:, 0])))
            if r0 and bj in above:  # the band above: its last row over this block's first row (and diagonals)
                prev_cls, prev_ids = _row_span(above, bj, c0, c0 + cls.shape[1], block, w)
                pairs.append(_joins((prev_cls, prev_ids), (cls[0], ids[0]), offset=c0 - max(0, c0 - 1)))
            left = (cls[:, -1], ids[:, -1])
            row_below[bj] = (cls[-1].copy(), ids[-1].copy())
            work[r0:r0 + cls.shape[0], c0:c0 + cls.shape[1]] = ids.astype(np.uint32)
            offset += n
        above = row_below
    if not offset:
        if make_out is not None:
            make_out(0)  # all background: the made array keeps its fill value 0
        return 0
    out = work
    edges = np.concatenate(pairs, axis=1) if pairs else np.zeros((2, 0), np.int64)
    graph = coo_matrix((np.ones(edges.shape[1], np.int8), (edges[0] - 1, edges[1] - 1)), shape=(offset, offset))
    count, component = connected_components(graph, directed=False)
    if count > MAX_ID:
        raise ValueError(f"the mask has {count} objects, more than 2^32 - 1, which a 32-bit label image cannot hold")
    first = np.full(count, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, component, np.concatenate(first_keys))
    rank = np.empty(count, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, count + 1)
    if make_out is not None:
        out = make_out(count)
    lut = np.concatenate([[0], rank[component]]).astype(np.dtype(out.dtype))
    for r0 in range(0, h, block):
        for c0 in range(0, w, block):
            part = np.asarray(work[r0:r0 + block, c0:c0 + block])
            out[r0:r0 + part.shape[0], c0:c0 + part.shape[1]] = lut[part]
    return int(count)


def _row_span(above: dict, bj: int, c0: int, c1: int, block: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous band's last row over columns c0-1 .. c1 (one more each side for diagonals)."""
    lo, hi = max(0, c0 - 1), min(w, c1 + 1)
    cls = np.zeros(hi - lo, above[bj][0].dtype)
    ids = np.zeros(hi - lo, np.int64)
    for j in (bj - 1, bj, bj + 1):
        if j in above:
            a0 = j * block
            a1 = a0 + len(above[j][0])
            s0, s1 = max(lo, a0), min(hi, a1)
            if s0 < s1:
                cls[s0 - lo:s1 - lo] = above[j][0][s0 - a0:s1 - a0]
                ids[s0 - lo:s1 - lo] = above[j][1][s0 - a0:s1 - a0]
    return cls, ids


def _joins(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], offset: int = 0) -> np.ndarray:
    """Pairs of provisional ids 8-adjacent across a border: ``a`` and ``b`` are the two lines of
    pixels facing each other (classes, ids); ``a[i]`` touches ``b[i-1..i+1]`` (``a`` starts
    ``offset`` pixels before ``b`` for a band's row, which also covers the diagonal corners)."""
    ca, ia = a
    cb, ib = b
    out = []
    for shift in (-1, 0, 1):
        # b[j] against a[j + offset + shift]
        j = np.arange(len(cb))
        k = j + offset + shift
        ok = (k >= 0) & (k < len(ca))
        j, k = j[ok], k[ok]
        same = (cb[j] == ca[k]) & (cb[j] != 0) & (ib[j] > 0) & (ia[k] > 0)
        out.append(np.stack([ia[k][same], ib[j][same]]))
    return np.concatenate(out, axis=1).astype(np.int64)
