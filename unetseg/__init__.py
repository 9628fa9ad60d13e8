"""UNetSeg's entry point package: ``unetseg`` / ``python -m unetseg``."""
