"""Files: images (in memory and lazy sources of any size), masks in every format the app reads
and writes, per-object formats, label stores, the one mask-naming rule and atomic writes.

Imports nothing from core but ``core.classes`` and ``core.resources``."""
