"""Segmenting: one image in memory (``inference``), a source of any size into a label store
(``streaming``, ``large``), on a Dask cluster (``cluster``), edge refinement and its calibration,
and the one batch writer behind Segment All, Export All and ``unetseg segment``.

Builds on core.model and core.io."""
