"""The Model menu: built-in models and a loaded weights file (radio), each with what it is
("Built-in Small: demo, synthetic shapes"), Load Weights…, Recent Weights, About This Model…,
Device.

Built-in models whose weights are missing are disabled with the reason as tooltip; devices
stay disabled ("checking…") until the background loader reports what this machine offers.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from core.resources import BUILTIN_MODELS
from gui.infra.recent_weights import RecentWeights
from gui.menus.model_labels import builtin_label, weights_label
from gui.menus.recent_weights_menu import RecentWeightsMenu
from gui.state.model_names import builtin_status
from gui.state.segmenter import SegmenterLike

REFINE_TIP = ("Snap the mask's edges to the image's own edges (a guided filter on the model's "
              "probabilities). On by default for models it was measured to help (unetseg calibrate)")
DEVICE_LABELS = {"auto": "&Automatic", "cpu": "&CPU", "cuda": "CUDA (&NVIDIA GPU)", "mps": "&MPS (Apple GPU)"}


class ModelMenu:
    def __init__(self, menu: QMenu, load_weights: QAction, parent: QWidget,
                 choose_model: Callable[[str], None], choose_device: Callable[[str], None],
                 recent: RecentWeights | None = None, about_model: QAction | None = None):
        self.menu = menu
        menu.setToolTipsVisible(True)
        self._choose_model = choose_model
        self._choose_device = choose_device
        self._models = QActionGroup(parent)
        self.model_actions: dict[str, QAction] = {}
        for name in BUILTIN_MODELS:
            action = QAction(builtin_label(name), parent)
            action.setObjectName(f"action_model_{name}")
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, n=name: self._choose_model(n))
            self._models.addAction(action)
            menu.addAction(action)
            self.model_actions[name] = action
        self.custom = QAction("", parent)
        self.custom.setObjectName("action_model_custom")
        self.custom.setCheckable(True)
        self.custom.setVisible(False)
        self.custom.triggered.connect(lambda: self._custom_path and self._choose_model(self._custom_path))
        self._models.addAction(self.custom)
        menu.addAction(self.custom)
        self._custom_path: str | None = None
        menu.addSeparator()
        menu.addAction(load_weights)
        self.recent = None
        if recent is not None:
            self.recent = RecentWeightsMenu(menu.addMenu("Recent &Weights"), recent, choose_model)
        if about_model is not None:
            menu.addAction(about_model)
        menu.addSeparator()
        self.tta = QAction("Test-Time &Augmentation", parent)
        self.tta.setObjectName("action_tta")
        self.tta.setCheckable(True)
        self.tta.setToolTip("Average the model over the 8 flips and rotations of the image: "
                            "more accurate, 8x the work (each model sets its own default)")
        menu.addAction(self.tta)
        self.refine = QAction("Refine &Edges", parent)
        self.refine.setObjectName("action_refine")
        self.refine.setCheckable(True)
        self.refine.setToolTip(REFINE_TIP)
        menu.addAction(self.refine)
        self.device_menu = menu.addMenu("&Device")
        self.device_menu.setObjectName("menu_device")
        self.device_menu.setToolTipsVisible(True)
        self._devices = QActionGroup(parent)
        self.device_actions: dict[str, QAction] = {}
        for key, label in DEVICE_LABELS.items():
            action = QAction(label, parent)
            action.setObjectName(f"action_device_{key}")
            action.setCheckable(True)
            if key in ("cuda", "mps"):
                action.setEnabled(False)
                action.setToolTip("Checking which devices this machine has…")
            elif key == "auto":
                action.setToolTip("CUDA, then MPS, then the CPU: the first one available")
            action.triggered.connect(lambda _=False, k=key: self._choose_device(k))
            self._devices.addAction(action)
            self.device_menu.addAction(action)
            self.device_actions[key] = action
        self.refresh_builtins()

    def refresh_builtins(self) -> None:
        for name, action in self.model_actions.items():
            ok, tip = builtin_status(name)
            action.setEnabled(ok)
            action.setToolTip(tip)

    def show_model(self, spec: str) -> None:
        """Check the entry for ``spec`` (a weights path gets its own entry)."""
        if spec in self.model_actions:
            self.model_actions[spec].setChecked(True)
            return
        self._custom_path = spec
        self.custom.setText(weights_label(spec))
        self.custom.setToolTip(spec)
        self.custom.setVisible(True)
        self.custom.setChecked(True)

    def show_model_defaults(self, seg: SegmenterLike) -> None:
        """Tick TTA and edge refinement as the newly loaded model would segment by default."""
        self.tta.setChecked(bool(seg.tta))
        setting = seg.refine
        self.refine.setChecked(setting is not None)
        self.refine.setToolTip(f"{REFINE_TIP}. This model: {setting or 'off by default'}")

    def show_device(self, device: str) -> None:
        action = self.device_actions.get(device)
        if action is not None:
            action.setChecked(True)

    def set_devices(self, devices: dict[str, tuple[bool, str]]) -> None:
        for key, (ok, reason) in devices.items():
            action = self.device_actions.get(key)
            if action is not None:
                action.setEnabled(bool(ok))
                action.setToolTip(reason if reason else ("Available" if ok else "Not available"))
