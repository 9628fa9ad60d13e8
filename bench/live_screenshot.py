"""The README's Live Training screenshots: ``python bench/live_screenshot.py docs/`` writes
``live_training.png`` (the prediction) and ``live_training_uncertainty.png`` (the uncertainty
overlay, key U) of one session.

A generated scene (core.training.synthetic) gets a few strokes per class (bench/live_gui.py's
simulated user, under 1% of the pixels), Live Training runs with its default settings for
``--seconds`` (default 45), and the window is grabbed.  Runs offscreen.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.live_gui import paint, pump, simulated_strokes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="docs")
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    out = Path(args.folder).resolve()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(tempfile.mkdtemp(prefix="unetseg-live-shot-"))
    os.environ["UNETSEG_SETTINGS"] = str(tmp / "settings.ini")
    os.environ["UNETSEG_DATA_DIR"] = str(tmp / "data")

    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from core.training.synthetic import SHAPE_CLASSES, generate_scene
    from gui.infra.workers import wait_for_workers
    from gui import dialogs as gui_dialogs
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["live-shot"])
    rgb, truth = generate_scene(args.seed, 480, 720)
    path = tmp / "scene.png"
    Image.fromarray(rgb).save(path)
    window = MainWindow()
    window.resize(1400, 860)
    window.show()
    window.overview_dock.hide()
    window.channel_dock.hide()  # an RGB scene: room for the training history instead
    window.open_images([path])
    window.document.set_classes(SHAPE_CLASSES)
    window.state.set_opacity(55)
    annotated = paint(window, simulated_strokes(truth, 3, 50, seed=args.seed), 6)
    window.commands.stroke.trigger()
    window.commands.live_training.trigger()
    if not window.state.live.on:
        print("Live Training did not start:", window.state.live.status, file=sys.stderr)
        return 1
    pump(app, args.seconds)
    pump(app, 30, lambda: window.state.live.prediction is not None)
    window.canvas.fit()
    pump(app, 10, lambda: window.state.live.prediction is not None and window.state.live.prediction.uid ==
         window.state.live.marked)
    pump(app, 0.5)
    window.state.message.emit(f"{annotated} annotated pixels ({100 * annotated / truth.size:.2f}% of the image)", 0)
    out.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(str(out / "live_training.png"))
    window.commands.uncertainty.trigger()  # the key U
    pump(app, 0.5)
    ok = window.grab().save(str(out / "live_training_uncertainty.png")) and ok
    window.commands.live_training.trigger()
    wait_for_workers(30, cancel=True)
    window.document.mark_saved()
    window.current.strokes.mark_saved()
    gui_dialogs.ask_save_model = lambda *args: "discard"  # the model is not kept: no question at close
    window.close()
    shutil.rmtree(tmp, ignore_errors=True)  # the scene, settings and app data of this session
    print(f"wrote {out / 'live_training.png'} and {out / 'live_training_uncertainty.png'}" if ok
          else "could not write the screenshots", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
