"""Regenerate the README screenshot: ``python -m gui.screenshot docs/screenshot.png``.

The bundled samples are opened as a folder in a 1280x800 window and the first one is
segmented by a built-in model (large, else small) when one is installed, else shown with its
ground truth.  Runs offscreen.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SIZE = (1280, 800)


def _wait(app, condition, timeout_s: float) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    return condition()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshot.png")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import shutil

    from core.io.masks import read_mask
    from core.resources import builtin_model_path, sample_images
    from core.training.samples import ground_truth_path
    from core.training.synthetic import SHAPE_CLASSES
    from gui.main_window import MainWindow
    from gui.infra.settings import ENV_DATA_DIR, ENV_FILE
    from gui.infra.workers import wait_for_workers

    app = QApplication.instance() or QApplication(["unetseg-screenshot"])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[ENV_FILE] = str(Path(tmp) / "settings.ini")  # never the user's settings,
        os.environ[ENV_DATA_DIR] = str(Path(tmp) / "data")  # recovery copies or log
        folder = Path(tmp) / "samples"
        folder.mkdir()
        samples = [Path(shutil.copy(p, folder)) for p in sample_images()]
        image_path = folder / "shapes_meadow.png"
        truth = read_mask(ground_truth_path(sample_images()[samples.index(image_path)]))
        window = MainWindow()
        window.resize(*SIZE)
        window.show()
        window.open_folder(folder)
        window.open_images([image_path])
        window.class_panel.opacity_slider.setValue(70)
        doc = window.document
        used_model = False
        installed = [n for n in ("large", "small") if builtin_model_path(n).is_file()]
        if installed:
            window.load_model(installed[0])
            if _wait(app, lambda: window.models.segmenter is not None, 120):
                done = []
                window.segmentation_finished.connect(lambda *a: done.append(a))
                window.seg.segment()
                used_model = _wait(app, lambda: bool(done), 120)
        if not used_model:
            doc.set_classes(SHAPE_CLASSES)
            doc.apply_labels(truth, "ground truth")
            window.status.set_model("Model: none installed")
            window.status.message("Showing the scene's ground-truth mask", 0)
        doc.mark_saved()
        doc.set_active_class(1)
        window.brush_spin.setValue(16)
        window.class_panel.refresh_counts()
        window.canvas.fit()
        app.processEvents()
        # the pointer over the image: brush outline on the canvas, readout in the status bar
        QTest.mouseMove(window.canvas.viewport(), window.canvas.view_point(300, 190).toPoint())
        app.processEvents()
        wait_for_workers(30, cancel=False)
        app.processEvents()
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(out))
        window.close()
    print(f"wrote {out}" if ok else f"could not write {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
