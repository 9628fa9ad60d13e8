"""The README's whole-slide screenshot: ``python bench/slide_screenshot.py docs/screenshot_slide.png``.

A 32,768 x 32,768 pyramidal TIFF of synthetic scenes (bench/large_image.py) is opened, the view
zoomed in on one region, that region segmented with Segment View by the built-in large model,
and the window (with the Overview mini-map) grabbed.  Runs offscreen; about two minutes on a CPU.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshot_slide.png").resolve()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-shot-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")
    from large_image import make_tiff
    from slide_view import settle

    slide = make_tiff(tmp / "slide.ome.tif", 32768)
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["slide-shot"])
    window = MainWindow()
    window.resize(1400, 860)
    window.show()
    window.open_images([slide])
    settle(window, app)
    window.load_model("large")
    deadline = time.monotonic() + 120
    while window.models.segmenter is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    canvas = window.canvas
    canvas.set_scale(1.0)
    canvas.center_on_image(21_300, 11_900)
    settle(window, app)
    window.class_panel.opacity_slider.setValue(60)
    window.commands.segment_view.trigger()
    while window.segmentation.running:
        app.processEvents()
        time.sleep(0.02)
    canvas.set_scale(0.7)
    canvas.center_on_image(21_300, 11_900)
    settle(window, app)
    window.class_panel.refresh_counts()
    app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out))
    window.document.mark_saved()
    window.close()
    print(f"wrote {out}" if ok else f"could not write {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
