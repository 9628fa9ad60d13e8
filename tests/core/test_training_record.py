"""What a training run records: its command with relative paths, and the data set's identity."""

from __future__ import annotations

from PIL import Image

from core.training.record import command_line, dataset_identity


def test_paths_in_the_command_are_relative_to_the_working_directory(tmp_path):
    cwd = tmp_path / "project"
    argv = ["train", "--images", str(cwd / "data/shapes/images"), "--masks=" + str(cwd / "data/shapes/masks"),
            "--arch", "small", "--init", "small", "--lr", "2e-3", "-o", str(tmp_path / "out/m.safetensors")]
    assert command_line(argv, cwd) == (
        "unetseg train --images data/shapes/images --masks=data/shapes/masks --arch small --init small "
        "--lr 2e-3 -o ../out/m.safetensors")
    assert command_line(["calibrate", str(cwd / "m.safetensors"), "--images", "x y"], cwd) == \
        "unetseg calibrate m.safetensors --images 'x y'"


def _pairs(folder, sizes):
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    pairs = []
    for i, size in enumerate(sizes):
        img, mask = folder / "images" / f"s{i}.png", folder / "masks" / f"s{i}.png"
        Image.new("RGB", size).save(img)
        Image.new("L", size).save(mask)
        pairs.append((img, mask))
    return pairs


def test_dataset_identity_follows_names_and_dimensions_not_folders(tmp_path):
    a = dataset_identity(_pairs(tmp_path / "a", [(8, 6), (5, 5)]))
    moved = dataset_identity(list(reversed(_pairs(tmp_path / "elsewhere/b", [(8, 6), (5, 5)]))))
    other = dataset_identity(_pairs(tmp_path / "c", [(8, 6), (5, 4)]))
    assert a["images"] == 2 and a == moved and a["files_sha256"] != other["files_sha256"]
