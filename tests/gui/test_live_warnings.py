"""What the Live Training panel says: warnings stay until resolved and are said once, in the
app's words (finding 19); every number says what it counts and what a score is measured on
(finding 20); a model that started from scratch says so (finding 13)."""

from __future__ import annotations

import numpy as np
import tifffile

from core.model.checkpoints import Normalization
from tests.gui.live_helpers import FAST, new_run, publish, snapshot, stroke, two_halves


def sixteen_bit(path, channels=1, seed=0):
    """A faint 16-bit image, brighter on the right in its last channel (Live Training reads it raw)."""
    rng = np.random.default_rng(seed)
    img = 1000 + rng.normal(0, 4, (64, 64, channels))
    img[:, 32:, -1] += 25
    tifffile.imwrite(path, img.round().astype(np.uint16).transpose(2, 0, 1), metadata={"axes": "CYX"})
    return path


def messages(window):
    said = []
    window.state.message.connect(lambda text, _ms: said.append(text))
    return said


def pan(qtbot, window, times=3):
    for i in range(times):
        window.canvas.set_scale(2 + i)
        window.canvas.center_on_image(20 + 5 * i, 30)
        qtbot.wait(350)  # the view rests: Live Training predicts it


def test_a_model_that_cannot_read_the_image_says_so_once_and_shows_nothing_there(qtbot, window, tmp_path):
    """A model from 1-channel 16-bit images, an RGB image shown, Live Training off: no preview, one
    sentence in the app's words (not the command line's), not repeated on every pan; gone once an
    image it reads is shown."""
    rgb = two_halves(tmp_path / "photo.png")
    grey = sixteen_bit(tmp_path / "grey.tif")
    window.open_images([rgb, grey])
    window.show_entry(window.store.get(rgb))
    window.live_dock.show()  # as Live Training left it
    said = messages(window)
    shown = []
    window.live.preview_shown.connect(shown.append)
    raw = Normalization.for_raw_channels(1)
    publish(window, snapshot(new_run(), 0, channels=1, norm=raw))
    qtbot.waitUntil(lambda: bool(window.state.live.warning), timeout=20_000)
    pan(qtbot, window)
    warning = window.state.live.warning
    panel = window.live_panel.warning
    assert panel.isVisible() and panel.text() == warning
    assert "photo.png" in warning and "1 channel" in warning and "3 channels" in warning
    assert "--channels" not in warning and not any("--channels" in m for m in said)
    assert said.count(warning) == 1  # once, not on every pan
    assert shown == [] and window.state.live.prediction is None and not window.live.preview.busy
    assert window.live.apply() is False  # Apply cannot use it there either
    window.show_entry(window.store.get(grey))  # an image it reads: the warning is resolved
    qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
    assert window.state.live.warning == "" and not panel.isVisible()
    assert shown[-1].image == grey


def test_a_warning_stays_until_it_is_resolved(qtbot, window, tmp_path):
    """Strokes that cannot train (one class left) keep their warning through later checkpoints;
    painting the second class again clears it."""
    window.open_images([two_halves(tmp_path / "halves.png")])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    window.live.config_changes = dict(FAST, snapshot_every=0.2)
    window.commands.live_training.trigger()
    live = window.state.live
    qtbot.waitUntil(lambda: bool(live.history), timeout=30_000)
    window.commands.stroke_eraser.trigger()
    window.state.set_brush_size(12)
    from tests.gui.helpers import drag
    drag(qtbot, window, [(8, 12), (24, 22), (12, 52)])  # class 0's strokes are gone
    qtbot.waitUntil(lambda: "two classes" in live.warning, timeout=10_000)
    count = len(live.history)
    qtbot.waitUntil(lambda: len(live.history) >= count + 2, timeout=30_000)  # two checkpoints later
    assert "two classes" in live.warning and window.live_panel.warning.isVisible()
    window.state.set_brush_size(4)
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    qtbot.waitUntil(lambda: live.warning == "", timeout=10_000)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)


