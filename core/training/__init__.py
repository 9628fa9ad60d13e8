"""Training: the loop, its data (annotated images staged from the app, synthetic and broader
scenes, crop augmentation), which epoch is kept, and what a checkpoint records about its making.

Builds on core.model, core.segment (scoring, calibration) and core.io."""
