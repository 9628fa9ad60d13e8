"""The main window: composes the state, the views and the controllers, and connects them.

Behaviour lives in the parts: state in gui.state (evented), flows in gui.controllers, views in
gui.canvas and gui.panels.  Nothing here keeps a copy of state or pushes a refresh; the few
methods below are the public API that scripts, tests and the app entry point use.
"""

from __future__ import annotations

import os
from operator import attrgetter
from pathlib import Path
from typing import Iterable

import numpy as np
from PySide6.QtCore import QMimeData, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QVBoxLayout, QWidget

from core.document.mask_document import MaskDocument
from core.resources import sample_images
from gui import dialogs
from gui.canvas.view import Canvas
from gui.controllers.autosave import Autosave
from gui.controllers.commands import CommandStates, bind_state_actions
from gui.controllers.editing import EditCommands
from gui.controllers.first_run import FirstRunGuide
from gui.controllers.live_training import LiveTrainingUi
from gui.controllers.objects import ObjectsUi
from gui.controllers.opening import Opener
from gui.controllers.planes import PlaneUi
from gui.controllers.pointer_readout import PointerReadout
from gui.controllers.preferences import ask_tile_memory, bind_settings
from gui.controllers.saving import Saver
from gui.controllers.segment_ui import SegmentUi
from gui.controllers.stack_segment import StackSegmentUi
from gui.controllers.training_ui import TrainingUi
from gui.dialogs.getting_started import GettingStartedDialog
from gui.dialogs.shortcuts_dialog import ShortcutsDialog
from gui.infra.settings import Settings, app_data_dir, restore_geometry
from gui.jobs.overview import OverviewBuilder
from gui.menus.actions import Actions
from gui.menus.layout import build_menus, build_toolbar
from gui.menus.outline_width_menu import OutlineWidthMenu
from gui.menus.shortcut_list import shortcut_rows, watch_shortcuts
from gui.panels.channel_panel import ChannelPanel
from gui.panels.class_panel import ClassPanel
from gui.panels.file_panel import FilePanel
from gui.panels.live_panel import LivePanel
from gui.panels.objects_panel import ObjectsPanel
from gui.panels.first_run_notice import FirstRunNotice
from gui.panels.minimap import MiniMap
from gui.panels.plane_bar import PlaneBar
from gui.panels.status_panel import StatusPanel
from gui.state.app_state import AppState
from gui.state.display import shown_pixels
from gui.state.image_store import ImageEntry

APP_NAME = "UNetSeg"
PLACEHOLDER = "Open an image (Ctrl+O), a folder, or drop files here"


