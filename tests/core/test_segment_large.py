"""The command line for images of any size: segment --format ome-tiff/ome-zarr, --resume, convert."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from core.cli.main import main
from core.segment.inference import Segmenter
from core.io.sources import open_source
from core.training.synthetic import generate_scene
from tests.large_images import write_pyramid_tiff


@pytest.fixture(scope="module")
def scene_tif(tmp_path_factory):
    image = generate_scene(4, 333, 455)[0]
    return image, write_pyramid_tiff(tmp_path_factory.mktemp("in") / "scene.ome.tif", image, levels=2)


def test_segment_writes_both_store_formats_equal_to_the_in_memory_mask(small_weights, scene_tif, tmp_path, capsys):
    image, path = scene_tif
    rc = main(["segment", str(path), "-o", str(tmp_path), "--model", str(small_weights), "--tile", "160",
               "--format", "ome-tiff", "ome-zarr", "npy", "--no-tta", "--no-refine"])
    assert rc == 0, capsys.readouterr().err
    expected = Segmenter.load(small_weights, device="cpu").segment(image, tile_size=160, tta=False, refine=False)
    assert np.array_equal(tifffile.imread(tmp_path / "scene.ome.tif"), expected)
    import zarr

    assert np.array_equal(zarr.open_group(str(tmp_path / "scene.ome.zarr"), mode="r")["0"][:], expected)
    assert np.array_equal(np.load(next(tmp_path.glob("scene*.npy"))), expected)  # in-memory formats still work
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the work store is gone


def test_resume_continues_an_interrupted_run(small_weights, scene_tif, tmp_path, monkeypatch, capsys):
    import core.io.label_store as ls

    image, path = scene_tif
    args = ["segment", str(path), "-o", str(tmp_path), "--model", str(small_weights), "--tile", "160", "--chunk", "192",
            "--format", "ome-tiff", "--no-tta", "--no-refine"]
    real = ls.LabelStore.write_block
    count = []

    def dies_after_one(self, block, labels):
        if count:
            raise KeyboardInterrupt  # Ctrl+C (or a kill) after the first chunk
        count.append(block)
        real(self, block, labels)

    monkeypatch.setattr(ls.LabelStore, "write_block", dies_after_one)
    assert main(args) == 130
    monkeypatch.undo()
    assert not (tmp_path / "scene.ome.tif").exists()
    work = tmp_path / ".scene.ome.tif.work.zarr"
    assert ls.LabelStore.open(work).done() == set(count)
    assert main(args + ["--resume"]) == 0
    expected = Segmenter.load(small_weights, device="cpu").segment(image, tile_size=160, tta=False, refine=False)
    assert np.array_equal(tifffile.imread(tmp_path / "scene.ome.tif"), expected)


def test_bad_inputs_are_one_line_each_and_the_rest_still_run(small_weights, scene_tif, tmp_path, capsys):
    _, good = scene_tif
    (tmp_path / "empty.tif").write_bytes(b"")
    rc = main(["segment", str(tmp_path / "empty.tif"), str(good), "-o", str(tmp_path / "out"), "--model",
               str(small_weights), "--format", "ome-zarr", "--no-tta", "--no-refine"])
    err = capsys.readouterr().err
    assert rc == 1 and "empty.tif: the file is empty (0 bytes)" in err and "Traceback" not in err
    assert (tmp_path / "out" / "scene.ome.zarr").is_dir()
    assert main(["segment", str(good), "-o", str(tmp_path), "--resume"]) == 1
    assert "--resume need --format ome-tiff or --format ome-zarr" in capsys.readouterr().err


def test_convert_streams_a_pyramidal_copy_both_ways(tmp_path, capsys):
    image = generate_scene(7, 333, 1100)[0]
    path = write_pyramid_tiff(tmp_path / "wide.tif", image, levels=1, ome=False)
    assert main(["convert", str(path), "-o", str(tmp_path / "c.ome.zarr")]) == 0
    assert main(["convert", str(tmp_path / "c.ome.zarr"), "-o", str(tmp_path / "c.ome.tif")]) == 0
    for out in ("c.ome.zarr", "c.ome.tif"):
        with open_source(tmp_path / out) as src:
            assert src.levels == [(1100, 333), (550, 167), (275, 84)]
            assert np.array_equal(src.read(0, 333, 0, 1100), image)
            half = src.read_level(1)[:166].astype(int)
            two_by_two = image[:332].reshape(166, 2, 550, 2, 3).mean((1, 3))
            assert np.abs(half - two_by_two).max() <= 1  # 2x2 means
    assert main(["convert", str(path), "-o", str(tmp_path / "c.png")]) == 1
    assert "must end in .ome.tif or .ome.zarr" in capsys.readouterr().err


def test_in_memory_formats_on_a_huge_tiled_tiff_name_the_formats_that_work(small_weights, tmp_path, capsys):
    from tests.large_images import write_repeated_tiff

    big = write_repeated_tiff(tmp_path / "huge.tif", 16384, 16384, np.full((512, 512, 3), 40, np.uint8))
    assert main(["segment", str(big), "-o", str(tmp_path / "out"), "--model", str(small_weights)]) == 1
    err = capsys.readouterr().err
    assert "huge.tif: image is too large (16384x16384 pixels" in err
    assert "--format ome-tiff` or `--format ome-zarr` segments it tile by tile" in err


def test_core_and_the_cli_work_without_dask_installed():
    import subprocess
    import sys
    from pathlib import Path

    code = r"""
