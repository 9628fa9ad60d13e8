"""The image view: zoom, pan, the overlay's look, and pointer input routed to the edit tools.

Zoom and pan are the view's transform; edits go to the current MaskDocument through
gui.canvas.tools; the mask repaints from the document's ``changed(box)`` one dirty box at a
time.  The overlay's look (opacity, outlines, hidden classes, visibility), the tool and the
brush size are the app state's: the canvas observes them and never holds a copy.
"""

from __future__ import annotations


import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QTransform, QWheelEvent
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QFrame, QGraphicsScene, QGraphicsView,
                               QLineEdit, QPlainTextEdit, QTextEdit, QWidget)

from core.document.mask_document import MaskDocument
from core.io.sources import ImageSource
from core.model.normalize import sample_level
from core.document.editing import Box
from gui.canvas.cursor_items import BrushCursor, PolygonPreview
from gui.canvas.layers import ImageLayer, MaskLayer
from gui.canvas.live_layers import PredictionLayer, StrokeLayer, backdrop_luminance
from gui.canvas.memory_source import MemorySource
from gui.canvas.object_layer import ObjectLayer
from gui.canvas.object_tools import (DeleteTool, MergeTool, ObjectBrushTool, ObjectEraserTool, SelectTool,
                                     SplitTool)
from gui.canvas.pyramids import PyramidBuilder
from gui.canvas.tiled_layers import TiledImageLayer, TiledMaskLayer
from gui.canvas.tiled_strokes import TiledStrokeLayer
from gui.canvas.tiles import TileCache, TileLoader
from gui.canvas.tools import FillTool, PickerTool, PolygonTool, StrokeTool
from gui.canvas.tools import Tool as ToolHandler
from gui.state.app_state import AppState, Job, Tool

MIN_SCALE, MAX_SCALE = 1 / 64, 64.0
WHEEL_STEP = 1.25  # zoom factor per wheel notch
_TOOL_KEYS = (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Backspace)
_TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)