def test_rows_and_status_say_what_they_count_and_what_a_score_is_measured_on(qtbot, window, tmp_path):
    window.open_images([two_halves(tmp_path / "halves.png")])
    snap = publish(window, snapshot(new_run(), 0, 1.0, held=1))
    row = window.live_panel.history.item(0).text()
    assert f"trained on {snap.annotated_pixels:,} px" in row and "held-out strokes 1.00" in row
    status = window.state.live.status
    assert f"trained on {snap.annotated_pixels:,} px" in status and "held-out strokes only" in status
    assert "little about the rest of the image" in status  # a perfect score on a few strokes is no verdict
    unscored = publish(window, snapshot(new_run(), 0))
    assert window.live_panel.item_of(unscored.uid).text().endswith("not scored yet")


def test_the_start_message_counts_every_annotated_pixel_and_rows_the_trained_ones(qtbot, window, tmp_path):
    """The start message counts all annotated pixels (held-out strokes included) and says so; each row
    counts what that checkpoint trained on."""
    window.open_images([two_halves(tmp_path / "halves.png", h=128)])
    window.state.set_brush_size(4)
    for y in (6, 30, 54, 78, 102):  # five strokes of each class, apart: some are held out
        stroke(qtbot, window, 1, [(40, y), (58, y)])
        stroke(qtbot, window, 0, [(4, y), (24, y)])
    total = window.current.strokes.annotated_pixels
    window.live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    live = window.state.live
    assert f"on {total:,} annotated pixels" in live.status and "held out" in live.status
    qtbot.waitUntil(lambda: bool(live.history), timeout=30_000)
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)
    for row in live.history:
        s = row.snapshot
        text = window.live_panel.item_of(row.uid).text()
        assert f"trained on {s.annotated_pixels:,} px" in text
        assert (f"held-out strokes {s.held_out_miou:.2f} (set {s.held_out_set})" in text) \
            if s.held_out_miou is not None else text.endswith("not scored yet")  # which strokes scored it
    held = live.history[-1].snapshot
    assert held.held_out_miou is not None and held.annotated_pixels < total  # some strokes were held out


def test_the_start_says_what_the_weights_really_started_from(qtbot, window, tmp_path):
    """Finding 13 (app): the default start fine-tunes the built-in RGB model, which cannot take a
    2-channel 16-bit image as it is: the status says what the trainer really started from (from
    scratch, or all but the built-in model's first layer), never just "the built-in model small"."""
    window.open_images([sixteen_bit(tmp_path / "two.tif", channels=2)])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    window.live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    truth = window.live.trainer.started_from  # core's LiveTrainer.started_from
    status = window.state.live.status
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)
    assert truth == "scratch" or "all but its first layer" in truth
    assert status.startswith(f"Training from {truth} on ")
    assert "Training from the built-in model small on" not in status


def test_a_class_painted_while_training_joins_the_running_training(qtbot, window, tmp_path):
    """Finding 12 (app): a class added and painted while training runs is learnt within a few
    seconds by the same run, which goes on from what it learnt (no "turn it off and on")."""
    window.open_images([two_halves(tmp_path / "halves.png")])
    window.state.set_brush_size(4)
    stroke(qtbot, window, 1, [(40, 10), (56, 20), (44, 50)])
    stroke(qtbot, window, 0, [(8, 12), (24, 22), (12, 52)])
    window.live.config_changes = dict(FAST)
    window.commands.live_training.trigger()
    live = window.state.live
    qtbot.waitUntil(lambda: bool(live.history), timeout=30_000)
    before = live.history[-1].snapshot
    assert before.checkpoint.num_classes == 2
    window.add_class()  # class 2, now the active one
    window.commands.stroke.trigger()
    from tests.gui.helpers import drag
    drag(qtbot, window, [(48, 28), (60, 36)])
    qtbot.waitUntil(lambda: live.history[-1].snapshot.checkpoint.num_classes == 3, timeout=15_000)
    after = live.history[-1].snapshot
    assert after.run == before.run and after.steps > before.steps  # the same run went on
    assert [c.id for c in after.checkpoint.classes] == [0, 1, 2]
    assert live.warning == "" and "off and on" not in live.status
    window.commands.live_training.trigger()
    qtbot.waitUntil(lambda: not window.live.trainer.running, timeout=10_000)