def _alias(path: str) -> property:
    """A read-only window attribute for a part's attribute (``seg.finished``)."""
    return property(attrgetter(path), doc=f"the window's {path}")


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None, settings: Settings | None = None):
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.settings = st = settings or Settings()
        self.state = state = AppState()
        bind_settings(state, st)  # opacity, outlines, brush size: restored, then followed
        self.store = state.store

        # views
        self.commands = a = Actions(self)
        self.canvas = Canvas(state, self)
        self.first_run_notice = FirstRunNotice()
        self.first_run_notice.hide()
        self.plane_bar = PlaneBar(state.planes)  # the Z/T sliders under the view (hidden for 2-D images)
        self.setCentralWidget(self._central(self.first_run_notice, self.canvas, self.plane_bar))
        self.class_panel = ClassPanel(state, a.toggle_mask, a.outline)
        self.file_panel = FilePanel(self.store)
        self.class_dock = self._dock("Classes", "dock_classes", self.class_panel,
                                     Qt.DockWidgetArea.RightDockWidgetArea)
        self.file_dock = self._dock("Images", "dock_images", self.file_panel,
                                    Qt.DockWidgetArea.LeftDockWidgetArea)
        self.live_panel = LivePanel(state.live)
        self.live_dock = self._dock("Live Training", "dock_live", self.live_panel,
                                    Qt.DockWidgetArea.RightDockWidgetArea)
        self.live_dock.hide()  # shown when Live Training is first turned on
        self.overviews = OverviewBuilder(app_data_dir() / "overviews", self)
        self.minimap = MiniMap(self.store, state.display, self.overviews)
        self.overview_dock = self._dock("Overview", "dock_overview", self.minimap,
                                        Qt.DockWidgetArea.LeftDockWidgetArea)
        self.channel_panel = ChannelPanel(state.display)
        self.channel_dock = self._dock("Channels", "dock_channels", self.channel_panel,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.objects_panel = ObjectsPanel(state.objects, a.export_objects)
        self.objects_dock = self._dock("Objects", "dock_objects", self.objects_panel,
                                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.objects_dock.hide()  # shown when Objects mode is first turned on
        self.status = StatusPanel(self.statusBar(), a.cancel, state)
        self.menus = build_menus(self, a)
        self.menus.view.addSeparator()
        self.menus.view.addActions([self.file_dock.toggleViewAction(), self.overview_dock.toggleViewAction(),
                                     self.class_dock.toggleViewAction(), self.channel_dock.toggleViewAction(),
                                     self.live_dock.toggleViewAction(), self.objects_dock.toggleViewAction()])
        self.menus.objects.addAction(self.objects_dock.toggleViewAction())
        self.toolbar, self.brush_spin = build_toolbar(self, a)
        self.outline_widths = OutlineWidthMenu(self.menus.outline_width, state.outline_width,
                                               state.set_outline_width)
        self.help_dialog: GettingStartedDialog | None = None
        self.shortcuts_dialog: ShortcutsDialog | None = None

        # controllers
        self.saver = Saver(state, st, self)
        self.seg = SegmentUi(state, st, self, a, self.menus.model, self.canvas.visible_box)
        c = self.seg.controller
        self.stack_seg = StackSegmentUi(state, self, a, self.seg.models, lambda: (c.tile_size, c.tta, c.refine))
        self.seg.segment_plane = self.stack_seg.segment_plane
        self.opener = Opener(state, st, self, self.saver.resolve_unsaved, self.seg.controller.shutdown)
        self.edit = EditCommands(state, self, self.canvas.cancel_tools)
        self.pointer = PointerReadout(state, self.canvas, self.status.set_pointer, self)
        self.plane_ui = PlaneUi(state, st, self, self.canvas, self.plane_bar, a, self.minimap.refresh)
        self.opener.open_stack_folder = self.plane_ui.open_stack_folder  # Open Recent of a stack folder
        self.training = TrainingUi(state, self, a.train, self.seg.models, self.saver.save, self.load_model)
        self.live = LiveTrainingUi(state, self, a.live_training, a.uncertainty, self.seg.models,
                                   lambda: (self.canvas.visible_box(), self.canvas.scale_factor))
        self.objects = ObjectsUi(state, self, self.canvas.center_on_image, a.objects_mode,
                                 a.delete_selected_object, a.export_objects)
        self.command_states = CommandStates(a, state, self)
        self.first_run = FirstRunGuide(st, sample_images(), self.first_run_notice.offer)
        self._wire()
        self.autosave = Autosave(state, self)  # recovery copies of unsaved masks; offers old ones
        self._restore_geometry()
        self._on_current(None)

    @staticmethod
    def _central(notice: QWidget, canvas: QWidget, plane_bar: QWidget) -> QWidget:
        """The canvas, with room above it for the first-run notice (hidden until offered)."""
        central = QWidget()
        central.setObjectName("central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(notice)
        layout.addWidget(canvas, 1)
        layout.addWidget(plane_bar)
        return central

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    # -- public API (tests, scripts and the app entry point use these) --------------------------
    @property
    def document(self) -> MaskDocument | None:
        return self.state.document.doc

    @property
    def mask(self) -> np.ndarray | None:
        doc = self.state.document.doc
        return doc.labels if doc is not None else None

    @property
    def current(self) -> ImageEntry | None:
        return self.store.current

    @property
    def class_template(self) -> list:
        return list(self.state.class_template)

    @property
    def job_running(self) -> bool:
        return self.state.job_running

    segmentation = _alias("seg.controller")  # the worker controller (tests wait on its signals)
    models = _alias("seg.models")

    # the controllers' signals, where scripts and tests have always found them
    model_ready = _alias("seg.model_ready")
    model_failed = _alias("seg.model_failed")
    segmentation_started = _alias("seg.started")
    segmentation_finished = _alias("seg.finished")
    segmentation_failed = _alias("seg.failed")
    segmentation_cancelled = _alias("seg.cancelled")
    segment_all_finished = _alias("seg.segment_all_finished")
    export_all_finished = _alias("saver.export_all_finished")

    def open_images(self, paths: Iterable[str | os.PathLike]) -> int:
        return self.opener.open_paths(list(paths))

    def open_folder(self, folder: str | os.PathLike) -> int:
        return self.opener.open_folder(folder)

    def show_entry(self, entry: ImageEntry | None) -> str | None:
        """Show ``entry`` (None: nothing); returns why it cannot be shown, or None if it was."""
        return self.state.show(entry)

    def load_model(self, path_or_name: str | os.PathLike) -> None:
        """Load "small", "large" or a weights file in the background (model_ready / model_failed)."""
        self.seg.load_model(path_or_name)

    def start_background_loading(self) -> None:
        """Import torch and load the saved model on a thread; call after the window is shown."""
        self.seg.start()

    def handle_drop(self, mime: QMimeData) -> int:
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        return self.opener.open_dropped(paths) if paths else 0

    def select_class(self, class_id: int) -> None:
        self.edit.select_class(class_id)

    def add_class(self) -> None:
        self.edit.add_class()

    def undo(self) -> None:
        self.edit.undo()

    def redo(self) -> None:
        self.edit.redo()

    def cancel_job(self) -> None:
        self.state.cancel_job()

    # -- wiring -------------------------------------------------------------------------------
    def _wire(self) -> None:
        a, c, o, s, e, state = self.commands, self.canvas, self.opener, self.saver, self.edit, self.state
        bind_state_actions(a, state)
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
        a.undo.triggered.connect(e.undo)
        a.redo.triggered.connect(e.redo)
        for n, action in enumerate(a.class_keys):
            action.triggered.connect(lambda _=False, n=n: e.select_class(n))
        a.add_class.triggered.connect(e.add_class)
        a.zoom_in.triggered.connect(lambda: c.zoom_by(1.25))
        a.zoom_out.triggered.connect(lambda: c.zoom_by(0.8))
        a.fit.triggered.connect(c.fit)
        a.actual_size.triggered.connect(c.actual_size)
        a.tile_cache.triggered.connect(lambda: ask_tile_memory(self, self.settings, c.tile_cache))
        c.tile_cache.budget = self.settings.tile_cache_mb * 1024 * 1024
        a.about.triggered.connect(self._about)
        a.shortcuts.triggered.connect(self._show_shortcuts)
        a.getting_started.triggered.connect(self._getting_started)
        watch_shortcuts(a, self._refresh_help, self)  # the help open keeps up with the keys (a stack's PgUp)
        state.events.outline_width.connect(self.outline_widths.show_width)
        notice, seg = self.first_run_notice, self.seg
        seg.image_segmented.connect(self.first_run.after_segment)
        notice.dismissed.connect(self.first_run.dismissed)
        notice.load_weights_requested.connect(seg.ask_weights)
        notice.train_requested.connect(a.train.trigger)
        notice.samples_requested.connect(lambda: o.open_paths(sample_images()))
        spin = self.brush_spin
        spin.setValue(state.brush_size)
        spin.valueChanged.connect(state.set_brush_size)
        state.events.brush_size.connect(lambda size: spin.setValue(size))
        self.class_panel.edit_requested.connect(e.edit_class)
        self.class_panel.add_requested.connect(e.add_class)
        self.channel_panel.color_requested.connect(e.ask_channel_color)
        self.file_panel.activated.connect(state.show)
        c.zoom_changed.connect(self.status.set_zoom)
        c.view_changed.connect(self.minimap.set_view)
        c.tile_failed.connect(lambda text: state.message.emit(text, 10000))
        self.minimap.jump_requested.connect(c.center_on_image)
        c.picked.connect(e.picked)
        c.edit_refused.connect(lambda text: state.message.emit(text, 4000))
        self.store.current_changed.connect(self._on_current)
        lp, live = self.live_panel, self.live
        lp.start_from_chosen.connect(live.choose_start)
        lp.hold_toggled.connect(live.hold)
        lp.roll_back_requested.connect(live.roll_back)
        lp.apply_requested.connect(live.apply)
        lp.save_requested.connect(lambda: live.save())
        lp.level_chosen.connect(live.choose_level)
        c.view_changed.connect(live.view_moved)
        state.live.events.on.connect(lambda on: on and self.live_dock.show())
        self.objects_panel.object_clicked.connect(self.objects.focus)
        state.objects.events.shown.connect(lambda on: on and self.objects_dock.show())
        self.store.entry_changed.connect(lambda entry: entry is self.store.current and self._update_title())

    def _restore_geometry(self) -> None:
        self.resize(1280, 800)
        st = self.settings
        if st.geometry is not None:
            restore_geometry(self, st.geometry)  # refuses garbage and off-screen positions
        if st.window_state is not None:
            self.restoreState(st.window_state)
        else:
            self.resizeDocks([self.file_dock, self.class_dock], [220, 270], Qt.Orientation.Horizontal)
            self.resizeDocks([self.class_dock, self.channel_dock], [420, 300], Qt.Orientation.Vertical)
            self.resizeDocks([self.file_dock, self.overview_dock], [420, 200], Qt.Orientation.Vertical)

    # -- the shown image ----------------------------------------------------------------------
    def _on_current(self, entry: ImageEntry | None) -> None:
        if entry is not None and entry.shown and entry.stack is not None:
            self.plane_ui.show_current()
        elif entry is not None and entry.shown and entry.source is not None:
            self.canvas.set_source(entry.source, entry.doc)
        elif entry is not None and entry.shown:
            self.canvas.set_content(shown_pixels(entry.image, self.state.display.view), entry.doc, entry.levels)
        else:
            self.canvas.clear()
            self.canvas.placeholder = (f"Cannot show {entry.name}\n\n{entry.error}" if entry is not None
                                       else PLACEHOLDER)
        self._update_title()

    def _update_title(self) -> None:
        entry = self.store.current
        if entry is None:
            self.setWindowTitle(APP_NAME)
            self.setWindowModified(False)
            return
        self.setWindowTitle(f"{entry.name}[*] — {APP_NAME}")
        self.setWindowModified(entry.dirty)

    def _about(self) -> None:
        dialogs.show_info(self, f"About {APP_NAME}",
                          f"{APP_NAME}: segment images with UNets, then correct the masks by hand.\n\n"
                          "Masks are saved as <image>_mask.png beside each image.")

    def _getting_started(self) -> None:
        """Help > Getting Started: the README walkthrough and the shortcuts (non-modal)."""
        rows = [(name, keys) for _, name, keys in shortcut_rows(self.menuBar(), self.commands)]
        if self.help_dialog is None:
            self.help_dialog = GettingStartedDialog(rows, self)
        else:
            self.help_dialog.set_shortcuts(rows)
        self.help_dialog.show()
        self.help_dialog.raise_()

    def _show_shortcuts(self) -> None:
        """Help > Keyboard Shortcuts (F1): the keys that work now (non-modal)."""
        rows = shortcut_rows(self.menuBar(), self.commands)
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = ShortcutsDialog(rows, self)
        else:
            self.shortcuts_dialog.set_rows(rows)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()

    def _refresh_help(self) -> None:
        """Rebuild the open help's shortcut lists after the keys changed."""
        rows = shortcut_rows(self.menuBar(), self.commands)
        if self.shortcuts_dialog is not None and self.shortcuts_dialog.isVisible():
            self.shortcuts_dialog.set_rows(rows)
        if self.help_dialog is not None and self.help_dialog.isVisible():
            self.help_dialog.set_shortcuts([(name, keys) for _, name, keys in rows])

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
        if not self.live.resolve_unsaved():  # a trained Live Training model never saved: ask first
            event.ignore()
            return
        self.training.shutdown()
        self.live.shutdown()
        self.seg.controller.shutdown()
        self.stack_seg.shutdown()
        self.saver.stop()
        if not self.saver.resolve_all_unsaved():
            event.ignore()
            return
        self.objects.shutdown()
        self.canvas.pyramids.wait()
        self.overviews.stop()
        self.autosave.close_session()  # all saved or discarded: no recovery copies, no lock
        self.settings.geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.sync()
        event.accept()
