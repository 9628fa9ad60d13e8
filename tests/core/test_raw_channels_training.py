"""Training on raw channels: a C-channel image makes a C-input model, --channels picks them, the
checkpoint says what it read, bad channel input is named, and t0.ome.tif pairs with t0.png."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.model.checkpoints import load_checkpoint
from core.segment.inference import Segmenter
from core.training.loop import CropSampler, TrainConfig, TrainingDataError, find_pairs, train

RNG = np.random.default_rng(11)


def write_pair(images, masks, name: str, channels: int = 2, dtype=np.uint16, nan: bool = False) -> None:
    labels = np.zeros((48, 56), np.uint8)
    labels[8:30, 10:34] = 1
    labels[32:44, 30:50] = 2
    planes = [np.where(labels > 0, 20000, 1000) + RNG.normal(0, 50, labels.shape)]
    planes += [2000 + 30 * (labels == 2) + RNG.normal(0, 3, labels.shape) for _ in range(channels - 1)]
    stack = np.stack(planes).astype(dtype)
    if nan:
        stack[1, 0, 0] = np.nan
    names = ["DAPI", "GFP", "RFP", "Cy5"][:channels]
    tifffile.imwrite(images / name, stack, metadata={"axes": "CYX", "Channel": {"Name": names}})
    stem = name.split(".")[0]
    Image.fromarray(labels).save(masks / f"{stem}.png")


@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    return images, masks


def quick(images, masks, out, **options) -> TrainConfig:
    return TrainConfig(images, masks, out, epochs=1, patch=32, batch=2, steps_per_epoch=2, calibrate=False,
                       device="cpu", **options)


def test_train_pairs_an_ome_tiff_with_the_mask_segment_names_for_it(folders):
    images, masks = folders
    write_pair(images, masks, "t0.ome.tif")
    assert find_pairs(images, masks) == [(images / "t0.ome.tif", masks / "t0.png")]


def test_a_two_channel_16bit_set_trains_a_two_input_model_that_records_its_channels(folders, tmp_path):
    images, masks = folders
    for i in range(2):
        write_pair(images, masks, f"t{i}.ome.tif")
    logged = []
    result = train(quick(images, masks, tmp_path / "m.safetensors"), log=logged.append)
    ck = load_checkpoint(result.path)
    assert ck.in_channels == 2 and ck.normalization.reads_raw
    assert ck.normalization.channel_names == ("DAPI", "GFP") and ck.normalization.percentiles == (1.0, 99.8)
    assert any("raw channels: DAPI, GFP (uint16)" in line for line in logged)
    labels = Segmenter(ck, device="cpu").segment(tifffile.imread(images / "t0.ome.tif").transpose(1, 2, 0))
    assert labels.shape == (48, 56)


def test_channels_pick_and_order_what_the_model_reads(folders, tmp_path):
    images, masks = folders
    for i in range(2):
        write_pair(images, masks, f"t{i}.ome.tif", channels=3)
    result = train(quick(images, masks, tmp_path / "m.safetensors", channels=[2, 0]), log=lambda m: None)
    norm = load_checkpoint(result.path).normalization
    assert load_checkpoint(result.path).in_channels == 2
    assert norm.channels == (2, 0) and norm.channel_names == ("RFP", "DAPI")


def test_bad_channel_input_is_one_sentence_naming_the_file(folders, tmp_path):
    images, masks = folders
    write_pair(images, masks, "t0.ome.tif")
    write_pair(images, masks, "t1.ome.tif", channels=3)
    with pytest.raises(TrainingDataError, match=r"^t0.ome.tif: channel 2 does not exist, the image has 2 channels"):
        train(quick(images, masks, tmp_path / "m.safetensors", channels=[2]), log=lambda m: None)
    with pytest.raises(TrainingDataError, match=r"^t1.ome.tif: has 3 channels but t0.ome.tif has 2"):
        train(quick(images, masks, tmp_path / "m.safetensors"), log=lambda m: None)


def test_nan_in_a_float_image_becomes_zero_and_is_reported(folders, tmp_path):
    images, masks = folders
    write_pair(images, masks, "t0.ome.tif", dtype=np.float32, nan=True)
    logged = []
    result = train(quick(images, masks, tmp_path / "m.safetensors"), log=logged.append)
    assert result.path is not None and "t0.ome.tif: 1 NaN/infinite value set to 0" in logged


def test_crops_of_scaled_raw_channels_keep_every_channel_with_augmentation():
    image = RNG.random((40, 50, 4)).astype(np.float32)
    labels = np.zeros((40, 50), np.uint8)
    x, y = CropSampler([(image, labels)], 32, np.random.default_rng(0), augment=True).batch(3)
    assert tuple(x.shape) == (3, 32, 32, 4) and x.dtype.is_floating_point and tuple(y.shape) == (3, 32, 32)