class Canvas(QGraphicsView):
    pointer_moved = Signal(object)  # (x, y) image coordinates, or None off the image
    content_shown = Signal()  # other pixels are drawn (another image or plane): what is under the pointer changed
    zoom_changed = Signal(float)
    view_changed = Signal(object)  # the Box of image pixels in view (mini-map, Segment View)
    tile_failed = Signal(str)  # a region of a large image could not be decoded
    picked = Signal(int)  # class id taken by the eyedropper (tool or Alt+click)
    edit_refused = Signal(str)  # why an edit did not happen (e.g. segmentation running)

    def __init__(self, state: AppState | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("canvas")
        self.state = state if state is not None else AppState()
        self._scene = QGraphicsScene(self)
        self._scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setScene(self._scene)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setBackgroundBrush(QColor(38, 40, 43))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the window takes dropped files
        self.viewport().setAcceptDrops(False)
        self.placeholder = "Open an image (Ctrl+O), a folder, or drop files here"

        self.document: MaskDocument | None = None
        self.image_layer: ImageLayer | None = None
        self.mask_layer: MaskLayer | None = None
        self.strokes_document: MaskDocument | None = None  # Live Training's strokes of the shown image
        self.stroke_layer: StrokeLayer | None = None
        self.prediction_layer: PredictionLayer | None = None
        self.object_layer: ObjectLayer | None = None  # the Objects mode's outlines
        self.brush_cursor = BrushCursor()
        self.brush_cursor.setVisible(False)
        self.polygon_preview = PolygonPreview()
        self.split_preview = PolygonPreview(line=True)
        self._scene.addItem(self.brush_cursor)
        self._scene.addItem(self.polygon_preview)
        self._scene.addItem(self.split_preview)

        self.editing_enabled = True
        self.pyramids = PyramidBuilder()
        self.tile_cache = TileCache()
        self._loader: TileLoader | None = None
        self._display_key: str | None = None  # the image whose display the layers draw with
        self._shown_size = (0, 0)
        self.horizontalScrollBar().valueChanged.connect(self._emit_view)
        self.verticalScrollBar().valueChanged.connect(self._emit_view)

        doc = lambda: self.document  # noqa: E731
        strokes = lambda: self.strokes_document  # noqa: E731
        scale = lambda: self.scale_factor  # noqa: E731
        self._tools: dict[Tool, ToolHandler] = {
            Tool.BRUSH: StrokeTool("brush", doc, scale),
            Tool.ERASER: StrokeTool("eraser", doc, scale),
            Tool.FILL: FillTool(doc, scale, self.visible_box, self._fill_clipped),
            Tool.POLYGON: PolygonTool(doc, scale, self.polygon_preview),
            Tool.PICKER: PickerTool(doc, scale, self.picked.emit),
            Tool.STROKE: StrokeTool("brush", strokes, scale),
            Tool.STROKE_ERASER: StrokeTool("eraser", strokes, scale),
        }
        objects = self.state.objects
        hooks = (lambda i: setattr(objects, "selected", int(i)), lambda: objects.selected, self.edit_refused.emit)
        active = lambda: self.state.active_class  # noqa: E731
        self._tools.update({
            Tool.OBJECT_SELECT: SelectTool(doc, scale, *hooks),
            Tool.OBJECT_BRUSH: ObjectBrushTool(doc, scale, *hooks, class_id=active),
            Tool.OBJECT_ERASER: ObjectEraserTool(doc, scale, *hooks),
            Tool.OBJECT_DELETE: DeleteTool(doc, scale, *hooks),
            Tool.OBJECT_MERGE: MergeTool(doc, scale, *hooks),
            Tool.OBJECT_SPLIT: SplitTool(doc, scale, *hooks, preview=self.split_preview),
        })
        self.tool: ToolHandler = self._tools[self.state.tool]
        self._active_tool: ToolHandler | None = None  # the tool that got the press (Alt: picker)
        self._pan_from: QPointF | None = None
        self._space = False
        self._fit_mode = True
        self._update_cursor()
        st, ev, docs = self.state, self.state.events, self.state.document
        for event in (ev.opacity, ev.outline, ev.outline_width, ev.hidden_classes):
            event.connect(self.restyle)
        ev.mask_visible.connect(self._on_mask_visible)
        ev.tool.connect(self._on_tool)
        ev.brush_size.connect(self._on_brush_size)
        ev.job.connect(self._on_job)
        docs.changed.connect(self._on_changed)
        docs.reset.connect(self._on_reset)
        docs.classes_changed.connect(self.restyle)
        st.strokes.changed.connect(self._on_strokes_changed)
        st.strokes.reset.connect(lambda: self.stroke_layer is not None and self.stroke_layer.update())
        st.live.events.prediction.connect(self._show_prediction)
        st.live.events.show_uncertainty.connect(
            lambda on: self.prediction_layer is not None and self.prediction_layer.set_show_uncertainty(on))
        st.display.events.view.connect(self._on_display)
        docs.objects_changed.connect(self._on_objects_changed)
        docs.objects_reset.connect(lambda: self.object_layer is not None and self.object_layer.update())
        st.objects.events.shown.connect(self._on_objects_shown)
        st.objects.events.selected.connect(self.restyle)
        self.brush_cursor.set_radius(st.brush_size / 2)

    # -- what the state says ------------------------------------------------------------------
    @property
    def opacity(self) -> float:
        return self.state.opacity / 100

    @property
    def outline(self) -> bool:
        return self.state.outline

    @property
    def hidden_classes(self) -> frozenset:
        return self.state.hidden_classes

    @property
    def mask_visible(self) -> bool:
        return self.state.mask_visible

    # -- content ------------------------------------------------------------------------------
    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def set_content(self, pixels: np.ndarray, doc: MaskDocument, levels: dict | None = None) -> None:
        """Show ``pixels`` with ``doc``'s mask (keeps the zoom when the size is unchanged): 8-bit
        RGB as it is, or raw channels rendered per tile with the state's display (gui.state.display)."""
        same_size = self._shown_size == pixels.shape[:2]
        self.clear()
        self.state.document.bind(doc)  # already bound when the state showed it
        self.document = doc
        mask = MaskLayer(lambda: doc.labels, pixels.shape[0], pixels.shape[1])
        if self.state.display.view.compositor() is not None:
            self._show_layers(self._tiled(MemorySource(pixels)), mask, same_size)
        else:
            self.image_layer = ImageLayer(pixels, self._on_pyramid_request)
            if levels:
                self.image_layer.levels = levels
            self._show_layers(self.image_layer, mask, same_size)
        if doc.objects is not None:
            layer = doc.objects
            self.object_layer = ObjectLayer(lambda: layer.labels if layer.allocated else None, *doc.shape)
            self.object_layer.setVisible(self.state.objects.shown)
            self._scene.addItem(self.object_layer)
            self.restyle()
        strokes = self.state.strokes.doc
        if strokes is not None and strokes.shape == doc.shape and not strokes.is_chunked:
            step = max(1, int(math.sqrt(pixels.shape[0] * pixels.shape[1] / 65536)))
            self._show_strokes(strokes, StrokeLayer(lambda: strokes.labels, *strokes.shape), pixels[::step, ::step])

    def set_source(self, source: ImageSource, doc: MaskDocument) -> None:
        """Show an image of any size from its lazy ``source`` with a chunked mask ``doc`` (and its
        chunked strokes, gui.canvas.tiled_strokes)."""
        same_size = self._shown_size == (source.height, source.width)
        self.clear()
        self.state.document.bind(doc)
        self.document = doc
        self._show_layers(self._tiled(source), TiledMaskLayer(doc.labels), same_size)
        strokes = self.state.strokes.doc
        if strokes is not None and strokes.shape == doc.shape and strokes.is_chunked:
            level = sample_level(source.levels, 2**20)  # a level of a few tiles (its middle, when none is)
            w, h = source.levels[level]
            y0, x0 = max(0, h // 2 - 512), max(0, w // 2 - 512)
            read = source.read if self.state.display.view.compositor() is None else source.read_raw
            sample = read(y0, min(h, y0 + 1024), x0, min(w, x0 + 1024), level=level)
            self._show_strokes(strokes, TiledStrokeLayer(lambda: strokes.labels), sample)

    def _show_strokes(self, strokes: MaskDocument, layer: StrokeLayer, sample: np.ndarray) -> None:
        """Add Live Training's stroke layer, its outline and background colour chosen against
        ``sample`` of the image (raw channels go through the channel display)."""
        self.strokes_document, self.stroke_layer = strokes, layer
        compositor = self.state.display.view.compositor()
        layer.set_backdrop(backdrop_luminance(sample if compositor is None else compositor.rgb(sample)))
        self._scene.addItem(layer)
        self.restyle()

    def _tiled(self, source) -> TiledImageLayer:
        """The tiled image layer of ``source``, its tiles rendered with the state's display."""
        self._loader = loader = TileLoader(source, self.tile_cache, self)
        loader.failed.connect(self.tile_failed)
        loader.ready.connect(lambda key: self._tile_ready(loader, key))
        self._display_key = self.state.display.view.key
        self._loader.set_compositor(self.state.display.view.compositor())
        self.image_layer = TiledImageLayer(source, self.tile_cache, self._loader)
        return self.image_layer

    def _show_layers(self, image, mask, same_size: bool) -> None:
        self.mask_layer = mask
        mask.setVisible(self.mask_visible)
        self._scene.addItem(image)
        self._scene.addItem(mask)
        rect = image.boundingRect()
        self.prediction_layer = PredictionLayer(int(rect.height()), int(rect.width()))
        self.prediction_layer.set_show_uncertainty(self.state.live.show_uncertainty)
        self._scene.addItem(self.prediction_layer)
        self._scene.setSceneRect(rect)
        self._shown_size = (int(rect.height()), int(rect.width()))
        self.restyle()
        if not same_size or self._fit_mode:
            self.fit()
        self.viewport().update()
        self._emit_view()
        self.content_shown.emit()

    def rgb_at(self, x: int, y: int) -> tuple[int, int, int] | None:
        return self.image_layer.pixel(x, y) if self.image_layer is not None else None

    def values_at(self, x: int, y: int) -> tuple | None:
        """The raw channel values at (x, y) when at hand (a slide's tile may not be decoded)."""
        return self.image_layer.values(x, y) if self.image_layer is not None else None

    @property
    def level_in_use(self) -> int:
        """The pyramid level the image is drawn from (0 = full resolution)."""
        return self.image_layer.level_in_use if self.image_layer is not None else 0

    def visible_box(self) -> Box:
        """The image pixels in view, clipped to the image."""
        rect = self.mapToScene(self.viewport().rect()).boundingRect()
        h, w = self._shown_size
        return Box(max(0, int(rect.top())), max(0, int(rect.left())),
                   min(h, math.ceil(rect.bottom())), min(w, math.ceil(rect.right())))

    def center_on_image(self, x: float, y: float) -> None:
        self.centerOn(x, y)
        self._emit_view()

    def _emit_view(self, *_) -> None:
        if self.image_layer is not None:
            self.view_changed.emit(self.visible_box())

    def clear(self) -> None:
        for tool in self._tools.values():
            tool.cancel()
        self.document = self.strokes_document = None
        for item in (self.image_layer, self.mask_layer, self.stroke_layer, self.prediction_layer, self.object_layer):
            if item is not None:
                self._scene.removeItem(item)
        self.image_layer = self.mask_layer = self.stroke_layer = self.prediction_layer = None
        self.object_layer = None
        self._display_key = None
        if self._loader is not None:
            self._loader.stop()
            self._loader.source = None  # its pixels go now, not when Qt gets to deleting it (a stack's plane)
            self._loader.deleteLater()  # tiles it still announces are ignored (_tile_ready)
            self._loader = None
            self.tile_cache.clear()
        self._shown_size = (0, 0)
        self.brush_cursor.setVisible(False)
        self._scene.setSceneRect(QRectF(0, 0, 1, 1))
        self.viewport().update()

    def _on_pyramid_request(self, layer: ImageLayer) -> None:
        self.pyramids.request(layer, self.state.current)

    # -- overlay look -------------------------------------------------------------------------
    def restyle(self, *_) -> None:
        if self.mask_layer is not None and self.document is not None:
            classes, hidden = self.document.classes, set(self.hidden_classes)
            self.mask_layer.set_style(classes, self.opacity, hidden, self.outline, self.state.outline_width)
            if self.stroke_layer is not None:
                self.stroke_layer.set_style(classes, hidden=hidden)
            if self.prediction_layer is not None:
                self.prediction_layer.set_style(classes, self.opacity, hidden, self.state.outline_width)
            if self.object_layer is not None:
                self.object_layer.set_style(self.opacity, self.state.outline_width, self.state.objects.selected)

    def _on_strokes_changed(self, box: Box) -> None:
        if self.stroke_layer is not None and self.strokes_document is self.state.strokes.doc:
            self.stroke_layer.update_box(box, self.scale_factor)

    def _show_prediction(self, prediction) -> None:
        """Draw Live Training's prediction of a region of the shown image (None: none)."""
        layer, current = self.prediction_layer, self.state.current
        if layer is None:
            return
        if prediction is None or current is None or prediction.image != current.view_key:
            layer.set_prediction(None, None, None)
        else:
            layer.set_prediction(prediction.box, prediction.labels, prediction.uncertainty, prediction.instances,
                                 prediction.factor)

    def _tile_ready(self, loader: TileLoader, key) -> None:
        """A decoded tile, delivered after the image may have changed: only the shown layer's."""
        if loader is self._loader and isinstance(self.image_layer, TiledImageLayer):
            self.image_layer.tile_ready(key)

    def _on_display(self, view, *_) -> None:
        """The channel display changed: redraw from the raw pixels (not when it is another
        image's: the state sets the new image's display before the window shows it)."""
        if self.image_layer is not None and view.key == self._display_key and not view.photo:
            self.image_layer.set_compositor(view.compositor())

    def _on_mask_visible(self, visible: bool) -> None:
        if self.mask_layer is not None:
            self.mask_layer.setVisible(visible)

    def _on_changed(self, box: Box) -> None:
        if self.mask_layer is not None and self.document is self.state.document.doc:
            self.mask_layer.update_box(box, self.scale_factor)

    def _on_objects_changed(self, box: Box) -> None:
        if self.object_layer is not None and self.document is self.state.document.doc:
            self.object_layer.update_box(box, self.scale_factor)

    def _on_objects_shown(self, shown: bool) -> None:
        if self.object_layer is not None:
            self.object_layer.setVisible(shown)

    def _on_reset(self) -> None:
        if self.mask_layer is not None:
            self.mask_layer.update()

    def _on_brush_size(self, size: int) -> None:
        self.brush_cursor.set_radius(size / 2)

    # -- tools --------------------------------------------------------------------------------
    def _on_tool(self, tool: Tool) -> None:
        self.tool.cancel()
        self.tool = self._tools[Tool(tool)]
        self._update_cursor()

    def _fill_clipped(self, refused: bool) -> None:
        self.edit_refused.emit("Zoom in to fill: the view is too large a region to fill at once." if refused
                               else "The fill stopped at the edge of the view; the region goes on beyond it.")

    def cancel_tools(self) -> None:
        """Drop unfinished input (an open polygon, a stroke): before undo, redo, a new job."""
        for tool in self._tools.values():
            tool.cancel()

    def _on_job(self, job: Job | None) -> None:
        self.set_editing_enabled(job is None or not job.blocks_editing)

    def set_editing_enabled(self, enabled: bool) -> None:
        if not enabled:
            for tool in self._tools.values():
                tool.cancel()
            self._active_tool = None
        self.editing_enabled = bool(enabled)
        self._update_cursor()

    def _update_cursor(self) -> None:
        if self._pan_from is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space:
            shape = Qt.CursorShape.OpenHandCursor
        elif not self.editing_enabled:
            shape = Qt.CursorShape.ForbiddenCursor
        else:
            shape = Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)

    # -- zoom ---------------------------------------------------------------------------------
    def image_point(self, view_pos: QPointF) -> QPointF:
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(view_pos))

    def view_point(self, x: float, y: float) -> QPointF:
        return self.viewportTransform().map(QPointF(x, y))

    def set_scale(self, scale: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``scale`` screen pixels per image pixel, keeping ``anchor`` (view) still."""
        self._fit_mode = False
        scale = max(MIN_SCALE, min(MAX_SCALE, float(scale)))
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        fixed = self.image_point(anchor)
        self.setTransform(QTransform.fromScale(scale, scale))
        moved = self.view_point(fixed.x(), fixed.y()) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(moved.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(moved.y()))
        self._after_zoom()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_scale(self.scale_factor * factor, anchor)

    def actual_size(self) -> None:
        self.set_scale(1.0)

    def fit(self) -> None:
        self._fit_mode = True
        rect = self._scene.sceneRect()
        if self.image_layer is None or rect.width() <= 1:
            return
        view = self.viewport().rect()
        scale = min((view.width() - 8) / rect.width(), (view.height() - 8) / rect.height())
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(rect.center())
        self._after_zoom()

    def _after_zoom(self) -> None:
        s = self.scale_factor
        self.brush_cursor.set_view_scale(s)
        self.polygon_preview.set_view_scale(s)
        self.split_preview.set_view_scale(s)
        self.zoom_changed.emit(s)
        self._emit_view()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # -- events -------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        delta = event.angleDelta().y()
        if delta == 0 or self.image_layer is None:
            return
        self.zoom_by(WHEEL_STEP ** (delta / 120.0), event.position())
        event.accept()

    def _xy(self, event: QMouseEvent) -> tuple[float, float]:
        p = self.image_point(event.position())
        return p.x(), p.y()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = event.position()
            self._update_cursor()
            return
        if button != Qt.MouseButton.LeftButton or self.document is None:
            return
        if not self.editing_enabled:
            self.edit_refused.emit("Editing is paused while segmentation runs (Esc cancels it).")
            return
        x, y = self._xy(event)
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        self._active_tool = self._tools[Tool.PICKER] if alt else self.tool
        self._active_tool.press(x, y)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            return
        x, y = self._xy(event)
        self._move_cursor(x, y)
        if self.document is None:
            return
        left = bool(event.buttons() & Qt.MouseButton.LeftButton)
        tool = self._active_tool if (left and self._active_tool is not None) else self.tool
        if self.editing_enabled:
            tool.move(x, y, left)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton,
                                                             Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._update_cursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._active_tool is not None:
            tool, self._active_tool = self._active_tool, None
            tool.release(*self._xy(event))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or self.document is None or self._space:
            return
        if not self.editing_enabled:
            return
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        self._active_tool = self._tools[Tool.PICKER] if alt else self.tool
        self._active_tool.double_click(*self._xy(event))

    def _move_cursor(self, x: float, y: float) -> None:
        doc = self.document
        inside = doc is not None and 0 <= x < doc.shape[1] and 0 <= y < doc.shape[0]
        self.pointer_moved.emit((x, y) if inside else None)
        show = doc is not None and self.tool.shows_brush and self.editing_enabled and not self._space
        self.brush_cursor.setVisible(show)
        if show:
            self.brush_cursor.setPos(x, y)

    def enterEvent(self, event: QEvent) -> None:  # noqa: N802
        # Take the keyboard (Space to pan, Enter/Esc for polygons) unless someone is typing.
        focused = QApplication.focusWidget()
        if self.window().isActiveWindow() and not isinstance(focused, _TEXT_INPUTS):
            self.setFocus(Qt.FocusReason.MouseFocusReason)
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self.brush_cursor.setVisible(False)
        self.pointer_moved.emit(None)
        super().leaveEvent(event)

    def event(self, event: QEvent) -> bool:
        # Keys the open polygon needs (Esc, Enter, Backspace) win over window shortcuts.
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            if self.tool.busy and event.key() in _TOOL_KEYS:
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.brush_cursor.setVisible(False)
            self._update_cursor()
            return
        if self.tool.key(event.key()):
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._update_cursor()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802
        self._space = False
        self._update_cursor()
        super().focusOutEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802
        if self.image_layer is not None or not self.placeholder:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(170, 174, 180))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        painter.setFont(font)
        painter.drawText(self.viewport().rect().adjusted(40, 40, -40, -40),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        painter.restore()
