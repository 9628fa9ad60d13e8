"""The Objects table kept current by re-measuring only what an edit touched equals the table
measured from scratch, after every kind of object edit (and with raw channels and micrometres)."""

from __future__ import annotations

import numpy as np

from core.classes import default_classes
from core.document.mask_document import MaskDocument
from core.objects.live_table import measure_update, plan_update, splice
from core.objects.measure import Columns, measure


def assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert x.shape == y.shape, name
        if x.dtype.kind in "US" or y.dtype.kind in "US":
            assert x.tolist() == y.tolist(), name
        else:
            assert np.allclose(x.astype(float), y.astype(float), rtol=0, atol=1e-9, equal_nan=True), name


class Tracker:
    """A document's objects, and a table kept by live updates from each change's box."""

    def __init__(self, doc, pixels, columns):
        self.doc, self.pixels, self.columns = doc, pixels, columns
        self.boxes = []
        doc.objects.changed.connect(self.boxes.append)
        doc.changed.connect(self.boxes.append)
        self.table = self.full()

    def full(self):
        return measure(self.doc.objects.labels, self.pixels, self.doc.labels, self.columns)

    def update(self):
        box = self.boxes[0]
        for b in self.boxes[1:]:
            box = box.union(b)
        self.boxes.clear()
        update = plan_update(self.table, self.doc.objects.labels, tuple(box))
        rows = measure_update(update, self.doc.objects.labels, self.pixels, self.doc.labels, self.columns)
        self.table = splice(self.table, update, rows)
        assert_same(self.table, self.full())


def disc(doc, cx, cy, r, class_id=1, grow=0):
    doc.set_brush_size(2 * r)
    obj = doc.objects
    new = obj.begin_paint(class_id, grow)
    obj.stroke_to(cx, cy)
    obj.end_stroke()
    return new


def test_live_updates_equal_a_full_measurement_after_each_edit():
    rng = np.random.default_rng(3)
    h, w = 160, 200
    pixels = rng.integers(0, 4000, (h, w, 2)).astype(np.uint16)
    doc = MaskDocument(np.zeros((h, w), np.uint8), default_classes(3))
    for k in range(8):  # a row of touching objects, and a few apart
        disc(doc, 20 + 18 * k, 40, 10, class_id=1 + k % 2)
    disc(doc, 60, 120, 12)
    disc(doc, 150, 120, 12)
    columns = Columns(channel_names=("DNA", "actin"), classes=doc.classes, pixel_size={"X": 0.5, "Y": 0.5})
    t = Tracker(doc, pixels, columns)
    assert len(t.table["label"]) == 10 and "mean_intensity_DNA" in t.table and "area_um2" in t.table

    disc(doc, 100, 80, 8)  # a new object
    t.update()
    doc.set_brush_size(6)
    doc.objects.begin_paint(2, grow=11)  # grow the new one towards an old one
    doc.objects.stroke_to(100, 80)
    doc.objects.stroke_to(100, 60)
    doc.objects.end_stroke()
    t.update()
    doc.objects.merge(9, 10)  # two objects far apart: the merged-in one lies outside the kept one's box
    t.update()
    assert 10 not in t.table["label"]
    new = doc.objects.split([(38, 20), (38, 60)])  # across object 2 of the touching row
    assert new
    t.update()
    doc.objects.delete(3)
    t.update()
    doc.objects.begin_erase(4)
    doc.objects.stroke_to(74, 40)
    doc.objects.end_stroke()
    t.update()
    doc.set_active_class(2)  # a class brush over an object changes its class, not its shape
    doc.set_brush_size(30)
    doc.begin_stroke("brush")
    doc.stroke_to(60, 120)
    doc.stroke_to(150, 120)
    doc.end_stroke()
    t.update()
    assert t.table["class"][list(t.table["label"]).index(9)] == 2
    for _ in range(4):  # undo and redo report their boxes too
        doc.undo()
        t.update()
    doc.redo()
    t.update()


def test_an_update_measures_only_the_touched_objects():
    doc = MaskDocument(np.zeros((300, 300), np.uint8))
    for k in range(100):
        disc(doc, 15 + 30 * (k % 10), 15 + 30 * (k // 10), 8)
    table = measure(doc.objects.labels, None, doc.labels)
    boxes = []
    doc.objects.changed.connect(boxes.append)
    doc.objects.delete(55)
    update = plan_update(table, doc.objects.labels, tuple(boxes[-1]))
    assert update.ids.tolist() == [55]
    y0, x0, y1, x1 = update.region
    assert (y1 - y0) * (x1 - x0) < 400  # its own box, not the image
    table = splice(table, update, measure_update(update, doc.objects.labels, None, doc.labels))
    assert 55 not in table["label"] and len(table["label"]) == 99
