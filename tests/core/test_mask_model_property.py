"""Property: a chunked mask, its saved files and its recovery copies agree with a plain numpy model
after every step of a random session of edits, Save, Save As, Export, deleting an export, and a
crash restored from the recovery copy (issue 20).  Small masks, chunks and caches, so edits spill
to scratch and each step crosses chunk borders."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.atomic import WriteError
from core.classes import default_classes
from core.document.chunked_labels import ChunkedLabels
from core.document.recovery import RecoveryStore

H, W, CHUNK = 150, 170, 32  # under the 64 minimum: stores reopen re-gridded (finding 4)
CLASSES = default_classes(6)
SUFFIX = {"ome-zarr": ".ome.zarr", "ome-tiff": ".ome.tif"}

edits = st.tuples(st.just("edit"), st.integers(0, H - 1), st.integers(0, W - 1), st.integers(1, 100),
                  st.integers(1, 100), st.integers(0, 5))
saves = st.tuples(st.just("save"))
save_as = st.tuples(st.just("save_as"), st.integers(0, 2), st.sampled_from(sorted(SUFFIX)))
exports = st.tuples(st.just("export"), st.integers(0, 2), st.sampled_from(sorted(SUFFIX)))
deletes = st.tuples(st.just("delete_export"), st.integers(0, 2))
crashes = st.tuples(st.just("crash"))
steps = st.lists(st.one_of(edits, edits, saves, save_as, exports, deletes, crashes), min_size=1, max_size=12)


class Session:
    """The mask under test beside its model: what the document shows and what each file holds."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.labels = ChunkedLabels.create(H, W, chunk=CHUNK, cache_bytes=4 * CHUNK * CHUNK)
        self.model = np.zeros((H, W), np.uint8)
        self.files: dict[Path, np.ndarray] = {}  # every mask file written, and what it must hold
        self.base: Path | None = None  # the file the document is saved to (Save As moves it)
        self.recovery = RecoveryStore(folder / "appdata", session="a0a0a0a0a0a0")
        self.image = folder / "slide.tif"

    def run(self, step: tuple) -> None:
        getattr(self, step[0])(*step[1:])
        self.check()

    def edit(self, y, x, h, w, value):
        self.labels[y:y + h, x:x + w] = value
        self.model[y:y + h, x:x + w] = value

    def _save(self, path: Path):
        fmt = "ome-tiff" if path.name.endswith(".ome.tif") else "ome-zarr"
        self.labels.save_to(path, fmt, classes=CLASSES)
        self.files[path], self.base = self.model.copy(), path

    def save(self):
        self._save(self.base or self.folder / "slide_mask.ome.zarr")

    def save_as(self, i, fmt):
        path = self.folder / f"saved{i}{SUFFIX[fmt]}"
        if path.with_name(f"export{i}{SUFFIX[fmt]}") == self.base:
            return
        self._save(path)

    def export(self, i, fmt):
        path = self.folder / f"export{i}{SUFFIX[fmt]}"
        before = self.labels.changed_chunks()
        try:
            self.labels.export_to(path, fmt, classes=CLASSES)
        except WriteError:
            assert path == self.base  # only the mask's own file is refused
            return
        assert self.labels.path == self.base and self.labels.changed_chunks() == before
        self.files[path] = self.model.copy()

    def delete_export(self, i):
        for fmt in SUFFIX.values():
            path = self.folder / f"export{i}{fmt}"
            if path in self.files and path != self.base:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                del self.files[path]

    def crash(self):
        """Autosave, then the process dies (the in-memory mask is gone), then Restore."""
        self.recovery.save(self.image, self.labels, CLASSES, 1, self.base)
        self.labels._finalizer()  # the scratch folder goes with the process; nothing else runs
        self.labels = None
        self.check_files()
        [snap] = self.recovery.own()
        self.labels = self.recovery.load_chunked(snap, cache_bytes=4 * CHUNK * CHUNK)
        self.recovery.remove(snap)
        assert self.labels.path == (self.base.resolve() if self.base else None)

    def check(self):
        np.testing.assert_array_equal(self.labels[:, :], self.model)
        k = self.labels.num_levels - 1
        h, w = self.labels.level_shape(k)
        np.testing.assert_array_equal(self.labels.read_level(k, 0, h, 0, w), self.model[::2**k, ::2**k])
        self.check_files()

    def check_files(self):
        for path, expected in self.files.items():
            with ChunkedLabels.open(path) as saved:
                np.testing.assert_array_equal(saved[:, :], expected, err_msg=str(path.name))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_a_random_session_agrees_with_a_numpy_model_after_every_step(session_steps):
    with tempfile.TemporaryDirectory(prefix="unetseg-property-") as tmp:
        session = Session(Path(tmp))
        try:
            for step in session_steps:
                session.run(step)
        finally:
            if session.labels is not None:
                session.labels.close()
