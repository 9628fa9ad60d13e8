"""Live Training of painted objects (core.training.live_objects): the app's object layer and strokes
become the same targets `unetseg train --instances` learns, unpainted pixels teach nothing, and a
checkpoint carries the instance settings that make it separate objects."""

from __future__ import annotations

import numpy as np
import pytest

from core.classes import ClassInfo, default_classes
from core.training.instance_targets import UNANNOTATED, InstanceAnnotation, build_targets
from core.training.live_objects import PaintedImage, object_data, preview_spec, with_spec
from core.training.loop import IGNORE
from tests.objects_images import background_strokes, disc_nuclei, fluorescence


def painted(seed: int = 0):
    labels, _, _ = disc_nuclei()
    strokes = background_strokes(labels)
    return labels, strokes, fluorescence(labels, seed)[..., None]


def test_the_apps_targets_are_the_command_lines():
    labels, strokes, pixels = painted()
    classes = np.where(labels > 0, 1, 0).astype(np.uint8)  # what painting the objects wrote
    data = object_data([PaintedImage("nuclei.tif", pixels, labels, classes, strokes)], default_classes(2))
    # the same annotation as a training label image: objects whole, background 0, the rest not annotated
    ann = np.full(labels.shape, UNANNOTATED, np.uint32)
    ann[strokes == 0] = 0
    ann[labels > 0] = labels[labels > 0]
    cli = build_targets([InstanceAnnotation(ann)])
    assert np.array_equal(data.items[0][1], cli.targets[0]) and data.spec == cli.spec
    assert data.items[0][0] is pixels and data.objects == 12 and data.object_images == 1
    assert [c.id for c in data.classes] == [0, 1, 2] and data.classes[2].name == "object boundary"
    assert data.background_pixels == int((strokes == 0).sum()) > 0
    assert data.used == [("nuclei.tif", int((cli.targets[0] != IGNORE).sum()))]
    assert "objects: 12 painted in 1 image (class 1: 12); background strokes:" in data.describe(default_classes(2))


def test_unpainted_pixels_teach_nothing_and_strokes_give_classes():
    labels, strokes, pixels = painted()
    classes = np.zeros(labels.shape, np.uint8)  # the class labels say nothing under the objects ...
    strokes = strokes.copy()
    strokes[labels == 3] = 2  # ... a stroke of class 2 over object 3 makes it class 2
    strokes[2:4, 2:30] = 1  # a class stroke outside every object draws no outline: it teaches nothing
    other = np.full(labels.shape, 255, np.uint8)
    other[10:12, 10:40], other[50:52, 10:40] = 0, 1  # an image with strokes but no objects
    user = [ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "nucleus", (255, 0, 0)), ClassInfo(2, "dividing", (0, 255, 0))]
    data = object_data([PaintedImage("a.tif", pixels, labels, classes, strokes),
                        PaintedImage("b.tif", pixels, None, None, other)], user)
    target = data.items[0][1]
    assert data.boundary == 3 and data.object_classes == {1: 11, 2: 1}
    assert [c.name for c in data.classes] == ["background", "nucleus", "dividing", "object boundary"]
    unpainted = (labels == 0) & (strokes != 0)
    assert (target[unpainted] == IGNORE).all()  # neither object nor background stroke: not annotated
    assert set(np.unique(target[labels == 3])) == {2, 3} and set(np.unique(target[labels == 4])) == {1, 3}
    assert (target[(labels == 0) & (strokes == 0)] == 0).all()
    # the image without objects adds its background strokes only, and is named as teaching nothing else
    assert data.items[1][0] is pixels and set(np.unique(data.items[1][1])) == {0, IGNORE}
    assert (data.items[1][1] == 0).sum() == (other == 0).sum() and data.left_out == ["b.tif"]
    assert "(nucleus: 11, dividing: 1)" in data.describe(user) and "Strokes of other classes on b.tif" in data.describe(user)
    # no objects anywhere: Live Training learns the strokes' classes as before
    assert object_data([PaintedImage("b.tif", pixels, np.zeros(labels.shape, np.uint32), None, other)], user) is None


def test_a_snapshot_with_the_spec_separates_objects():
    from core.segment.inference import Segmenter
    from core.training.live import LiveSnapshot
    from tests.gui.live_helpers import checkpoint

    labels, strokes, pixels = painted()
    data = object_data([PaintedImage("n", pixels, labels, None, strokes)], default_classes(2))
    snap = LiveSnapshot(0, 1.0, 10, 100, 1, 0.5, None, checkpoint(3, classes=3))
    made = with_spec(snap, data.spec, data.objects)
    assert made.uid == snap.uid and "instances" not in snap.checkpoint.metadata
    assert made.checkpoint.metadata["training"]["painted_objects"] == 12
    seg = Segmenter(made.checkpoint, device="cpu")
    assert seg.instances == data.spec and [c.id for c in seg.classes] == [0, 1]
    # a view predicted every 4th pixel: growth and the smallest seed scale with it
    coarse = preview_spec(data.spec, 4)
    assert coarse.grow == 1 and coarse.min_seed == max(1, data.spec.min_seed // 16)
    assert preview_spec(data.spec, 1) is data.spec


def test_an_object_class_beyond_253_is_one_sentence():
    from core.training.loop import TrainingDataError

    labels, strokes, pixels = painted()
    with pytest.raises(TrainingDataError, match="253 classes"):
        object_data([PaintedImage("n", pixels, labels, np.full(labels.shape, 254, np.uint8), None)],
                    default_classes(2))
