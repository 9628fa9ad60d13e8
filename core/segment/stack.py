"""Segmenting a stack plane by plane with the 2-D Segmenter: what "Segment Plane", "Segment Stack" and
``unetseg segment STACK`` call.

    result = segment_stack(seg, source, planes=None, options=StackOptions(), progress=None,
                           should_cancel=None, on_plane=None, out=None, above=0)
    result.labels        # planes + (H, W) uint8 (``out`` when given: a NumPy or zarr array)
    result.done          # the planes finished, in order; result.cancelled
    result.instances     # planes + (H, W) uint32 object ids unique over the stack: linked across Z
                         # (stitch_threshold) or the model's own objects; None when there are neither

The model is 2-D: each plane goes through ``Segmenter.segment`` exactly as a 2-D image, scaled by
statistics measured once over the whole stack (core.model.normalize.source_sample), so every
plane is scaled alike and "Segment Plane" gives the plane "Segment Stack" gives.  ``progress(done,
total)`` is called per plane, ``should_cancel()`` between planes and between tiles; a cancel keeps
every plane already finished (``result.done``; they are in ``labels``/``out`` and were passed to
``on_plane(plane, labels, instances)``) and stops within a tile.

Across Z, two options (both off by default):

* ``smooth_z = r``: each plane's class is the argmax of the class probabilities averaged over the
  planes z-r..z+r of the same time point (fewer at the ends).  A 2-D model decides each plane
  alone, so a voxel near a class boundary flips between neighbouring planes; averaging the
  probabilities (a box filter along Z, the cheapest smoothing that keeps the model's own
  confidence) removes that flicker at the cost of segmenting 2r extra planes for "Segment Plane"
  and keeping 2r + 1 planes of probabilities in memory.  Edge refinement (a 2-D guided filter)
  is not applied to smoothed planes.  Time points are never averaged: they are not neighbours in
  space.
* ``stitch_threshold = IoU``: the objects of each plane are linked into 3-D objects with those of
  the plane below, as Cellpose's stitching does (core.objects.stitch).

**Objects, one seam.**  A plane's objects are the model's own when it separates objects (an
instance output, ``seg.instances`` set: ``segment_plane`` asks ``seg.segment(..., instances=True)``
for ``.labels`` and ``.instances``), else ``instances_of(labels)`` (default: each 8-connected region
of one class, core.objects.stitch.components) when stitching needs them.  ``on_plane(plane, labels,
instances)`` and ``result.instances`` get them as ids that name one object in the whole stack:
the stitched 3-D ids, or, without stitching, the model's objects numbered after those of the
planes before (core.objects.stitch.Numbering); None when the model gives no objects and nothing
is stitched (the batch writer then numbers each class's components by the same rule).  ``above``:
the largest id the stack holds where this run does not write (the app's planes it leaves as they
are), so the run's ids, linked or not, start above it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from core.objects.stitch import Numbering, Stitcher, components
from core.segment.inference import Cancelled

PlaneCallback = Callable[[tuple, np.ndarray, "np.ndarray | None"], None]


@dataclass(frozen=True)
class StackOptions:
    tile_size: int | None = None
    tta: bool | None = None
    refine: object = None  # as Segmenter.segment's refine
    channels: Sequence[int] | None = None
    smooth_z: int = 0  # planes on each side whose class probabilities are averaged (0: off)
    stitch_threshold: float | None = None  # link objects across Z at this IoU (None: off)

    def __post_init__(self):
        if self.smooth_z < 0:
            raise ValueError(f"--smooth-z is a number of planes on each side, 0 or more, not {self.smooth_z}")
        if self.stitch_threshold is not None and not 0.0 < self.stitch_threshold <= 1.0:
            raise ValueError(f"--stitch-threshold is an IoU between 0 and 1, not {self.stitch_threshold}")


@dataclass
class StackResult:
    labels: object  # planes + (H, W) uint8 class ids
    plane_axes: str
    planes: tuple[int, ...]
    done: list[tuple[int, ...]] = field(default_factory=list)
    cancelled: bool = False
    instances: np.ndarray | None = None
    objects: int | None = None  # the object ids the run handed out (None: the run numbers no objects)


def plane_pixels(seg, source, plane: tuple[int, ...]) -> np.ndarray:
    """What the Segmenter reads of one plane: its raw channels for a raw-channel model, else the
    8-bit view (the stack's one stretch)."""
    h, w = source.height, source.width
    return source.read_raw(0, h, 0, w, plane=plane) if seg.reads_raw else source.read(0, h, 0, w, plane=plane)


def separates(seg) -> bool:
    """The model gives its own objects: an instance output (``seg.instances``; docs/interfaces.md)."""
    return getattr(seg, "instances", None) is not None


def segment_plane(seg, pixels: np.ndarray, options: "StackOptions", stats=None, should_cancel=None,
                  progress=None) -> tuple[np.ndarray, np.ndarray | None]:
    """One plane through the 2-D Segmenter: (class ids, the model's own object ids of the plane or None)."""
    kwargs = dict(tile_size=options.tile_size, progress=progress, should_cancel=should_cancel, tta=options.tta,
                  refine=options.refine, stats=stats, channels=options.channels)
    if separates(seg):
        made = seg.segment(pixels, instances=True, **kwargs)
        return made.labels, made.instances
    return seg.segment(pixels, **kwargs), None


def segment_stack(seg, source, planes: Sequence[Sequence[int]] | None = None,
                  options: StackOptions = StackOptions(), progress: Callable[[int, int], None] | None = None,
                  should_cancel: Callable[[], bool] | None = None, on_plane: PlaneCallback | None = None,
                  out=None, stats=None, instances_of: Callable[[np.ndarray], np.ndarray] = components,
                  tile_progress: Callable[[int, int], None] | None = None, keep: bool = True,
                  above: int = 0) -> StackResult:
    """Segment ``planes`` of ``source`` (default: every plane, in file order); see the module doc.

    ``keep=False``: the planes only go to ``on_plane`` (``labels`` and ``instances`` stay None), so
    a stack of any depth costs a plane's memory."""
    from core.io.sources import all_planes

    wanted = [source.plane(p) for p in planes] if planes is not None else all_planes(source)
    shape = tuple(source.planes) + (source.height, source.width)
    if out is None and keep:
        out = np.zeros(shape, np.uint8)
    elif out is not None and tuple(out.shape) != shape:
        raise ValueError(f"the output is {tuple(out.shape)} but the stack is {shape}")
    result = StackResult(out, source.plane_axes, tuple(source.planes))
    if stats is None:
        stats = seg.source_statistics(source, options.channels)
    stitcher = Stitcher(options.stitch_threshold, above) if options.stitch_threshold is not None else None
    numbering = Numbering(above) if stitcher is None and separates(seg) else None
    if (stitcher is not None or numbering is not None) and keep:
        result.instances = np.zeros(shape, np.uint32)
    planner = _Smoother(seg, source, options, stats) if options.smooth_z and "Z" in source.plane_axes else None
    cancel = should_cancel or (lambda: False)
    previous = None
    try:
        for i, plane in enumerate(wanted):
            if cancel():
                raise Cancelled()
            if planner is not None:
                labels, found = planner.labels(plane, cancel, wanted[i + 1:])
            else:
                labels, found = segment_plane(seg, plane_pixels(seg, source, plane), options, stats, cancel,
                                              tile_progress)
            instances = None
            if stitcher is not None:
                if previous is None or not _next_in_z(source.plane_axes, previous, plane):
                    stitcher.reset()  # another time point, or a plane not adjacent to the last one
                instances = stitcher.add(instances_of(labels) if found is None else found, labels)
            elif numbering is not None and found is not None:
                instances = numbering.add(found)
            if result.instances is not None and instances is not None:
                result.instances[plane] = instances
            if out is not None:
                out[plane] = labels
            result.done.append(plane)
            previous = plane
            if on_plane is not None:
                on_plane(plane, labels, instances)
            if progress is not None:
                progress(i + 1, len(wanted))
    except Cancelled:
        result.cancelled = True
    counter = stitcher if stitcher is not None else numbering
    if counter is not None:
        result.objects = counter.next_id - 1 - int(above)
    return result


def _next_in_z(plane_axes: str, previous: tuple, plane: tuple) -> bool:
    """``plane`` is the Z plane right above ``previous`` in the same time point."""
    if "Z" not in plane_axes:
        return False
    z = plane_axes.index("Z")
    same_rest = all(a == b for k, (a, b) in enumerate(zip(previous, plane)) if k != z)
    return same_rest and plane[z] == previous[z] + 1


class _Smoother:
    """Class probabilities of planes (segmented once each, kept while a wanted plane needs them),
    averaged over Z neighbours."""

    def __init__(self, seg, source, options: StackOptions, stats):
        self.seg, self.source, self.options, self.stats = seg, source, options, stats
        self.z = source.plane_axes.index("Z")
        self.depth = source.planes[self.z]
        self.cache: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def neighbours(self, plane: tuple) -> list[tuple]:
        r, z = self.options.smooth_z, plane[self.z]
        out = []
        for k in range(max(0, z - r), min(self.depth, z + r + 1)):
            p = list(plane)
            p[self.z] = k
            out.append(tuple(p))
        return out

    def probabilities(self, plane: tuple, cancel) -> np.ndarray:
        if plane not in self.cache:
            pixels = plane_pixels(self.seg, self.source, plane)
            if self.options.channels is not None:
                pixels = self.seg.input_channels(pixels, self.options.channels)
            probs = self.seg.probabilities(pixels, tta=self.options.tta, tile_size=self.options.tile_size,
                                           should_cancel=cancel, stats=self.stats)
            self.cache[plane] = probs.numpy()
        return self.cache[plane]

    def labels(self, plane: tuple, cancel, later: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray | None]:
        around = self.neighbours(plane)
        total = None
        for p in around:
            probs = self.probabilities(p, cancel)
            total = probs.copy() if total is None else total + probs
        needed = {q for w in later[:1] for q in self.neighbours(w)}
        for p in list(self.cache):
            if p not in needed:
                del self.cache[p]  # only the next wanted plane's neighbours stay
        labels = total.argmax(0).astype(np.uint8)
        if not separates(self.seg):
            return labels, None
        from core.objects.instances import separate  # the model's instance step on its class map (objects-learn)

        ids, folded = separate(labels, self.seg.instances)
        return folded, ids
