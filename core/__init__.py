"""UNetSeg without the GUI; never imports Qt (an import-linter contract enforces it).

Layers, top to bottom (a contract in pyproject.toml enforces the order):

* ``core.cli``: the ``unetseg`` commands;
* ``core.training``: the training loop, its data and records;
* ``core.segment``: segmenting images of any size, refinement, batches, clusters;
* ``core.document``: the mask being edited, its undo, chunked saving and recovery;
* ``core.io``: images, masks, object formats, label stores, file naming;
* ``core.model``: the networks, their weights files and what they say about themselves;
* ``core.classes``, ``core.metrics``, ``core.resources``: small shared vocabularies.
"""
