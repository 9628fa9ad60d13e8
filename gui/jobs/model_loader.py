"""Which model segments, loaded off the GUI thread (importing torch takes seconds).

``load`` starts a daemon thread that imports core.segment.inference (and so torch), reports the
devices this machine offers, then builds the Segmenter; results come back as queued signals.
A newer request supersedes an older one still loading, and a failed load keeps the previous
model.  Nothing here imports torch at module import time.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.state.model_names import model_label
from gui.infra.workers import describe_error, start_thread


class _Bridge(QObject):
    """Emitted from the loader thread; receivers in the GUI thread get queued calls."""

    ready = Signal(int, object, str, str)
    failed = Signal(int, str, bool)
    devices = Signal(object)
    warning = Signal(str)


class ModelManager(QObject):
    loading = Signal(str)  # the model being loaded (label)
    ready = Signal(object)  # the new Segmenter
    failed = Signal(str, bool)  # message, whether the user asked (show a dialog) or not
    devices_ready = Signal(object)  # {"cpu"|"cuda"|"mps": (ok, reason)}
    warning = Signal(str)

    def __init__(self, spec: str = "small", device: str = "auto", parent: QObject | None = None):
        super().__init__(parent)
        self.spec = spec  # what is loaded (or wanted, before the first load succeeds)
        self.device = device
        self.segmenter: Any = None
        self.devices: dict[str, tuple[bool, str]] | None = None
        self._token = 0
        self._pending: str | None = None
        self._bridge = _Bridge()
        self._bridge.ready.connect(self._on_ready)
        self._bridge.failed.connect(self._on_failed)
        self._bridge.devices.connect(self._on_devices)
        self._bridge.warning.connect(self.warning)

    @property
    def is_loading(self) -> bool:
        return self._pending is not None

    def load(self, spec: str | None = None, device: str | None = None, *, interactive: bool = True,
             fallback: bool = False) -> None:
        """Load ``spec`` ("small", "large" or a path) on ``device`` in the background.

        ``fallback``: if the device is unavailable, use "auto" instead of failing (startup,
        where the saved device may belong to another machine).
        """
        spec = str(spec if spec is not None else self.spec)
        device = device if device is not None else self.device
        self._token += 1
        token, bridge, want_devices = self._token, self._bridge, self.devices is None
        self._pending = spec
        self.loading.emit(model_label(spec))

        def work() -> None:
            try:
                from core.segment import inference

                if want_devices:
                    bridge.devices.emit(inference.device_availability())
                try:
                    seg = inference.Segmenter.load(spec, device=device)
                    used = device
                except inference.DeviceError as exc:
                    if not fallback or device == "auto":
                        raise
                    bridge.warning.emit(f"{exc}; using the automatic choice instead.")
                    seg, used = inference.Segmenter.load(spec, device="auto"), "auto"
            except BaseException as exc:  # noqa: BLE001 - report every failure, keep the old model
                bridge.failed.emit(token, describe_error(exc), interactive)
            else:
                bridge.ready.emit(token, seg, spec, used)

        start_thread(work, name=f"model-loader-{token}")

    def set_segmenter(self, segmenter: Any, spec: str = "custom") -> None:
        """Use an already built segmenter (anything with ``segment``/``classes``/``device``)."""
        self._token += 1
        self._pending = None
        self.segmenter, self.spec = segmenter, spec
        self.ready.emit(segmenter)

    def _on_ready(self, token: int, seg: Any, spec: str, device: str) -> None:
        if token != self._token:
            return
        self._pending = None
        self.segmenter, self.spec, self.device = seg, spec, device
        self.ready.emit(seg)

    def _on_failed(self, token: int, message: str, interactive: bool) -> None:
        if token != self._token:
            return
        self._pending = None
        self.failed.emit(message, interactive)

    def _on_devices(self, devices: Any) -> None:
        self.devices = dict(devices)
        self.devices_ready.emit(self.devices)
