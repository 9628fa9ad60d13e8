"""Every question the app asks: file dialogs and message boxes, one small function each.

Nothing else in the GUI calls QFileDialog or QMessageBox, so tests replace these functions
with monkeypatch and drive whole flows without a modal dialog.  With the environment variable
``UNETSEG_FORBID_DIALOGS`` set (the test suite sets it) an unreplaced call raises instead of
blocking forever on a dialog nobody can see.

The larger dialogs (class edit, export formats, training) are this package's modules.  May
import ``core``, ``gui.state`` and ``gui.infra``, never controllers or the window.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.classes import ClassInfo
from core.io.images import IMAGE_EXTENSIONS
from core.io.label_store import STORE_FORMATS
from core.io.mask_naming import FORMATS, export_suffix, typed_export

FORBID_ENV = "UNETSEG_FORBID_DIALOGS"

# Export formats as the save dialog's filters and Export All's checkboxes offer them: the
# one list in core.io.mask_naming.
EXPORT_FILTERS: dict[str, str] = {name: f.filter for name, f in FORMATS.items()}
FORMAT_LABELS: dict[str, str] = {name: f.label for name, f in FORMATS.items()}


def _guard(name: str) -> None:
    if os.environ.get(FORBID_ENV):
        raise RuntimeError(f"unexpected dialog {name}() while {FORBID_ENV} is set")


def _image_filter() -> str:
    patterns = " ".join(f"*{ext}" for ext in IMAGE_EXTENSIONS)
    return f"Images ({patterns});;All files (*)"


# -- files -------------------------------------------------------------------------------------
def ask_open_paths(parent: QWidget | None, folder: str) -> list[Path]:
    _guard("ask_open_paths")
    names, _ = QFileDialog.getOpenFileNames(parent, "Open Images", folder, _image_filter())
    return [Path(n) for n in names]


def ask_open_folder(parent: QWidget | None, folder: str) -> Path | None:
    _guard("ask_open_folder")
    name = QFileDialog.getExistingDirectory(parent, "Open Folder of Images", folder)
    return Path(name) if name else None


def ask_mask_path(parent: QWidget | None, folder: str) -> Path | None:
    _guard("ask_mask_path")
    name, _ = QFileDialog.getOpenFileName(
        parent, "Import Mask", folder,
        "Masks (*.png *.tif *.tiff *.npy *.json *.txt *.geojson *.zip *.roi *.bmp *.gif *.webp);;All files (*)")
    return Path(name) if name else None


def ask_weights_path(parent: QWidget | None, folder: str) -> Path | None:
    _guard("ask_weights_path")
    name, _ = QFileDialog.getOpenFileName(
        parent, "Load Weights", folder,
        "Weights (*.safetensors *.pt *.pth *.ckpt *.bin);;All files (*)")
    return Path(name) if name else None


def ask_model_save_path(parent: QWidget | None, suggested: Path, title: str = "Save Model As") -> Path | None:
    """Where a trained model goes; always a .safetensors file (weights and metadata in one)."""
    _guard("ask_model_save_path")
    name, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), "Model weights (*.safetensors)")
    if not name:
        return None
    path = Path(name)
    return path if path.suffix.lower() == ".safetensors" else path.with_name(path.name + ".safetensors")


def ask_save_path(parent: QWidget | None, suggested: Path) -> Path | None:
    """Where to save the mask as an index PNG (Save As)."""
    _guard("ask_save_path")
    name, _ = QFileDialog.getSaveFileName(parent, "Save Mask As", str(suggested),
                                          "Index PNG, class ids (*.png)")
    if not name:
        return None
    path = Path(name)
    return path if path.suffix.lower() == ".png" else path.with_name(path.name + ".png")


def ask_csv_path(parent: QWidget | None, suggested: Path, title: str = "Export Object Measurements") -> Path | None:
    """Where to write a CSV table (the Objects table)."""
    _guard("ask_csv_path")
    name, _ = QFileDialog.getSaveFileName(parent, title, str(suggested), "CSV table (*.csv)")
    if not name:
        return None
    path = Path(name)
    return path if path.suffix.lower() == ".csv" else path.with_name(path.name + ".csv")


STORE_FILTERS = {"ome-zarr": "OME-Zarr label image (*.ome.zarr)", "ome-tiff": "OME-TIFF label pyramid (*.ome.tif)"}


def ask_export_path(parent: QWidget | None, suggested: dict[str, Path],
                    fmt: str = "index", note: str | None = None) -> tuple[Path, str] | None:
    """(path, format) for Export Mask, among the formats ``suggested`` names; ``note`` says why
    some formats are not offered.

    The file-type filter chooses the format, unless the typed name ends with another offered
    format's extension: then that format is taken (``cells.geojson`` under COCO is GeoJSON), or,
    when several formats share it (``.png``), the user is asked which (``ask_export_format``);
    a name without a known extension gets the format's.  A folder that does not exist yet is
    offered to be created; declining either question goes back to the file dialog.
    """
    _guard("ask_export_path")
    filters = {f: ({**EXPORT_FILTERS, **STORE_FILTERS})[f] for f in suggested}
    by_filter = {v: k for k, v in filters.items()}
    folder, name = _start_at(suggested[fmt])
    while True:
        dialog = QFileDialog(parent, "Export Mask" + (f" ({note})" if note else ""), str(folder))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilters(list(filters.values()))
        dialog.selectNameFilter(filters[fmt])
        dialog.selectFile(name)

        def on_filter(text: str, dialog=dialog) -> None:  # keep the suggested name in step with the format
            chosen = by_filter.get(text)
            if chosen:
                dialog.selectFile(suggested[chosen].name)

        dialog.filterSelected.connect(on_filter)
        if not dialog.exec() or not dialog.selectedFiles():
            return None
        fmt = by_filter.get(dialog.selectedNameFilter(), fmt)
        typed = Path(dialog.selectedFiles()[0])
        folder, name = _start_at(typed)  # back after a "no" below: what was typed, folders included
        path, formats = typed_export(typed, fmt, list(suggested))
        chosen = formats[0] if len(formats) == 1 else ask_export_format(parent, typed.name, formats, fmt)
        if chosen is None:
            continue
        if chosen not in formats:  # the filter's format after all: its extension added
            path = export_suffix(typed, chosen)
        if not path.parent.is_dir() and not _created(parent, path.parent):
            continue
        return path, chosen


def ask_export_format(parent: QWidget | None, name: str, formats: Sequence[str], chosen: str) -> str | None:
    """Several formats write files named like ``name`` (``.png``: index, colour, overlay, VOC):
    which one, or ``chosen`` (the file type picked) with its own extension added?  None: cancel."""
    _guard("ask_export_format")
    from PySide6.QtWidgets import QInputDialog

    labels = {f"{FORMAT_LABELS.get(chosen, chosen)}, as {export_suffix(name, chosen).name}": chosen}
    labels.update({FORMAT_LABELS.get(f, f): f for f in formats})  # the file type picked first: Enter keeps it
    item, ok = QInputDialog.getItem(parent, "Export Mask", f"{name} is the name of several formats' files. "
                                    "Write it as:", list(labels), 0, False)
    return labels[item] if ok and item in labels else None


def _start_at(path: Path) -> tuple[Path, str]:
    """Where a file dialog opens to show ``path``: its nearest folder that exists, and the rest of the
    path from there (``new/sub/cells.png``), so folders typed but not created yet are not lost."""
    folder = path.parent
    while not folder.is_dir() and folder.parent != folder:
        folder = folder.parent
    return folder, str(path.relative_to(folder))


def _created(parent: QWidget | None, folder: Path) -> bool:
    """Offer to create a folder that does not exist; True once it does."""
    if not confirm(parent, "Create Folder?", f"The folder {folder} does not exist. Create it?", "Create"):
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from core.atomic import describe_os_error

        show_error(parent, "Could Not Create the Folder", f"cannot create {folder}: {describe_os_error(exc)}")
        return False
    return True


class _FolderDialog(QFileDialog):
    """Choosing a folder, where a typed name of a folder that does not exist yet is offered to be
    created (Qt's own dialog refuses it with "Directory not found")."""

    def accept(self) -> None:
        files = self.selectedFiles()
        if files and not Path(files[0]).exists():
            if not _created(self, Path(files[0])):
                return
        super().accept()


def ask_export_folder(parent: QWidget | None, folder: str) -> Path | None:
    _guard("ask_export_folder")
    dialog = _FolderDialog(parent, "Export All Masks To", folder)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    if not dialog.exec() or not dialog.selectedFiles():
        return None
    return Path(dialog.selectedFiles()[0])


# Export All's label stores, offered before the mask formats (what Export Mask offers a slide or a stack)
STORE_LABELS: dict[str, str] = {
    "ome-tiff": "OME-TIFF label image (.ome.tif: pyramidal and tiled for a slide, a stack's Z/T kept)",
    "ome-zarr": "OME-Zarr label image (.ome.zarr: pyramidal for a slide, a stack's Z/T kept)"}


def ask_export_formats(parent: QWidget | None, selected: Sequence[str] = ("index",)) -> list[str] | None:
    """Which formats Export All writes (checkboxes: the label stores, then every mask format); None if cancelled."""
    _guard("ask_export_formats")
    dialog = export_formats_dialog(parent, selected)
    return dialog.formats() if dialog.exec() else None


def export_formats_dialog(parent: QWidget | None, selected: Sequence[str]):
    """Export All's checkboxes, ``selected`` ticked (the dialog, unshown: tests tick it as a user would)."""
    from gui.dialogs.formats_dialog import FormatsDialog

    return FormatsDialog({**STORE_LABELS, **FORMAT_LABELS}, selected, parent)


# -- classes -------------------------------------------------------------------------------
def ask_class_edit(parent: QWidget | None, info: ClassInfo) -> ClassInfo | None:
    """Rename / recolour a class (name field + QColorDialog button)."""
    _guard("ask_class_edit")
    from gui.dialogs.class_dialog import ClassDialog

    dialog = ClassDialog(info, parent)
    return dialog.result_class() if dialog.exec() else None


def ask_color(parent: QWidget | None, rgb: tuple[int, int, int], title: str):
    """A QColor, or None if cancelled."""
    _guard("ask_color")
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QColorDialog

    color = QColorDialog.getColor(QColor(*rgb), parent, title)
    return color if color.isValid() else None


# -- messages ------------------------------------------------------------------------------
def show_error(parent: QWidget | None, title: str, text: str) -> None:
    _guard("show_error")
    QMessageBox.critical(parent, title, text)


def show_info(parent: QWidget | None, title: str, text: str) -> None:
    _guard("show_info")
    QMessageBox.information(parent, title, text)


def confirm(parent: QWidget | None, title: str, text: str, ok: str = "OK") -> bool:
    _guard("confirm")
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    ok_button = box.addButton(ok, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(ok_button)
    box.exec()
    return box.clickedButton() is ok_button


def ask_save_discard_cancel(parent: QWidget | None, name: str, what: str = "mask") -> str:
    """"save", "discard" or "cancel" for unsaved edits of the image ``name``; ``what`` names them
    as unsaved_work() does ("mask", "strokes" or "mask and strokes")."""
    _guard("ask_save_discard_cancel")
    buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
               | QMessageBox.StandardButton.Cancel)
    title = {"mask": "Unsaved Mask", "strokes": "Unsaved Strokes"}.get(what, "Unsaved Mask and Strokes")
    verb = "has" if what == "mask" else "have"
    answer = QMessageBox.warning(
        parent, title, f"The {what} of {name} {verb} unsaved edits. Save them?",
        buttons, QMessageBox.StandardButton.Save)
    return {QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard"}.get(answer, "cancel")


def unsaved_work(mask_dirty: bool, strokes_dirty: bool) -> str:
    """What the unsaved edits of one image are, in the words the questions use."""
    return "mask and strokes" if mask_dirty and strokes_dirty else "strokes" if strokes_dirty else "mask"


def ask_save_model(parent: QWidget | None, label: str, details: str) -> str:
    """Live Training's model was never saved: "save" (Save Model…), "discard" or "cancel"."""
    _guard("ask_save_model")
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved Live Training Model",
                      f"The model Live Training trained ({label}, the marked checkpoint) was never saved; "
                      f"closing loses it.\n\n{details}\n\nSave it as a weights file?",
                      QMessageBox.StandardButton.Cancel, parent)
    save = box.addButton("Save Model…", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(save)
    box.exec()
    clicked = box.clickedButton()
    return "save" if clicked is save else "discard" if clicked is discard else "cancel"


def ask_save_before_training(parent: QWidget | None, count: int) -> str:
    """Training reads the masks saved on disk: "save" the edited ones first, "skip" or "cancel"."""
    _guard("ask_save_before_training")
    what = "1 image has" if count == 1 else f"{count} images have"
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved Masks",
                      f"{what} unsaved mask edits. Training uses the masks saved beside the "
                      "images, so unsaved edits would be left out.", QMessageBox.StandardButton.Cancel,
                      parent)
    save = box.addButton("Save and Continue", QMessageBox.ButtonRole.AcceptRole)
    skip = box.addButton("Continue Without Them", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(save)
    box.exec()
    clicked = box.clickedButton()
    return "save" if clicked is save else "skip" if clicked is skip else "cancel"


def ask_overwrite_skip_cancel(parent: QWidget | None, count: int, total: int, saved_as: str) -> str:
    """Segment All when some images already have masks: "overwrite", "skip" or "cancel";
    ``saved_as`` says which files it writes (gui.state.segment_all_outputs)."""
    _guard("ask_overwrite_skip_cancel")
    box = QMessageBox(QMessageBox.Icon.Question, "Segment All",
                      f"{count} of {total} images already have a mask (a mask file or unsaved "
                      f"edits).\n\n{saved_as} Those masks are replaced.", QMessageBox.StandardButton.Cancel,
                      parent)
    skip = box.addButton(f"Skip Those {count}", QMessageBox.ButtonRole.AcceptRole)
    overwrite = box.addButton("Segment All", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(skip)
    box.exec()
    clicked = box.clickedButton()
    return "skip" if clicked is skip else "overwrite" if clicked is overwrite else "cancel"


# -- safety ------------------------------------------------------------------------------------
def show_exception(parent: QWidget | None, title: str, text: str, details: str) -> None:
    """An unexpected error (gui.dialogs.errors): the message, the traceback and "Copy details"."""
    _guard("show_exception")
    from gui.dialogs.errors import ErrorDialog

    ErrorDialog(title, text, details, parent).exec()


def ask_recovery(parent: QWidget | None, crashed: bool, items: Sequence[str]) -> str:
    """Unsaved masks or strokes from an earlier session: "restore", "discard" or "later" (keep
    them).  Each item names the image and what was edited ("cells.png, strokes edited …")."""
    _guard("ask_recovery")
    why = ("UNetSeg did not close properly last time." if crashed else
           "Unsaved edits from an earlier session were kept.")
    box = QMessageBox(QMessageBox.Icon.Warning, "Restore Unsaved Edits",
                      f"{why}\n\nThese edits were never saved:\n\n"
                      + "\n".join(f"•  {item}" for item in items)
                      + "\n\nRestore opens them as unsaved edits (never over work saved after them); "
                      "Discard deletes the recovery copies.",
                      QMessageBox.StandardButton.NoButton, parent)
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    later = box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(restore)
    box.setEscapeButton(later)
    box.exec()
    clicked = box.clickedButton()
    return "restore" if clicked is restore else "discard" if clicked is discard else "later"


def ask_tile_cache_mb(parent: QWidget | None, current: int) -> int | None:
    """Memory for decoded tiles of large images, in MB; None if cancelled."""
    _guard("ask_tile_cache_mb")
    from PySide6.QtWidgets import QInputDialog

    value, ok = QInputDialog.getInt(parent, "Tile Memory", "Memory for decoded tiles of large images (MB):",
                                    current, 64, 65536, 64)
    return value if ok else None
