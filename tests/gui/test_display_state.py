"""The channel display model (gui.state.display, Qt-free) and its memory in the settings
(gui.infra.display_memory): each image is shown as it was left, photographs as they are."""

from __future__ import annotations

import numpy as np

from core.io.display import sample_values
from gui.infra.display_memory import DisplayMemory
from gui.state.display import DisplaySettings, rendered_rgb

RNG = np.random.default_rng(12)


def test_the_display_model_remembers_each_image_and_ignores_a_stale_memory():
    store = _DictStore()
    display = DisplaySettings()
    display.memory = DisplayMemory(store)
    pixels = RNG.integers(0, 4096, (64, 64, 2), dtype=np.uint16)
    display.show("a.tif", pixels.dtype, ["DAPI", "GFP"], lambda: sample_values(pixels))
    assert [c.color for c in display.view.channels] == [(0, 255, 0), (255, 0, 255)]
    display.set_color(1, (0, 255, 255))
    display.set_limits(0, 10, 20)
    display.set_visible(1, False)
    edited = display.view.channels
    display.show("b.tif", pixels.dtype, ["DAPI", "GFP"], lambda: sample_values(pixels))
    assert display.view.channels != edited  # another image: its own defaults
    display.show("a.tif", pixels.dtype, ["DAPI", "GFP"], lambda: sample_values(pixels))
    assert display.view.channels == edited
    three = RNG.integers(0, 4096, (64, 64, 3), dtype=np.uint16)  # the file now has 3 channels
    display.show("a.tif", three.dtype, ["x", "y", "z"], lambda: sample_values(three))
    assert len(display.view.channels) == 3 and display.view.channels[0].limits != (10.0, 20.0)
    store.data["display/garbage"] = "{not json"
    assert DisplayMemory(store).load("never saved") is None


def test_photographs_keep_the_simple_view_and_their_rgb():
    display = DisplaySettings()
    called = []
    display.show("photo.png", np.uint8, ["Red", "Green", "Blue"], lambda: called.append(1))
    assert display.view.photo and display.view.compositor() is None and not called

    class Image:  # what core.io.images.LoadedImage offers
        rgb = RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        pixels, channel_names = rgb, ["Red", "Green", "Blue"]

    assert rendered_rgb(Image()) is Image.rgb


class _DictStore:
    """QSettings' value/setValue over a dict."""

    def __init__(self):
        self.data = {}

    def value(self, key):
        return self.data.get(key)

    def setValue(self, key, value):  # noqa: N802
        self.data[key] = value



