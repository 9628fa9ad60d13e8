"""``python -m core``: the command line without the desktop app."""

import sys

from core.cli.main import main

sys.exit(main())
