"""The shown document as one set of signals that outlive any single document.

Views connect here once; ``bind`` moves the connections from the old document to the new
one.  This is the only place that disconnects one MaskDocument and connects the next.
"""

from __future__ import annotations

from psygnal import Signal

from core.document.mask_document import MaskDocument
from core.document.editing import Box

_RELAYED = ("changed", "reset", "dirty_changed", "active_class_changed", "history_changed",
            "classes_changed")


class CurrentDocument:
    changed = Signal(Box)
    reset = Signal()
    dirty_changed = Signal(bool)
    active_class_changed = Signal(int)
    history_changed = Signal()
    classes_changed = Signal()
    document_changed = Signal(object)  # the new MaskDocument, or None
    objects_changed = Signal(Box)  # the document's object layer (core.document.objects)
    objects_reset = Signal()

    def __init__(self) -> None:
        self.doc: MaskDocument | None = None
        # one plain forwarder per signal: psygnal keys a connected ``SignalInstance.emit`` by
        # its owner, which would merge the six relays into one
        self._forward = {name: _forwarder(getattr(self, name)) for name in _RELAYED}
        self._forward_objects = {name: _forwarder(getattr(self, f"objects_{name}")) for name in ("changed", "reset")}

    def bind(self, doc: MaskDocument | None) -> None:
        if doc is self.doc:
            return
        old, self.doc = self.doc, doc
        for name, forward in self._forward.items():
            if old is not None:
                getattr(old, name).disconnect(forward)
            if doc is not None:
                getattr(doc, name).connect(forward)
        for name, forward in self._forward_objects.items():
            if old is not None and old.objects is not None:
                getattr(old.objects, name).disconnect(forward)
            if doc is not None and doc.objects is not None:
                getattr(doc.objects, name).connect(forward)
        self.document_changed.emit(doc)


def _forwarder(signal):
    def forward(*args) -> None:
        signal.emit(*args)
    return forward
