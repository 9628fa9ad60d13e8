"""Atomic file writes: a temp file in the target folder, then one rename.

A crash, a full disk or an exception mid-write leaves the previous file untouched and no
partial file behind; the rename is atomic on POSIX and Windows (``os.replace``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


class WriteError(OSError):
    """A write that failed; ``str()`` names the path and the reason in one sentence."""

    def __str__(self) -> str:
        return str(self.strerror)


def describe_os_error(exc: OSError) -> str:
    import errno

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the folder is on a read-only file system",
        errno.ENOENT: "the folder does not exist",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.ENAMETOOLONG: "the file name is too long",
    }
    return reasons.get(exc.errno, exc.strerror or str(exc))


def short_error(exc: BaseException, limit: int = 120) -> str:
    """An exception's text on one line, cut to ``limit`` characters, for one-sentence messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on clean exit it replaces ``path``.

    ``suffix`` defaults to the target's own so writers that pick a format by extension
    (Pillow, tifffile) still do.  An OSError is re-raised as WriteError naming ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=folder
        )
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {path}: {describe_os_error(exc)}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        _usual_mode(tmp, path)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        if isinstance(exc, WriteError):
            raise
        raise WriteError(exc.errno, f"cannot write {path}: {describe_os_error(exc)}") from None
    except BaseException:
        remove_quietly(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def fsync(*paths: str | os.PathLike) -> None:
    """Flush files' or folders' data to disk (a folder: the names in it), in that order; what the
    OS cannot sync (a missing file, a file system without fsync) is skipped."""
    for path in paths:
        _fsync(Path(path))


def _usual_mode(tmp: Path, path: Path) -> None:
    """The replaced file's mode, or a new file's usual one (0666 less the umask): mkstemp makes
    0600 files, and writers that recreate the file (safetensors) make 0600 again, so this comes
    after the write."""
    with contextlib.suppress(OSError):
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


