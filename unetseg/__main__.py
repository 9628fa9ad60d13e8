"""``unetseg``: the command line, and the desktop app when no command is given."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from core.cli.main import main as cli_main

    def launch_gui(args: list[str]) -> int:
        from unetseg.startup_checks import prepare_gui_environment

        problem = prepare_gui_environment()  # before Qt loads: Qt's own abort explains nothing
        if problem:
            print(problem, file=sys.stderr)
            return 1
        from gui.app import run_app

        return run_app(args)

    return cli_main(argv, launch_gui=launch_gui)


if __name__ == "__main__":
    sys.exit(main())
