"""Menu bar and tool bar layout: where each action appears (the actions live in gui.menus.actions)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QSizePolicy, QSpinBox, QToolBar, QWidget

from core.document.mask_document import MAX_BRUSH, MIN_BRUSH
from gui.menus.actions import Actions


@dataclass
class Menus:
    file: QMenu
    recent: QMenu
    samples: QMenu
    edit: QMenu
    view: QMenu
    outline_width: QMenu
    segment: QMenu
    model: QMenu
    help: QMenu
    train: QMenu | None = None
    objects: QMenu | None = None


def build_menus(window: QMainWindow, a: Actions) -> Menus:
    bar = window.menuBar()
    file = bar.addMenu("&File")
    file.addActions([a.open, a.open_folder, a.open_stack_folder])
    recent = file.addMenu("Open &Recent")
    recent.setObjectName("menu_recent")
    recent.setToolTipsVisible(True)
    samples = file.addMenu("Open &Sample")
    samples.setObjectName("menu_samples")
    samples.setToolTipsVisible(True)
    file.addSeparator()
    file.addActions([a.import_mask, a.save, a.save_as, a.export, a.export_all])
    file.addSeparator()
    file.addActions([a.prev_image, a.next_image, a.close_image])
    file.addSeparator()
    file.addAction(a.quit)

    edit = bar.addMenu("&Edit")
    edit.addActions([a.undo, a.redo])
    edit.addSeparator()
    edit.addActions([a.brush, a.eraser, a.fill, a.polygon, a.picker, a.stroke, a.stroke_eraser])
    edit.addSeparator()
    edit.addActions([a.brush_smaller, a.brush_larger, a.add_class])

    view = bar.addMenu("&View")
    view.addActions([a.zoom_in, a.zoom_out, a.fit, a.actual_size])
    view.addSeparator()
    view.addActions([a.toggle_mask, a.outline])
    outline_width = view.addMenu("Outline &Width")
    view.addActions([a.opacity_down, a.opacity_up])
    view.addSeparator()
    view.addActions([a.prev_plane, a.next_plane, a.prev_time, a.next_time])
    view.addAction(a.uncertainty)
    view.addSeparator()
    view.addAction(a.tile_cache)

    segment = bar.addMenu("&Segment")
    segment.addActions([a.segment, a.segment_view, a.segment_stack, a.segment_all, a.cancel])
    stack_options = segment.addMenu("Stack &Options")
    stack_options.setObjectName("menu_stack_options")
    stack_options.setToolTipsVisible(True)
    stack_options.addActions([a.smooth_z, a.stitch_z])

    model = bar.addMenu("&Model")
    model.setObjectName("menu_model")

    train = bar.addMenu("&Train")
    train.setObjectName("menu_train")
    train.addAction(a.train)
    train.addSeparator()
    train.addActions([a.live_training, a.stroke, a.stroke_eraser, a.uncertainty])

    objects = bar.addMenu("&Objects")
    objects.setObjectName("menu_objects")
    objects.addAction(a.objects_mode)
    objects.addSeparator()
    objects.addActions(list(a.object_tool_actions.values()))
    objects.addSeparator()
    objects.addActions([a.delete_selected_object, a.export_objects])

    help_menu = bar.addMenu("&Help")
    help_menu.addActions([a.getting_started, a.shortcuts, a.about])
    return Menus(file, recent, samples, edit, view, outline_width, segment, model, help_menu, train=train,
                 objects=objects)


def build_toolbar(window: QMainWindow, a: Actions) -> tuple[QToolBar, QSpinBox]:
    """The main tool bar; returns it and the brush size spin box it holds."""
    bar = QToolBar("Tools", window)
    bar.setObjectName("toolbar_main")
    bar.setIconSize(QSize(20, 20))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    bar.setMovable(False)
    bar.addActions([a.open, a.open_folder, a.save])
    bar.addSeparator()
    bar.addActions([a.undo, a.redo])
    bar.addSeparator()
    bar.addActions([a.brush, a.eraser, a.fill, a.polygon, a.picker])
    size = QSpinBox()
    size.setObjectName("brush_size")
    size.setRange(MIN_BRUSH, MAX_BRUSH)
    size.setSuffix(" px")
    size.setToolTip("Brush diameter in image pixels ([ and ] change it)")
    size.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    label = QLabel(" Size ")
    bar.addWidget(label)
    bar.addWidget(size)
    bar.addSeparator()
    for action in (a.segment, a.segment_view, a.segment_stack, a.segment_all):
        bar.addAction(action)
        button = bar.widgetForAction(action)
        if action is a.segment and button is not None:
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    bar.addAction(a.cancel)
    bar.addSeparator()
    bar.addActions([a.toggle_mask, a.outline])
    bar.addSeparator()
    bar.addActions([a.stroke, a.stroke_eraser, a.live_training, a.uncertainty])
    live = bar.widgetForAction(a.live_training)
    if live is not None:
        live.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    bar.addSeparator()
    bar.addAction(a.objects_mode)
    bar.addActions(list(a.object_tool_actions.values()))
    bar.addSeparator()
    bar.addActions([a.zoom_in, a.zoom_out, a.fit, a.actual_size])
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    bar.addWidget(spacer)
    bar.addActions([a.prev_image, a.next_image])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    return bar, size
