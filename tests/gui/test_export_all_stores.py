"""Export All into OME-TIFF and OME-Zarr (the label stores Export Mask offers a slide or a stack):
ticked in the formats dialog, written for a 2-D image, a stack (its Z kept) and a slide (pyramidal),
the choice remembered, and a format an image cannot get named in the end message."""

from __future__ import annotations

import numpy as np
import tifffile
import zarr
from PIL import Image
from PySide6.QtWidgets import QCheckBox

from core.io.label_stacks import StackReader
from tests.gui.helpers import MODEL_CLASSES, write_image
from tests.gui.stack_helpers import H, W, Z, halves_stack


def tick(labels):
    """Export All's formats dialog as a user answers it: untick all, tick the boxes whose text starts so."""
    def answer(parent, selected):
        from gui.dialogs import export_formats_dialog

        dialog = export_formats_dialog(parent, selected)
        for box in dialog.findChildren(QCheckBox):
            box.setChecked(box.text().startswith(tuple(labels)))
        return dialog.formats()
    return answer


def open_three(window, tmp_path):
    """A 2-D image, a 5-plane stack and a 700 x 900 slide (OME-Zarr), each with a mask painted in the app."""
    from core.io.convert import convert

    src = tmp_path / "images"
    src.mkdir()
    flat = write_image(src / "flat.png", 40, 50, seed=1)
    stack, _ = halves_stack(src / "cells.ome.tif")
    slide = convert(write_image(tmp_path / "tile.png", 700, 900, seed=4), src / "tile.ome.zarr")
    window.open_images([flat, stack, slide])
    masks = {}
    window.show_entry(window.store.get(flat))
    flat_mask = np.zeros(window.document.shape, np.uint8)
    flat_mask[5:20, 10:30] = 1
    window.document.apply_labels(flat_mask)
    masks["flat"] = flat_mask
    window.show_entry(window.store.get(stack))
    planes = window.current.stack
    planes.set_classes(MODEL_CLASSES)
    stack_masks = np.zeros((Z, H, W), np.uint8)
    for z in range(Z):
        stack_masks[z, 4 + 3 * z:14 + 3 * z, 6:30] = 1 + z % 2
        planes.documents((z,)).mask.apply_labels(stack_masks[z], "test")
    masks["cells"] = stack_masks
    window.show_entry(window.store.get(slide))
    slide_mask = np.zeros((700, 900), np.uint8)
    slide_mask[100:200, 300:650] = 1  # across the 512-px chunk border
    slide_mask[600:650, 50:90] = 2
    window.document.labels[100:200, 300:650] = 1
    window.document.labels[600:650, 50:90] = 2
    masks["tile"] = slide_mask
    return masks


def stored_classes(path):
    """The classes a label store records, read as the app reads a mask it opens (slide or stack)."""
    from core.document.chunked_labels import ChunkedLabels

    if path.name.startswith("tile"):
        labels = ChunkedLabels.open(path)
        try:
            return labels.classes
        finally:
            labels.close()
    with StackReader(path) as reader:
        return reader.classes


def export_all(qtbot, window, dialogs, out):
    dialogs.answers["ask_export_folder"] = out
    with qtbot.waitSignal(window.export_all_finished, timeout=60_000) as blocker:
        window.commands.export_all.trigger()
    return blocker.args[0]


def test_export_all_writes_ome_tiff_and_ome_zarr_of_an_image_a_stack_and_a_slide(qtbot, window, dialogs, tmp_path):
    masks = open_three(window, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_formats"] = tick(["OME-TIFF", "OME-Zarr"])
    assert export_all(qtbot, window, dialogs, out) == 6 and dialogs.errors() == []
    assert "Exported 6 files" in window.statusBar().currentMessage()
    for stem, mask in masks.items():
        with tifffile.TiffFile(out / f"{stem}.ome.tif") as tif:
            labels = tif.series[0].asarray()
            levels = len(tif.series[0].levels)
        assert labels.dtype == np.uint8 and np.array_equal(labels, mask), stem  # a stack keeps its Z
        group = zarr.open_group(str(out / f"{stem}.ome.zarr"), mode="r")
        assert group["0"].dtype == np.uint8 and np.array_equal(np.asarray(group["0"][...]), mask), stem
    for name in ("flat.ome.tif", "cells.ome.tif", "cells.ome.zarr", "tile.ome.zarr"):
        assert {"cell", "nucleus"} <= {c.name for c in stored_classes(out / name)}, name  # as Export Mask writes them (a slide's OME-TIFF: none)
    assert levels > 1  # the slide's OME-TIFF is a pyramid
    with tifffile.TiffFile(out / "cells.ome.tif") as tif:
        assert tif.series[0].axes == "ZYX"
        assert 'PhysicalSizeZ="0.5"' in tif.ome_metadata  # the stack's Z step, kept


def test_export_all_remembers_the_stores_and_names_a_format_an_image_cannot_get(
        qtbot, window, dialogs, tmp_path, monkeypatch):
    from gui.infra.settings import Settings

    masks = open_three(window, tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # the 700 x 900 slide's mask does not fit in memory
    out = tmp_path / "out"
    out.mkdir()
    dialogs.answers["ask_export_formats"] = tick(["OME-TIFF", "Index PNG"])
    written = export_all(qtbot, window, dialogs, out)
    # index PNG of the image and of each plane, and the three OME-TIFFs; the slide gets no PNG, and it is said
    assert written == 1 + Z + 3
    assert (out / "tile.ome.tif").is_file() and not (out / "tile.png").exists()
    assert len(dialogs.errors()) == 1
    assert "tile.ome.zarr: index not written: the 900x700 mask is too large to hold in memory" in dialogs.errors()[0]
    assert np.array_equal(np.asarray(Image.open(out / "flat.png")), masks["flat"])
    remembered = Settings().export_formats
    assert remembered == ["ome-tiff", "index"]
    dialogs.answers["ask_export_formats"] = None  # the next Export All starts with them ticked
    window.commands.export_all.trigger()
    assert dialogs.of("ask_export_formats")[-1][1] == remembered
