"""Starting the desktop app: ``unetseg`` / ``unetseg open IMAGE... [--startup-timing]``.

The window is shown first; torch is imported and the model loaded on a background thread
afterwards, so the window appears in well under a second.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_IMPORTED_AT = time.perf_counter()


def seconds_since_process_start() -> tuple[float, str]:
    """Wall time since this process started (Linux /proc), else since this module loaded."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); 2 fields precede the split point
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK")), "process start"
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED_AT, "app module import"


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="unetseg open", description="Start the UNetSeg desktop app.")
    parser.add_argument("images", nargs="*", help="image files or folders to open")
    parser.add_argument("--startup-timing", action="store_true",
                        help="print the seconds from process start until the window is shown")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS",
                        help="close the app after this many seconds (smoke tests)")
    return parser.parse_args(args)


_errors = None  # the installed gui.dialogs.errors.ErrorHandler, kept alive with the app


def start_app(args: list[str]):
    """The application, the error hooks and the shown window, images opened: what ``run_app``
    runs, and what scripts (the crash-recovery test) drive themselves.  Returns
    (app, window, options)."""
    options = parse_args(list(args))
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from core.resources import app_icon_path
    from gui.dialogs import errors
    from gui.infra.icons import icon
    from gui.main_window import MainWindow
    from gui.infra.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "unetseg"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("UNetSeg")
    app_icon = app_icon_path()
    app.setWindowIcon(QIcon(str(app_icon)) if app_icon.is_file() else icon("shape-outline", "#3d7fd9"))
    windows: list = []
    global _errors
    _errors = errors.install(lambda: QApplication.activeWindow() or (windows[0] if windows else None))
    errors.log.info("UNetSeg started (pid %d, Python %s)", os.getpid(), sys.version.split()[0])
    window = MainWindow()
    windows.append(window)
    window.show()
    app.processEvents()
    if options.startup_timing:
        seconds, since = seconds_since_process_start()
        print(f"window shown {seconds:.3f} s after {since}; torch imported: "
              f"{'torch' in sys.modules}", flush=True)
    if options.images:
        window.open_images([Path(p) for p in options.images])
    window.start_background_loading()
    return app, window, options


def run_app(args: list[str]) -> int:
    from PySide6.QtCore import QTimer

    from gui.infra.workers import stop_tasks

    app, window, options = start_app(args)
    if options.quit_after is not None:
        def quit_now() -> None:
            window.close()
            app.quit()

        QTimer.singleShot(max(0, int(options.quit_after * 1000)), quit_now)
    code = int(app.exec())
    stop_tasks()  # a QThread destroyed while running would abort the exit
    return code
