"""``unetseg measure IMAGE LABELS -o OUT.csv [--mask CLASSMASK]``: measure any label image.

LABELS is an instance label image from anywhere (UNetSeg's ``<stem>_instances.tif``, Cellpose's or
StarDist's output: uint16/uint32 TIFF, PNG or .npy; a tiled TIFF or an OME-Zarr label image is
read block by block), IMAGE the image its objects lie on (its raw pixels, every channel, in the
file's dtype).  ``--mask`` gives each object a class (the most frequent class under it).  The
table is ``core.objects.measure``'s, streamed into OUT.csv as its rows finish.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def add_measure_command(sub) -> None:
    p = sub.add_parser("measure", help="measure every object of a label image (one CSV row per object)")
    p.add_argument("image", metavar="IMAGE", help="the image the objects lie on (its raw pixels are measured)")
    p.add_argument("labels", metavar="LABELS", help="an instance label image: 0 = background, one id per object")
    p.add_argument("-o", "--output", required=True, metavar="OUT.csv", help="the CSV to write")
    p.add_argument("--mask", default=None, metavar="CLASSMASK",
                   help="a class mask of the image: each object's class is the most frequent class under it "
                        "(without it every object is class 1)")
    p.add_argument("--classes", default=None, metavar="JSON", help="class list (classes.json) for the class names")
    p.set_defaults(handler=cmd_measure)


def cmd_measure(args: argparse.Namespace) -> int:
    from core.io.label_images import open_label_image
    from core.io.physical import physical_sizes
    from core.io.sources import open_source
    from core.objects.measure import Columns, write_measurements

    image, labels_path, out = Path(args.image), Path(args.labels), Path(args.output)
    labels = open_label_image(labels_path)
    try:
        with open_source(image) as source:
            _same_size(labels_path, labels.shape, image, (source.height, source.width))
            mask = _class_mask(Path(args.mask), image, (source.height, source.width)) if args.mask else None
            classes = _classes(args.classes)
            if isinstance(labels, np.ndarray) and not labels.any():
                return _no_objects(labels_path)
            if not out.parent.exists():
                out.parent.mkdir(parents=True)
            columns = Columns(source.channel_names, classes, physical_sizes(image))
            try:
                count = write_measurements(out, labels, source, mask, columns, keep_empty=False)
            except ValueError as exc:
                raise ValueError(f"{labels_path.name}: {exc}") from None
    finally:
        if hasattr(labels, "close"):
            labels.close()
    if not count:
        return _no_objects(labels_path)
    print(f"measured {count} object(s) of {labels_path.name} on {image.name} into {out}", file=sys.stderr)
    return 0


def _no_objects(labels_path: Path) -> int:
    print(f"{labels_path.name}: no objects (every pixel is 0), skipped; measured 0 of 1 label image(s), "
          "1 without objects", file=sys.stderr)
    return 0


def _same_size(labels_path: Path, shape, image: Path, image_shape) -> None:
    if tuple(shape[:2]) != tuple(image_shape):
        raise ValueError(f"{labels_path.name} is {shape[1]}x{shape[0]} but {image.name} is "
                         f"{image_shape[1]}x{image_shape[0]}; a label image must have its image's size")


def _class_mask(path: Path, image: Path, shape):
    """A class mask in any mask format (in memory), or a chunked one (OME-Zarr, tiled OME-TIFF) read lazily."""
    from core.io.masks import read_mask

    name = path.name.lower()
    if name.endswith((".zarr", ".ome.tif", ".ome.tiff")) or path.is_dir():
        from core.io.label_images import open_label_image

        mask = open_label_image(path)
    else:
        mask = read_mask(path, image_name=image.name, shape=shape)
    if tuple(mask.shape[:2]) != tuple(shape):
        raise ValueError(f"{path.name} is {mask.shape[1]}x{mask.shape[0]} but {image.name} is {shape[1]}x{shape[0]}; "
                         "a class mask must have its image's size")
    return mask


def _classes(path: str | None):
    if not path:
        return ()
    from core.cli.main import classes_file

    return classes_file(Path(path))
