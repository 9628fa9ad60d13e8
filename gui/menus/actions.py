"""Every command as a QAction: object name, icon, shortcut, tooltip.  Wiring is elsewhere.

Standard shortcuts come from ``QKeySequence.StandardKey`` so each platform gets its own;
a few common alternatives (Ctrl+Shift+Z and Ctrl+Y for redo) are added when missing.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget

from gui.infra.icons import icon
from gui.state.app_state import Tool

Std = QKeySequence.StandardKey
TITLE = "title"  # the property holding an action's name as created, whatever its text says now


def _keys(*specs) -> list[QKeySequence]:
    """Shortcut list from StandardKeys and strings, without duplicates or empty entries."""
    out: list[QKeySequence] = []
    for spec in specs:
        seqs = QKeySequence.keyBindings(spec) if isinstance(spec, Std) else [QKeySequence(spec)]
        for seq in seqs:
            if not seq.isEmpty() and all(seq != s for s in out):
                out.append(seq)
    return out


class Actions:
    """Holds the window's actions as attributes named like their objectName minus 'action_'."""

    def __init__(self, parent: QWidget):
        self._parent = parent
        a = self._make
        # file
        self.open = a("open", "&Open…", "folder-open-outline", _keys(Std.Open), "Open image files")
        self.open_folder = a("open_folder", "Open &Folder…", "folder-multiple-image",
                             _keys("Ctrl+Shift+O"), "Open every image in a folder")
        self.open_stack_folder = a("open_stack_folder", "Open Stack F&older…", "layers-outline", [],
                                   "Open a folder of numbered planes (z000.tif, z001.tif…) as one Z stack")
        self.import_mask = a("import_mask", "&Import Mask…", "file-image-outline", _keys("Ctrl+I"),
                             "Load a mask file for the current image (one undo step)")
        self.save = a("save", "&Save Mask", "content-save-outline", _keys(Std.Save),
                      "Save the mask as <image>_mask.png beside the image")
        self.save_as = a("save_as", "Save Mask &As…", None, _keys(Std.SaveAs, "Ctrl+Shift+S"))
        self.export = a("export", "&Export Mask…", "export", _keys("Ctrl+E"),
                        "Export the mask: index, colour or overlay PNG, TIFF, NumPy or COCO")
        self.export_all = a("export_all", "Export A&ll…", "export-variant", _keys("Ctrl+Shift+E"),
                            "Export the masks of every listed image")
        self.close_image = a("close_image", "&Close Image", "close", _keys(Std.Close))
        self.quit = a("quit", "&Quit", None, _keys(Std.Quit, "Ctrl+Q"))
        self.next_image = a("next_image", "&Next Image", "chevron-right", _keys("PgDown", "Ctrl+PgDown"))
        self.prev_image = a("prev_image", "&Previous Image", "chevron-left", _keys("PgUp", "Ctrl+PgUp"))
        # the planes of a stack (enabled while one is shown; Page Up/Down then move from the image
        # actions to these: gui.controllers.planes)
        self.next_plane = a("next_plane", "Next &Plane", "chevron-down", [],
                            "The next Z plane, Page Down (the next time point in a time series)")
        self.prev_plane = a("prev_plane", "Pre&vious Plane", "chevron-up", [],
                            "The previous Z plane, Page Up (the previous time point in a time series)")
        self.next_time = a("next_time", "Next &Time Point", "chevron-double-down", _keys("Shift+PgDown"))
        self.prev_time = a("prev_time", "Previous Time Poin&t", "chevron-double-up", _keys("Shift+PgUp"))
        for action in (self.next_plane, self.prev_plane, self.next_time, self.prev_time):
            action.setEnabled(False)
        # edit
        self.undo = a("undo", "&Undo", "undo", _keys(Std.Undo))
        self.redo = a("redo", "&Redo", "redo", _keys(Std.Redo, "Ctrl+Shift+Z", "Ctrl+Y"))
        self.brush = a("brush", "&Brush", "brush", _keys("B"), "Paint the active class", True)
        self.eraser = a("eraser", "&Eraser", "eraser", _keys("E"), "Paint background", True)
        self.fill = a("fill", "&Fill", "format-color-fill", _keys("G"),
                      "Fill the connected region under the click", True)
        self.polygon = a("polygon", "&Polygon / Lasso", "vector-polygon", _keys("P"),
                         "Click points (Enter or double-click fills) or drag a lasso; Esc cancels",
                         True)
        self.picker = a("picker", "&Class Picker", "eyedropper", _keys("I"),
                        "Take the class under the click (Alt+click with any tool)", True)
        self.stroke = a("stroke", "&Stroke (Live Training)", "draw", _keys("S"),
                        "Paint annotation strokes of the active class for Live Training", True)
        self.stroke_eraser = a("stroke_eraser", "Erase S&trokes", "eraser-variant", _keys("Shift+S"),
                               "Un-annotate: remove Live Training strokes", True)
        # objects (the Objects mode: core.document.objects)
        self.objects_mode = a("objects_mode", "&Objects Mode", "shape-outline", _keys("Shift+O"),
                              "Outline every object in a colour of its own, and edit objects", True)
        self.object_select = a("object_select", "&Select Object", "cursor-default-click-outline", _keys("V"),
                               "Click an object to select it (and its row in the Objects table)", True)
        self.object_brush = a("object_brush", "&New Object", "shape-plus-outline", _keys("N"),
                              "Paint a new object of the active class; a stroke that starts inside the "
                              "selected object grows it. Never paints over another object", True)
        self.object_eraser = a("object_eraser", "&Erase from Object", "eraser", _keys("Shift+E"),
                               "Erase pixels of the object the stroke starts in (they become background)", True)
        self.object_delete = a("object_delete", "&Delete Object", "delete-outline", _keys("D"),
                               "Click an object to delete it", True)
        self.object_merge = a("object_merge", "&Merge Objects", "set-merge", _keys("M"),
                              "Click one object, then another: they become one", True)
        self.object_split = a("object_split", "S&plit Object", "content-cut", _keys("K"),
                              "Drag a line across an object, from outside to outside: its sides become "
                              "two objects", True)
        self.delete_selected_object = a("delete_selected_object", "Delete Selected Ob&ject", "delete",
                                        _keys("Del"), "Delete the selected object")
        self.export_objects = a("export_objects", "Export Object Measurements as &CSV…", "table-arrow-right",
                                [], "Write one row per object (the Objects table) to a CSV file")
        self.object_tool_actions = {Tool.OBJECT_SELECT: self.object_select, Tool.OBJECT_BRUSH: self.object_brush,
                                    Tool.OBJECT_ERASER: self.object_eraser, Tool.OBJECT_DELETE: self.object_delete,
                                    Tool.OBJECT_MERGE: self.object_merge, Tool.OBJECT_SPLIT: self.object_split}
        self.tool_actions = {Tool.BRUSH: self.brush, Tool.ERASER: self.eraser, Tool.FILL: self.fill,
                             Tool.POLYGON: self.polygon, Tool.PICKER: self.picker,
                             Tool.STROKE: self.stroke, Tool.STROKE_ERASER: self.stroke_eraser,
                             **self.object_tool_actions}
        self.tools = QActionGroup(parent)
        self.tools.setExclusive(True)
        for tool in self.tool_actions.values():
            self.tools.addAction(tool)
        self.brush.setChecked(True)
        self.brush_smaller = a("brush_smaller", "Smaller Brush", "minus", _keys("["))
        self.brush_larger = a("brush_larger", "Larger Brush", "plus", _keys("]"))
        self.add_class = a("add_class", "Add Class", "plus", [])
        self.class_keys = [a(f"class_{n}", f"Class {n}", None, _keys(str(n))) for n in range(10)]
        # view
        self.zoom_in = a("zoom_in", "Zoom &In", "magnify-plus-outline", _keys(Std.ZoomIn, "+", "="))
        self.zoom_out = a("zoom_out", "Zoom &Out", "magnify-minus-outline", _keys(Std.ZoomOut, "-"))
        self.fit = a("fit", "&Fit to Window", "fit-to-screen-outline", _keys("Ctrl+0", "F"))
        self.actual_size = a("actual_size", "&Actual Size (1:1)", "numeric-1-box-outline", _keys("Ctrl+1"))
        self.toggle_mask = a("toggle_mask", "Show &Mask", "eye", _keys("H"),
                             "Show or hide the mask", True)
        self.toggle_mask.setChecked(True)
        self.outline = a("outline", "&Outlines Only", "vector-square", _keys("O"),
                         "Draw only the outline of each region", True)
        self.tile_cache = a("tile_cache", "Tile &Memory for Large Images…", "memory", [],
                            "How much memory decoded tiles of whole-slide images may use")
        self.opacity_down = a("opacity_down", "Less Opaque Mask", None, _keys(",", "Alt+Down"))
        self.opacity_up = a("opacity_up", "More Opaque Mask", None, _keys(".", "Alt+Up"))
        # segmentation and model
        self.segment = a("segment", "&Segment", "play", _keys("Ctrl+R", "F5"),
                         "Segment the current image with the model")
        self.segment_view = a("segment_view", "Segment &View", "crop-free", _keys("Ctrl+Shift+V"),
                              "Segment only the part of the image in view, at full resolution")
        self.segment_all = a("segment_all", "Segment &All…", "play-box-multiple-outline",
                             _keys("Ctrl+Shift+R"), "Segment every listed image and save the masks")
        self.segment_stack = a("segment_stack", "Segment S&tack", "layers-triple-outline", _keys("Ctrl+Alt+R"),
                               "Segment every plane of the stack (you may keep editing meanwhile; "
                               "Cancel keeps the planes done)")
        self.segment_stack.setEnabled(False)
        self.smooth_z = a("smooth_z", "Smooth Across &Z", None, [],
                          "Average the model's class probabilities over the planes above and below "
                          "each Z plane (less flicker between planes)", True)
        self.stitch_z = a("stitch_z", "Link Objects Across Z (&3-D)", None, [],
                          "Segment Stack also links overlapping objects of neighbouring Z planes into "
                          "3-D objects, saved as <stack>_instances.ome.tif beside it", True)
        self.cancel = a("cancel", "&Cancel", "stop", _keys("Esc"), "Stop the running job")
        self.cancel.setEnabled(False)
        self.load_weights = a("load_weights", "&Load Weights…", "file-document-outline", _keys("Ctrl+L"),
                              "Load a .safetensors / .pt weights file")
        self.train = a("train", "&Train on Annotated Images…", "school-outline", [],
                       "Fine-tune the model (or train a new one) on the images with saved masks")
        self.live_training = a("live_training", "&Live Training", "motion-play-outline", _keys("Ctrl+T"),
                               "Train a model from your strokes while you paint; the view shows what it "
                               "has learned every few seconds", True)
        self.uncertainty = a("uncertainty", "Show &Uncertainty", "help-rhombus-outline", _keys("U"),
                             "Show where the live model is unsure (paint strokes there next)", True)
        self.about_model = a("about_model", "About This &Model…", "information-outline", [],
                             "What the current model knows, how it was trained and how well it does")
        self.getting_started = a("getting_started", "&Getting Started", "help-circle-outline", [],
                                 "The five-minute walkthrough and every shortcut")
        self.about = a("about", "&About UNetSeg", None, [])
        self.shortcuts = a("shortcuts", "&Keyboard Shortcuts", None, _keys("F1"))

    def _make(self, name: str, text: str, icon_name: str | None, keys: list[QKeySequence],
              tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self._parent)
        action.setObjectName(f"action_{name}")
        action.setProperty(TITLE, text.replace("&", "").rstrip("…"))  # text may change (Undo <what>)
        if icon_name:
            action.setIcon(icon(icon_name))
        if keys:
            action.setShortcuts(keys)
        shortcut = f" ({keys[0].toString(QKeySequence.SequenceFormat.NativeText)})" if keys else ""
        action.setToolTip((tip or text.replace("&", "").rstrip("…")) + shortcut)
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        self._parent.addAction(action)  # shortcuts work whether or not a menu shows the action
        return action

    @staticmethod
    def title(action: QAction) -> str:
        """The action's stable name ("Undo", never "Undo new object")."""
        return action.property(TITLE) or action.text().replace("&", "")

    def all(self) -> list[QAction]:
        return [v for v in vars(self).values() if isinstance(v, QAction)] + self.class_keys
