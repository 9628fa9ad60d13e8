"""Every slide has an overview: one whose pyramid has no small level (here a tiled TIFF with no
pyramid at all, 10,752 x 10,752 of repeated compressed tiles) gets its thumbnail built in the
background, and the next opening finds it in the cache."""

from __future__ import annotations

import numpy as np
import pytest

from core.io.overview import cache_name
from tests.gui.conftest import new_window
from tests.large_images import write_repeated_tiff

SIDE = 10_752  # over the app's 100 Mpx: opened in tiles; over 16 Mpx: no direct overview


@pytest.fixture(scope="module")
def flat_slide(tmp_path_factory):
    tile = np.zeros((512, 512, 3), np.uint8)
    tile[:256] = (200, 40, 40)
    tile[256:] = (40, 40, 200)
    return write_repeated_tiff(tmp_path_factory.mktemp("flat") / "flat.tif", SIDE, SIDE, tile)


def test_a_slide_without_a_pyramid_gets_a_background_overview_that_is_cached(qtbot, window, flat_slide,
                                                                               isolated_settings):
    window.open_images([flat_slide])
    entry, minimap = window.current, window.minimap
    assert entry.source is not None and len(entry.source.levels) == 1
    assert minimap._image is None and minimap.message.startswith("Building")  # said, not blank
    with qtbot.waitSignal(window.overviews.built, timeout=60_000):
        pass
    assert minimap._image is not None
    thumb = entry.overview
    assert max(thumb.shape[:2]) <= 512 and thumb.shape[2] == 3
    # 512-pixel tiles, red above blue, averaged over 21-pixel boxes: the stripes are there
    column = thumb[:25, 5].astype(int)
    assert (column[:12] == (200, 40, 40)).all() and (column[13:24] == (40, 40, 200)).all()
    cached = isolated_settings.parent / "appdata" / "overviews" / cache_name(flat_slide)
    assert cached.exists()
    window.close()

    again = new_window(qtbot)  # reopened: from the cache, at once, without a job
    again.open_images([flat_slide])
    assert again.minimap._image is not None and not again.overviews.building(again.current)
    np.testing.assert_array_equal(again.current.overview, thumb)
    again.close()
