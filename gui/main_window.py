"""The main window: composes the canvas, docks, menus and controllers, and binds the current
document to them.  Behaviour lives in the parts (gui.controllers.opening, gui.controllers.saving, gui.controllers.segment_ui,
gui.canvas.view, gui.canvas.tools); this file wires signals and keeps the views in step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from core.classes import ClassInfo, default_classes, default_color
from core.document import MaskDocument
from core.imageio import ImageReadError
from gui import dialogs
from gui.menus.actions import Actions
from gui.controllers.autosave import Autosave
from gui.canvas.view import Canvas
from gui.panels.class_panel import ClassPanel
from gui.panels.file_panel import FilePanel
from gui.infra.icons import icon
from gui.state.image_store import ImageEntry, ImageStore
from gui.canvas.layers import ImageLayer
from gui.menus.layout import build_menus, build_toolbar
from gui.controllers.opening import Opener, load_entry
from gui.canvas.raster import build_pyramid
from gui.controllers.saving import Saver
from gui.controllers.segment_ui import SegmentUi
from gui.infra.settings import Settings, restore_geometry
from gui.panels.status_panel import StatusPanel
from gui.controllers.training_ui import TrainingUi
from gui.infra.workers import Task, start_task

APP_NAME = "UNetSeg"
OPACITY_STEP = 10


class MainWindow(QMainWindow):
    model_ready = Signal(str)  # describe() of the loaded model
    model_failed = Signal(str)
    segmentation_started = Signal()
    segmentation_finished = Signal(float, str)  # seconds, device
    segmentation_failed = Signal(str)
    segmentation_cancelled = Signal()
    segment_all_finished = Signal(int, int)  # images done, images asked
    export_all_finished = Signal(int)  # files written (-1: cancelled)
    image_shown = Signal(object)  # the ImageEntry now shown, or None

    def __init__(self, parent: QWidget | None = None, settings: Settings | None = None):
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.store = ImageStore()
        self.folder: Path | None = None
        self.class_template: list[ClassInfo] = default_classes(2)
        self._doc: MaskDocument | None = None
        self._pyramid_tasks: set[Task] = set()

        self.commands = a = Actions(self)
        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.class_panel = ClassPanel(a.toggle_mask, a.outline)
        self.file_panel = FilePanel(self.store)
        self.class_dock = self._dock("Classes", "dock_classes", self.class_panel,
                                     Qt.DockWidgetArea.RightDockWidgetArea)
        self.file_dock = self._dock("Images", "dock_images", self.file_panel,
                                    Qt.DockWidgetArea.LeftDockWidgetArea)
        self.status = StatusPanel(self.statusBar(), a.cancel)
        self.menus = build_menus(self, a)
        self.menus.view.addSeparator()
        self.menus.view.addActions([self.file_dock.toggleViewAction(), self.class_dock.toggleViewAction()])
        self.toolbar, self.brush_spin = build_toolbar(self, a)
        self.opener = Opener(self)
        self.saver = Saver(self)
        self.seg = SegmentUi(self, self.menus.model)
        self.segmentation = self.seg.controller
        self.models = self.seg.models
        self.training = TrainingUi(self)
        self._wire()
        self.autosave = Autosave(self)  # recovery copies of unsaved masks; offers old ones
        self._restore_settings()
        self._update_title()
        self.job_state_changed()

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    # -- public API (tests and the app entry point use these) ---------------------------------
    @property
    def document(self) -> MaskDocument | None:
        return self._doc

    @property
    def mask(self) -> np.ndarray | None:
        return self._doc.labels if self._doc is not None else None

    @property
    def current(self) -> ImageEntry | None:
        return self.store.current

    @property
    def job_running(self) -> bool:
        return self.segmentation.running or self.saver.export_task is not None

    def open_images(self, paths: Iterable[str | os.PathLike]) -> int:
        return self.opener.open_paths(list(paths))

    def open_folder(self, folder: str | os.PathLike) -> int:
        return self.opener.open_folder(folder)

    def load_model(self, path_or_name: str | os.PathLike) -> None:
        """Load "small", "large" or a weights file in the background (model_ready / model_failed)."""
        self.seg.load_model(path_or_name)

    def start_background_loading(self) -> None:
        """Import torch and load the saved model on a thread; call after the window is shown."""
        self.seg.start()

    def handle_drop(self, mime: QMimeData) -> int:
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        return self.opener.open_dropped(paths) if paths else 0

    def remember_recent(self, path: str | os.PathLike) -> None:
        self.settings.add_recent(str(path))

    # -- wiring -------------------------------------------------------------------------------
    def _wire(self) -> None:
        a, c, o, s = self.commands, self.canvas, self.opener, self.saver
        a.open.triggered.connect(o.ask_open)
        a.open_folder.triggered.connect(o.ask_open_folder)
        self.menus.recent.aboutToShow.connect(lambda: o.fill_recent_menu(self.menus.recent))
        self.menus.samples.aboutToShow.connect(lambda: o.fill_samples_menu(self.menus.samples))
        o.fill_samples_menu(self.menus.samples)
        a.import_mask.triggered.connect(s.import_mask)
        a.save.triggered.connect(lambda: s.save())
        a.save_as.triggered.connect(s.save_as)
        a.export.triggered.connect(s.export)
        a.export_all.triggered.connect(s.export_all)
        a.close_image.triggered.connect(o.close_current)
        a.quit.triggered.connect(self.close)
        a.next_image.triggered.connect(lambda: o.step(1))
        a.prev_image.triggered.connect(lambda: o.step(-1))
        a.undo.triggered.connect(self.undo)
        a.redo.triggered.connect(self.redo)
        for name in ("brush", "eraser", "fill", "polygon", "picker"):
            getattr(a, name).triggered.connect(lambda _=False, n=name: c.set_tool(n))
        a.brush_smaller.triggered.connect(lambda: self.step_brush(-1))
        a.brush_larger.triggered.connect(lambda: self.step_brush(1))
        for n, action in enumerate(a.class_keys):
            action.triggered.connect(lambda _=False, n=n: self.select_class(n))
        a.add_class.triggered.connect(self.add_class)
        a.zoom_in.triggered.connect(lambda: c.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: c.zoom_by(0.8))
        a.fit.triggered.connect(c.fit)
        a.actual_size.triggered.connect(c.actual_size)
        a.toggle_mask.toggled.connect(self._on_mask_toggled)
        a.outline.toggled.connect(self._on_outline_toggled)
        slider = self.class_panel.opacity_slider
        a.opacity_down.triggered.connect(lambda: slider.setValue(slider.value() - OPACITY_STEP))
        a.opacity_up.triggered.connect(lambda: slider.setValue(slider.value() + OPACITY_STEP))
        slider.valueChanged.connect(self._on_opacity)
        a.cancel.triggered.connect(self.cancel_job)
        a.about.triggered.connect(self._about)
        a.shortcuts.triggered.connect(self._show_shortcuts)
        self.brush_spin.valueChanged.connect(self._on_brush_spin)
        p = self.class_panel
        p.active_requested.connect(self._on_class_requested)
        p.visibility_changed.connect(c.set_class_visible)
        p.edit_requested.connect(self.edit_class)
        p.add_requested.connect(self.add_class)
        self.file_panel.activated.connect(self.show_entry)
        c.pointer_moved.connect(self._on_pointer)
        c.zoom_changed.connect(self.status.set_zoom)
        c.picked.connect(self._on_picked)
        c.edit_refused.connect(lambda text: self.status.message(text, 4000))
        c.request_pyramid = self._build_pyramid

    def _restore_settings(self) -> None:
        st = self.settings
        self.class_panel.opacity_slider.setValue(st.opacity)
        self.canvas.set_opacity(st.opacity / 100)
        self.commands.outline.setChecked(st.outline)
        self._brush_size = st.brush_size
        self.brush_spin.setValue(self._brush_size)
        self.resize(1280, 800)
        if st.geometry is not None:
            restore_geometry(self, st.geometry)  # refuses garbage and off-screen positions
        if st.window_state is not None:
            self.restoreState(st.window_state)
        else:
            self.resizeDocks([self.file_dock, self.class_dock], [220, 270], Qt.Orientation.Horizontal)

    # -- the current image ----------------------------------------------------------------------
    def show_entry(self, entry: ImageEntry | None) -> str | None:
        """Show ``entry`` (None: nothing); returns why it cannot be shown, or None if it was."""
        if entry is None:
            self.store.current = None
            self._bind(None)
            self.canvas.clear()
            self.canvas.placeholder = "Open an image (Ctrl+O), a folder, or drop files here"
            self._after_switch(None)
            return None
        if entry is self.store.current and entry.doc is not None and self._doc is entry.doc:
            return None
        try:
            note = load_entry(entry, self.class_template)
        except (ImageReadError, MemoryError) as exc:
            message = str(exc) or f"{entry.name}: not enough memory to open it."
            entry.error = message
            self.store.current = entry
            self._bind(None)
            self.canvas.clear()
            self.canvas.placeholder = f"Cannot show {entry.name}\n\n{message}"
            self._after_switch(entry)
            self.status.message(message, 10000)
            return message
        entry.error = None
        self.store.current = entry
        for dropped in self.store.touch(entry):
            self.file_panel.refresh(dropped)
        doc = entry.doc
        assert doc is not None and entry.image is not None
        doc.set_brush_size(self._brush_size)
        previous = self._doc.active_class if self._doc is not None else None
        if previous is not None and any(c.id == previous for c in doc.classes):
            doc.set_active_class(previous)
        self._bind(doc)
        self.canvas.set_content(entry.image.rgb, doc, entry.levels)
        self._after_switch(entry)
        image = entry.image
        info = f"{entry.name}: {image.width}x{image.height}"
        if image.conversion:
            info += f" ({image.conversion})"
        self.status.message(note or info, 8000)
        return None

    def _after_switch(self, entry: ImageEntry | None) -> None:
        self.class_panel.set_document(self._doc, self.canvas.hidden_classes)
        if entry is not None:
            self.file_panel.refresh(entry)
        self.file_panel.select(entry)
        self._update_title()
        self._update_edit_actions()
        self.image_shown.emit(entry)

    def _bind(self, doc: MaskDocument | None) -> None:
        old, self._doc = self._doc, doc
        pairs = (("dirty_changed", self._on_dirty), ("history_changed", self._update_edit_actions),
                 ("brush_size_changed", self._on_brush_size),
                 ("classes_changed", self._on_classes_changed))
        for name, slot in pairs:
            if old is not None:
                getattr(old, name).disconnect(slot)
            if doc is not None:
                getattr(doc, name).connect(slot)

    def _build_pyramid(self, layer: ImageLayer) -> None:
        entry, rgb = self.store.current, layer.rgb
        task = start_task(lambda _rep: build_pyramid(rgb), "pyramid")
        self._pyramid_tasks.add(task)

        def done(levels) -> None:
            self._pyramid_tasks.discard(task)
            layer.set_levels(levels)
            if entry is not None and entry.image is not None and entry.image.rgb is rgb:
                entry.levels.update(levels)

        task.finished.connect(done)
        task.failed.connect(lambda _m: self._pyramid_tasks.discard(task))

    # -- document events ----------------------------------------------------------------------
    def _on_dirty(self, _dirty: bool) -> None:
        self._update_title()
        if self.store.current is not None:
            self.file_panel.refresh(self.store.current)

    def _update_title(self) -> None:
        entry = self.store.current
        if entry is None:
            self.setWindowTitle(APP_NAME)
            self.setWindowModified(False)
            return
        self.setWindowTitle(f"{entry.name}[*] — {APP_NAME}")
        self.setWindowModified(entry.dirty)

    def _update_edit_actions(self) -> None:
        doc, a = self._doc, self.commands
        editable = doc is not None and not self.segmentation.running
        a.undo.setEnabled(editable and doc.can_undo)
        a.redo.setEnabled(editable and doc.can_redo)
        undo_label = doc.history.undo_label if doc is not None else None
        redo_label = doc.history.redo_label if doc is not None else None
        a.undo.setText(f"&Undo {undo_label}" if undo_label else "&Undo")
        a.redo.setText(f"&Redo {redo_label}" if redo_label else "&Redo")
        has = doc is not None
        for action in (a.save, a.save_as, a.export, a.import_mask, a.close_image):
            action.setEnabled(has and (action is a.close_image or not self.job_running))
        a.segment.setEnabled(has and not self.job_running)
        a.segment_all.setEnabled(len(self.store) > 0 and not self.job_running)
        a.export_all.setEnabled(len(self.store) > 0 and not self.job_running)
        a.train.setEnabled(len(self.store) > 0 and not self.job_running)

    def _on_classes_changed(self) -> None:
        if self._doc is not None:
            self.class_template = self._doc.classes

    def _on_brush_size(self, size: int) -> None:
        self._brush_size = size
        self.settings.brush_size = size
        if self.brush_spin.value() != size:
            self.brush_spin.setValue(size)

    def job_state_changed(self) -> None:
        """Enable/disable what a running job forbids (tools, segment, saving)."""
        running = self.job_running
        seg = self.segmentation.running
        self.commands.cancel.setEnabled(running)
        self.canvas.set_editing_enabled(not seg)
        for name in ("brush", "eraser", "fill", "polygon", "picker", "load_weights"):
            getattr(self.commands, name).setEnabled(not seg)
        if not running:
            self.status.hide_progress()
        self._update_edit_actions()

    # -- commands -----------------------------------------------------------------------------
    def undo(self) -> None:
        if self._doc is not None and not self.segmentation.running:
            self.canvas.tool.cancel()
            self._doc.undo()

    def redo(self) -> None:
        if self._doc is not None and not self.segmentation.running:
            self.canvas.tool.cancel()
            self._doc.redo()

    def cancel_job(self) -> None:
        if self.segmentation.running:
            self.seg.cancel()
        elif self.saver.export_task is not None:
            self.saver.export_task.cancel()

    def step_brush(self, direction: int) -> None:
        size = self._brush_size
        new = max(size + 1, round(size * 1.2)) if direction > 0 else min(size - 1, round(size / 1.2))
        self.brush_spin.setValue(max(1, min(500, new)))

    def _on_brush_spin(self, value: int) -> None:
        self._brush_size = value
        self.settings.brush_size = value
        if self._doc is not None:
            self._doc.set_brush_size(value)

    def select_class(self, class_id: int) -> None:
        doc = self._doc
        if doc is None:
            return
        if any(c.id == class_id for c in doc.classes):
            doc.set_active_class(class_id)
            self.status.message(f"Painting with {self._class_name(class_id)}", 3000)
        else:
            self.status.message(f"There is no class {class_id}; add classes in the Classes panel.", 5000)

    def _on_class_requested(self, class_id: int) -> None:
        if self._doc is not None:
            self._doc.set_active_class(class_id)

    def _class_name(self, class_id: int) -> str:
        doc = self._doc
        for c in doc.classes if doc is not None else []:
            if c.id == class_id:
                return f"{c.name} ({c.id})"
        return f"class {class_id}"

    def add_class(self) -> None:
        doc = self._doc
        if doc is None:
            return
        classes = doc.classes
        new_id = max(c.id for c in classes) + 1
        if new_id > 255:
            dialogs.show_error(self, "Add Class", "A mask holds at most 256 classes (ids 0-255).")
            return
        doc.set_classes(classes + [ClassInfo(new_id, f"class {new_id}", default_color(new_id))])
        doc.set_active_class(new_id)

    def edit_class(self, class_id: int) -> None:
        doc = self._doc
        info = next((c for c in doc.classes if c.id == class_id), None) if doc is not None else None
        if info is None:
            return
        new = dialogs.ask_class_edit(self, info)
        if new is not None and new != info:
            doc.set_classes([new if c.id == class_id else c for c in doc.classes])

    def _on_picked(self, class_id: int) -> None:
        self.status.message(f"Picked {self._class_name(class_id)}", 3000)

    def _on_opacity(self, value: int) -> None:
        self.canvas.set_opacity(value / 100)
        self.settings.opacity = value

    def _on_mask_toggled(self, shown: bool) -> None:
        self.canvas.set_mask_visible(shown)
        self.commands.toggle_mask.setIcon(icon("eye" if shown else "eye-off"))

    def _on_outline_toggled(self, on: bool) -> None:
        self.canvas.set_outline(on)
        self.settings.outline = on

    def _on_pointer(self, pos) -> None:
        doc, entry = self._doc, self.store.current
        if pos is None or doc is None or entry is None or entry.image is None:
            self.status.set_pointer("")
            return
        x, y = int(pos[0]), int(pos[1])
        cid = int(doc.labels[y, x])
        r, g, b = (int(v) for v in entry.image.rgb[y, x])
        self.status.set_pointer(f"x {x}, y {y}   {self._class_name(cid)}   RGB {r}, {g}, {b}")

    def _about(self) -> None:
        dialogs.show_info(self, f"About {APP_NAME}",
                          f"{APP_NAME}: segment images with UNets, then correct the masks by hand.\n\n"
                          "Masks are saved as <image>_mask.png beside each image.")

    def _show_shortcuts(self) -> None:
        a = self.commands
        rows = [(x.text().replace("&", ""), x.shortcut().toString()) for x in
                (a.brush, a.eraser, a.fill, a.polygon, a.picker, a.brush_smaller, a.brush_larger,
                 a.undo, a.redo, a.segment, a.cancel, a.toggle_mask, a.outline, a.opacity_down,
                 a.opacity_up, a.fit, a.actual_size, a.next_image, a.prev_image, a.save)]
        text = "\n".join(f"{keys:>14}   {name}" for name, keys in rows)
        dialogs.show_info(self, "Keyboard Shortcuts", text + "\n\n      0 - 9   choose the class"
                          "\n Space+drag   pan (or middle-drag)\n      Wheel   zoom at the pointer"
                          "\n  Alt+click   pick the class under the pointer")

    # -- window events ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        event.acceptProposedAction()
        mime = QMimeData()
        mime.setUrls(event.mimeData().urls())
        QTimer.singleShot(0, lambda: self.handle_drop(mime))  # leave the drag loop first

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.training.shutdown()
        self.segmentation.shutdown()
        if self.saver.export_task is not None:
            self.saver.export_task.cancel()
            self.saver.export_task.wait()
        if not self.saver.resolve_all_unsaved():
            event.ignore()
            return
        for task in list(self._pyramid_tasks):
            task.wait()
        self.autosave.close_session()  # all saved or discarded: no recovery copies, no lock
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.sync()
        event.accept()
