"""What a model is: the two UNets, their weights files (safe loading, metadata), the fast
inference form of a network, and how a model describes itself (info, menu summary, built-in notes).

Imports nothing else from core but ``core.classes`` and ``core.resources``."""
