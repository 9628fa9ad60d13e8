"""How a chunked mask reaches disk is layered one way (issue 25, finding 16): the store (files,
layouts, the journal, the swap) never reaches up into the document, and no module of
core.document takes another's private names.  The direction itself is an import-linter contract
in pyproject.toml ("document-layers"), checked by lint-imports."""

from __future__ import annotations

import ast
from pathlib import Path

import core.document

DOCUMENT = Path(core.document.__file__).parent


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from core... import name`` in a file, lazy imports included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
            out += [(node.module, alias.name) for alias in node.names]
    return out


def test_no_module_of_the_document_takes_a_private_name_of_another():
    taken = [f"{path.name}: {module}.{name}" for path in sorted(DOCUMENT.glob("*.py"))
             for module, name in _imports(path) if name.startswith("_")]
    assert taken == []


def test_the_store_modules_know_nothing_of_the_document_or_recovery():
    store = ("chunked_save", "save_journal", "mask_files", "scratch_folders", "owners")
    above = {f"core.document.{m}" for m in ("chunked_labels", "mask_document", "strokes", "editing", "history",
                                            "recovery", "chunk_recovery")}
    reached = [f"{m}.py -> {module}" for m in store for module, _ in _imports(DOCUMENT / f"{m}.py")
               if module in above]
    assert reached == []
