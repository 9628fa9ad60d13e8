"""Files the user keeps get the umask's usual mode (0644 with a 022 umask), models as masks: the
atomic write's temporary file is 0600, and safetensors recreates it 0600, so the mode is set after
the write; a replaced file keeps its own mode."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from core.classes import default_classes
from core.io.masks import write_mask
from core.model.checkpoints import save_checkpoint
from core.model.metadata_edit import update_metadata
from core.training.stage import copy_model
from tests.helpers import calibrated_model


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and put the previous one back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda value: os.umask(value)
    os.umask(previous)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_models_and_masks_get_the_usual_mode(tmp_path, umask):
    umask(0o022)
    model = calibrated_model(num_classes=3)
    weights = save_checkpoint(tmp_path / "model.safetensors", model, default_classes(3))
    mask = tmp_path / "cells_mask.png"
    write_mask(mask, np.zeros((8, 8), np.uint8), "index", default_classes(3))
    copy = copy_model(weights, tmp_path / "copy.safetensors")
    assert mode(weights) == mode(mask) == mode(copy) == 0o644

    os.chmod(weights, 0o640)  # a file the user made group-readable only stays so when rewritten
    update_metadata(weights, {"description": "nuclei"})
    save_checkpoint(copy, model, default_classes(3))
    assert mode(weights) == 0o640 and mode(copy) == 0o644

    umask(0o077)  # a user who keeps files private gets private files
    assert mode(save_checkpoint(tmp_path / "private.safetensors", model, default_classes(3))) == 0o600
