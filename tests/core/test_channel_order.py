"""A model trained with ``--channels 1,0`` on 2-channel images reads them in that order on every
path: whole, tiled, streamed, on Dask and from the command line; fine-tuning it without
``--channels``, or Live Training from it, keeps the order (the app's path:
tests/gui/test_channel_order.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from core.io.sources import open_source
from core.model.checkpoints import load_checkpoint
from core.segment.inference import Segmenter
from core.segment.streaming import StreamPlan, segment_source
from tests.core.test_raw_channels_model import two_channel_image
from tests.helpers import write_raw_checkpoint

FAST = dict(tta=False, refine=False)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same weights twice: recorded as reading channels 1,0, and as reading the file's order."""
    folder = tmp_path_factory.mktemp("order")
    swapped = write_raw_checkpoint(folder / "swapped.safetensors", 2, picked=[1, 0], names=["GFP", "DAPI"])
    plain = write_raw_checkpoint(folder / "plain.safetensors", 2, names=["GFP", "DAPI"])
    return swapped, plain


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    image = two_channel_image(7, 112, 136)
    path = tmp_path_factory.mktemp("img") / "cells.ome.tif"
    tifffile.imwrite(path, np.moveaxis(image, 2, 0), tile=(64, 64), metadata={"axes": "CYX"})
    return image, path


@pytest.fixture(scope="module")
def expected(models, image_file):
    """What the network gives when its input channels are the file's 1 then 0."""
    image, _ = image_file
    plain = Segmenter.load(models[1], device="cpu")
    labels = plain.segment(np.ascontiguousarray(image[..., ::-1]), tile_size=0, **FAST)
    in_file_order = plain.segment(image, tile_size=0, **FAST)
    assert (labels != in_file_order).mean() > 0.05  # the order matters to these weights
    return labels


def test_the_recorded_order_is_applied_whole_tiled_and_streamed(models, image_file, expected):
    image, path = image_file
    seg = Segmenter.load(models[0], device="cpu")
    assert seg.channel_picks(2) == [1, 0]
    assert np.array_equal(seg.segment(image, tile_size=0, **FAST), expected)
    assert np.array_equal(seg.segment(image, tile_size=seg.halo * 2 + 48, **FAST), expected)
    with open_source(path) as src:
        assert np.array_equal(segment_source(seg, src, tile_size=seg.halo * 2 + 48, block_target=100, **FAST),
                              expected)
        # what a streamed or Dask run's plan sends to every block
        assert StreamPlan.make(seg, src.height, src.width, 96, source=src).raw_input[0] == (1, 0)
    # an explicit --channels still wins: 0,1 reads the file's order
    plain = Segmenter.load(models[1], device="cpu")
    assert np.array_equal(seg.segment(image, tile_size=0, channels=[0, 1], **FAST),
                          plain.segment(image, tile_size=0, **FAST))


def test_the_cli_writes_the_recorded_order_in_every_format(models, image_file, expected, tmp_path):
    from PIL import Image

    from core.cli.main import main
    from core.io.label_store import LabelStore

    _, path = image_file
    assert main(["segment", str(path), "-o", str(tmp_path), "--model", str(models[0]), "--device", "cpu",
                 "--format", "index", "ome-zarr", "--tile", "96", "--no-tta", "--no-refine"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cells.png")), expected)
    assert np.array_equal(LabelStore.open(tmp_path / "cells.ome.zarr").read(), expected)


@pytest.mark.slow  # a local cluster takes seconds to start; the plan's order is checked above
def test_dask_workers_apply_the_recorded_order(models, image_file, expected, tmp_path):
    pytest.importorskip("distributed")
    from core.io.label_store import LabelStore
    from core.segment.cluster import connect, segment_on_cluster

    _, path = image_file
    seg = Segmenter.load(models[0], device="cpu")
    with open_source(path) as src:
        plan = StreamPlan.make(seg, src.height, src.width, 96, False, False, block_target=32, source=src)
        store = LabelStore.create(tmp_path / "d.ome.zarr", src.height, src.width, plan.chunks,
                                  plan.run_record(seg, src))
    assert plan.raw_input[0] == (1, 0)
    with connect("local:1") as client:
        segment_on_cluster(client, str(models[0]), "cpu", path, store, plan)
    assert len(plan.blocks()) >= 4 and np.array_equal(store.read(), expected)


def test_fine_tuning_without_channels_trains_in_the_recorded_order(models, tmp_path):
    """Fine-tuning the 1,0 model on files in the file's order takes the same steps as fine-tuning
    the same weights, reading the file's order, on the files with their channels swapped."""
    from PIL import Image

    from core.training.loop import TrainConfig, train

    def folder(name: str, swap: bool):
        images, masks = tmp_path / name / "images", tmp_path / name / "masks"
        images.mkdir(parents=True)
        masks.mkdir()
        for i in range(2):
            pixels = two_channel_image(20 + i, 48, 64)
            tifffile.imwrite(images / f"t{i}.ome.tif", np.moveaxis(pixels[..., ::-1] if swap else pixels, 2, 0),
                             metadata={"axes": "CYX"})
            Image.fromarray((pixels[..., 0] > np.median(pixels[..., 0])).astype(np.uint8)).save(masks / f"t{i}.png")
        return images, masks

    def tune(init, images, masks, out):
        config = TrainConfig(images, masks, tmp_path / out, init=str(init), epochs=1, patch=32, batch=2,
                             steps_per_epoch=2, calibrate=False, device="cpu", val_fraction=0)
        return load_checkpoint(train(config, log=lambda m: None).path)

    tuned = tune(models[0], *folder("files", swap=False), "tuned.safetensors")
    reference = tune(models[1], *folder("swapped", swap=True), "reference.safetensors")
    assert tuned.normalization.channels == (1, 0)
    assert tuned.state_dict.keys() == reference.state_dict.keys()
    assert all(torch.equal(tuned.state_dict[k], reference.state_dict[k]) for k in tuned.state_dict)


def test_live_training_from_such_a_model_learns_in_its_order(models):
    """Live Training started from the 1,0 model on strokes of a file-order image takes the same
    steps as the same weights, reading the file's order, on the image with its channels swapped."""
    from core.training.live import LiveConfig, LiveTrainer

    pixels = two_channel_image(30, 64, 64)
    strokes = np.full((64, 64), 255, np.uint8)
    strokes[8:12, 4:60], strokes[40:44, 4:60] = 0, 1

    def steps(init, image):
        config = LiveConfig(init=str(init), patch=32, batch=2, threads=1, snapshot_every=0.0, average=0.0,
                            device="cpu")
        trainer, published = LiveTrainer(config), []
        trainer.set_data([(image, strokes)])
        torch.manual_seed(0)  # the new classifier for the strokes' two classes starts alike
        trainer.run(published.append, should_stop=lambda: len(published) >= 2)
        return published[-1].checkpoint

    tuned = steps(models[0], pixels)
    reference = steps(models[1], np.ascontiguousarray(pixels[..., ::-1]))
    assert tuned.normalization.channels == (1, 0)
    assert all(torch.equal(tuned.state_dict[k], reference.state_dict[k]) for k in tuned.state_dict)
