"""The app's side of training (Train > Train on Annotated Images…): which images and masks
go in, saving unsaved edits first, the dialog, and switching to the model it trained.

Training uses the masks saved on disk beside the listed images (where Save Mask puts them),
so it sees exactly what the user annotated; images without a saved mask are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from core.training.stage import annotated_pairs, free_model_path
from gui import dialogs
from gui.jobs.model_loader import ModelManager
from gui.state.app_state import AppState
from gui.state.image_store import ImageEntry
from gui.state.model_names import model_label

if TYPE_CHECKING:
    from gui.dialogs.training_dialog import TrainingContext, TrainingDialog


class TrainingUi:
    """``save(entry)`` saves an image's mask (True when written); ``load_model(path)`` switches
    to a weights file as Model > Load Weights does."""

    def __init__(self, state: AppState, parent: QWidget, train: QAction, models: ModelManager,
                 save: Callable[[ImageEntry], bool], load_model: Callable[[str], None]):
        self.state, self.store, self.parent, self.models = state, state.store, parent, models
        self._save, self._load_model = save, load_model
        self.dialog: "TrainingDialog | None" = None
        train.triggered.connect(self.open_dialog)

    def open_dialog(self) -> "TrainingDialog | None":
        """Check there is something to train on, then show the dialog (window-modal)."""
        w = self.parent
        if self.dialog is not None:
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        if self.state.job_running:
            self.state.message.emit("Wait for the running job to finish (or cancel it), then train.", 6000)
            return None
        entries = list(self.store)
        if not entries:
            dialogs.show_error(w, "Nothing to Train On", "Open a folder of images, annotate some of them "
                               "and save their masks, then train.")
            return None
        if not self._save_unsaved():
            return None
        targets = {e.path: e.save_target for e in entries}
        pairs, missing = annotated_pairs(targets, mask_for=targets.__getitem__)
        folder = self.state.folder or entries[0].path.parent
        if not pairs:
            example = targets[entries[0].path].name
            dialogs.show_error(w, "Nothing to Train On",
                               f"None of the {len(entries)} listed images in {folder} has a saved mask, "
                               "so there is nothing to train on.\n\nTraining uses the mask saved beside "
                               f"each image as <name>_mask.png (for {entries[0].name}: {example}). "
                               "Annotate some images, save their masks with Save Mask (Ctrl+S), "
                               "then train again.")
            return None
        from gui.dialogs.training_dialog import TrainingDialog  # imported on first use: keeps startup lean

        self.dialog = dialog = TrainingDialog(self._context(pairs, len(missing), folder), w)
        dialog.use_model_requested.connect(self._use_model)
        dialog.finished.connect(self._on_closed)
        dialog.open()
        return dialog

    def _save_unsaved(self) -> bool:
        dirty = self.store.dirty_entries()
        if not dirty:
            return True
        answer = dialogs.ask_save_before_training(self.parent, len(dirty))
        if answer == "save":
            return all(self._save(entry) for entry in dirty)
        return answer == "skip"

    def _context(self, pairs: list[tuple[Path, Path]], missing: int, folder: Path) -> "TrainingContext":
        from gui.dialogs.training_dialog import TrainingContext

        models = self.models
        seg, spec = models.segmenter, models.spec
        init, reason = None, "No model is loaded: load one (Model menu), or train a new one."
        if seg is not None:
            if spec != "custom":  # a built-in name or a weights file
                init = spec
            else:
                path = seg.checkpoint.path if seg.checkpoint is not None else None
                init = str(path) if path else None
                reason = "The current model did not come from a weights file to start from."
        arch = seg.arch if seg is not None else None
        if init is not None and arch is None:
            init, reason = None, "The current model's architecture is unknown."
        return TrainingContext(pairs, missing, folder, self.state.known_classes(),
                               free_model_path(folder),
                               model_label(init) if init else None, init, arch, reason,
                               dict(models.devices) if models.devices else None,
                               self._channel_names(pairs[0][0]))

    def _channel_names(self, path: Path) -> list[str]:
        """The channels of the images to train on (the first one's), or [] for RGB photographs."""
        from core.io.sources import open_source
        from gui.state.display import is_photo

        entry = self.store.get(path)
        if entry is not None and entry.image is not None:
            dtype, names = entry.image.pixels.dtype, list(entry.image.channel_names)
        elif entry is not None and entry.source is not None:
            dtype, names = entry.source.dtype, list(entry.source.channel_names)
        else:
            try:
                with open_source(path) as source:  # headers for tiled files; small images decode
                    dtype, names = source.dtype, list(source.channel_names)
            except (OSError, ValueError):
                return []
        return [] if is_photo(dtype, names) else names

    def _use_model(self, path: str) -> None:
        """Load the trained weights like Model > Load Weights (and remember them for next start)."""
        self.state.message.emit(f"Switching to the trained model {Path(path).name}…", 5000)
        self._load_model(path)

    def _on_closed(self, _result: int) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def shutdown(self) -> None:
        """The window is closing: stop a run and wait for its thread."""
        if self.dialog is not None:
            self.dialog.shutdown()
