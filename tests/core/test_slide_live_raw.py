"""Live Training on a raw (16-bit, two-channel) slide's tiles: each tile is scaled by the slide's
statistics, as segmenting the slide scales every tile, not by its own (issue 25, strokes on a
whole slide, note 7)."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import default_classes
from core.document.strokes import StrokeDocument
from core.io.sources import open_source
from core.model.normalize import source_statistics
from core.training.live import LiveConfig, LiveTrainer
from core.training.slide_strokes import SlideStrokes
from tests.raw_slide import two_level_halves, write_raw_pyramid


def stroke(doc: StrokeDocument, class_id: int, x0: int, x1: int, y: int) -> None:
    doc.set_active_class(class_id)
    doc.set_brush_size(8)
    doc.begin_stroke("brush")
    for x in range(x0, x1 + 1, 4):
        doc.stroke_to(x, y)
    doc.end_stroke()


@pytest.mark.parametrize("channels", [None, (1, 0)])
def test_a_raw_slides_tiles_reach_the_network_scaled_by_the_slides_statistics(tmp_path, channels):
    pixels, _truth = two_level_halves()
    path = write_raw_pyramid(tmp_path / "raw.ome.tif", pixels)
    doc = StrokeDocument.blank_chunked(pixels.shape[:2], default_classes(2))
    stroke(doc, 0, 100, 180, 300)  # on the dim half: its tile holds nothing brighter
    stroke(doc, 1, 850, 930, 300)  # on the bright half
    with open_source(path) as src:
        found = SlideStrokes(src, doc.labels, 0).items()
        assert len(found.items) == 2 and all(px.dtype == np.uint16 for px, _ in found.items)
        config = LiveConfig(init=None, threads=1, patch=32, batch=64, channels=channels)
        trainer = LiveTrainer(config, default_classes(2))
        trainer.set_data(found.items, found.names, scale_by={name: src for name in found.names})
        trainer.prepare()
        stats = source_statistics(src, trainer.norm.percentiles)
        x, y = trainer.sampler.batch(64)
    a = 0 if channels is None else 1  # where channel 0 (the one that differs) reaches the network
    x, y = x.numpy()[..., a], y.numpy()
    dim, bright = x[y == 0], x[y == 1]

    def scaled(x0: int) -> float:  # a stroke's pixels as the slide's statistics scale them
        raw = pixels[296:305, x0:x0 + 80, 0].astype(np.float32)
        return float(np.median((raw - stats.low[0]) / (stats.high[0] - stats.low[0])))

    # by the slide's statistics the dim half is darker than the bright one; by each tile's own the dim
    # half's noise would spread over 0..1 (about 0.45) and the bright half's specks push the rest to 0
    assert abs(float(np.median(dim)) - scaled(100)) < 0.01 and abs(float(np.median(bright)) - scaled(850)) < 0.01
    assert np.median(dim) < np.median(bright)
    doc.labels.close()


def test_the_default_level_keeps_the_brush_a_few_pixels_wide_and_cells_in_a_crop(tmp_path):
    from core.training.slide_strokes import default_level

    pixels, _ = two_level_halves(256, 512)
    with open_source(write_raw_pyramid(tmp_path / "raw.ome.tif", pixels, levels=4, tile=64)) as src:
        assert [round(w0 / w) for w0 in [src.width] for w, _ in src.levels] == [1, 2, 4, 8]
        # a 4-px brush paints full resolution; 8-16 px: every other pixel; wide brushes stop at 1/4
        assert [default_level(src, brush) for brush in (2, 4, 7, 8, 15, 16, 40, 400)] == [0, 0, 0, 1, 1, 2, 2, 2]
