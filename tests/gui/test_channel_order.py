"""Segmenting in the app with a model trained with ``--channels 1,0`` on 2-channel images: Segment
and Segment View read the image's channels in that order, as the model was trained."""

from __future__ import annotations

import numpy as np
import tifffile

from core.segment.inference import Segmenter
from tests.core.test_raw_channels_model import two_channel_image
from tests.helpers import write_raw_checkpoint


def test_the_app_segments_with_the_recorded_channel_order(qtbot, window, tmp_path):
    swapped = write_raw_checkpoint(tmp_path / "swapped.safetensors", 2, picked=[1, 0])
    plain = Segmenter.load(write_raw_checkpoint(tmp_path / "plain.safetensors", 2), device="cpu")
    image = two_channel_image(7, 96, 112)
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.moveaxis(image, 2, 0), metadata={"axes": "CYX"})
    window.open_images([path])
    with qtbot.waitSignal(window.model_ready, timeout=60_000):
        window.load_model(str(swapped))
    settings = window.segmentation
    options = dict(tile_size=settings.tile_size, tta=settings.tta, refine=settings.refine)
    expected = plain.segment(np.ascontiguousarray(image[..., ::-1]), **options)
    assert (expected != plain.segment(image, **options)).mean() > 0.05  # the order matters to these weights

    with qtbot.waitSignal(window.segmentation_finished, timeout=60_000):
        window.commands.segment.trigger()
    assert np.array_equal(np.asarray(window.mask), expected)

    window.commands.undo.trigger()
    assert not np.asarray(window.mask).any()
    view = window.canvas.visible_box()
    assert (view.height, view.width) == image.shape[:2]  # the whole image is in view
    with qtbot.waitSignal(window.segmentation_finished, timeout=60_000):
        window.commands.segment_view.trigger()  # streamed, block by block
    assert np.array_equal(np.asarray(window.mask), expected)