import importlib, pkgutil, sys
class NoDask:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('dask', 'distributed'):
            raise ImportError(f'imported {name}')
sys.meta_path.insert(0, NoDask())
import core
for m in pkgutil.walk_packages(core.__path__, 'core.'):
    if m.name != 'core.__main__':
        importlib.import_module(m.name)
from core.segment.cluster import ClusterError, connect
try:
    with connect('local:2'):
        pass
except ClusterError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--dask needs dask.distributed: pip install 'unetseg[dask]'" in out.stdout


def test_folders_yield_slides_and_ome_zarr_and_stems_drop_the_ome_suffix(tmp_path):
    from core.cli.segment_large import expand_source_inputs, source_stems

    for name in ("a.png", "b.svs", "c.ome.zarr/.zgroup", "d.txt", ".hidden.svs", "e.ome.tif"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = expand_source_inputs([str(tmp_path)])
    assert sorted(p.name for p in found) == ["a.png", "b.svs", "c.ome.zarr", "e.ome.tif"]
    assert source_stems([tmp_path / "x.ome.tif", tmp_path / "x.ome.zarr", tmp_path / "y.svs"]) == ["x", "x-2", "y"]


def test_resume_segments_again_when_another_image_took_the_name(small_weights, tmp_path, monkeypatch, capsys):
    """Finding 10: an interrupted run, then another image of the same name, pixel size, file size and
    modification time: ``--resume`` must not finish it with the first image's blocks."""
    import os

    import core.io.label_store as ls

    first, second = generate_scene(4, 200, 260)[0], generate_scene(9, 200, 260)[0]
    path = tmp_path / "scene.tif"
    tifffile.imwrite(path, first, tile=(64, 64), photometric="rgb")  # uncompressed: same file size for both
    args = ["segment", str(path), "-o", str(tmp_path / "out"), "--model", str(small_weights), "--tile", "160",
            "--chunk", "96", "--format", "ome-tiff", "--no-tta", "--no-refine"]
    real = ls.LabelStore.write_block

    def dies_after_one(self, block, labels):
        if ls.LabelStore.open(self.path).done():
            raise KeyboardInterrupt
        real(self, block, labels)

    monkeypatch.setattr(ls.LabelStore, "write_block", dies_after_one)
    assert main(args) == 130
    monkeypatch.undo()
    before = path.stat()
    tifffile.imwrite(path, second, tile=(64, 64), photometric="rgb")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    expected = Segmenter.load(small_weights, device="cpu").segment(second, tile_size=160, tta=False, refine=False)
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "scene.ome.tif"), expected)
    assert "scene.tif: the image is not the one the interrupted run segmented" in capsys.readouterr().err


def test_fingerprint_reads_small_files_whole_and_samples_large_ones(tmp_path, monkeypatch):
    import os

    import core.io.fingerprint as fp

    path = tmp_path / "a.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 300_000, np.uint8).tobytes())
    path.write_bytes(data)
    small = fp.file_fingerprint(path)
    os.utime(path, ns=(1, 2_000_000_000))
    assert fp.file_fingerprint(path) == small  # whole file: the bytes decide, not the time
    data[150_000] ^= 1
    path.write_bytes(data)
    os.utime(path, ns=(1, 2_000_000_000))
    assert fp.file_fingerprint(path) != small  # one bit in the middle
    monkeypatch.setattr(fp, "WHOLE_FILE_LIMIT", 1000)  # the sampled way, on a small file
    monkeypatch.setattr(fp, "SAMPLE_BYTES", 100)
    sampled = fp.file_fingerprint(path)
    data[-1] ^= 1  # the last byte is always sampled
    path.write_bytes(data)
    os.utime(path, ns=(1, 2_000_000_000))
    assert fp.file_fingerprint(path) != sampled
    changed = fp.file_fingerprint(path)
    os.utime(path, ns=(1, 3_000_000_000))
    assert fp.file_fingerprint(path) != changed  # between samples only the time can tell
    assert fp.file_fingerprint(tmp_path / "missing") == ""
