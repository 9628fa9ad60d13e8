"""Channel order: a model trained with ``--channels 1,0`` segments held-out images as it was trained,
on every path (whole, tiled, streamed, Dask).

    python bench/channel_order.py [--epochs 8] [--steps 20] [--train 8] [--held-out 4] [--device auto]

The images (generated here, never skimage.data): two 12-bit channels (0-4095), 192 x 192, discs of
one size range on a dim noisy background in both channels.  Class 1 discs are bright in channel 0
only, class 2 discs in channel 1 only, so which class a disc is depends on the order the model
reads the channels in: read swapped, the two classes swap.

Two models, same recipe (`unetseg train`, UNetSmall, seed 0): one with ``--channels 1,0`` and one
without (the file's order).  Each held-out image (other seeds, written as OME-TIFF in the file's
order) is segmented by the 1,0 model on four paths: whole (one pass), tiled (96-pixel windows),
streamed (core.segment.streaming from the file, 64-pixel blocks) and Dask (a LocalCluster of 2
workers on the loopback, one task per block).  "As trained": the same model given the held-out
images with their channels already swapped in memory and told to read them as given
(``channels=[0, 1]``), i.e. exactly what it saw in training.  Also shown: the same model with its
recorded order ignored (the file's order forced, ``channels=[0, 1]``: what every path did before
the fix), and the file-order model.  mIoU: pooled over the held-out pixels, mean over the two disc
classes (and over the three classes with the background).  Target: on every path, masks identical
to "as trained".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.metrics import IoUAccumulator  # noqa: E402

SIZE = 192


def generate(seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(H x W x 2 uint16 image in 12 bits, H x W labels: 0 background, 1 and 2 the two kinds of disc)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint8)
    signal = np.zeros((size, size, 2), np.float64)
    for _ in range(int(rng.integers(12, 20))):
        cy, cx, r = rng.uniform(10, size - 10), rng.uniform(10, size - 10), rng.uniform(6, 12)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        kind = int(rng.integers(1, 3))
        labels[disc] = kind
        signal[disc] = 0
        signal[disc, kind - 1] = rng.uniform(1500, 3500)
    background = rng.uniform(150, 400, 2)
    image = background + signal * (1 + 0.1 * rng.standard_normal((size, size, 1))) + rng.normal(0, 30, (size, size, 2))
    return image.clip(0, 4095).astype(np.uint16), labels


def write_set(root: Path, seeds: list[int]) -> tuple[Path, Path, list[Path]]:
    import tifffile
    from PIL import Image

    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    paths = []
    for seed in seeds:
        image, labels = generate(seed)
        path = images / f"s{seed}.ome.tif"
        tifffile.imwrite(path, np.moveaxis(image, 2, 0), tile=(64, 64),
                         metadata={"axes": "CYX", "Channel": {"Name": ["A", "B"]}})
        Image.fromarray(labels).save(masks / f"s{seed}.png")
        paths.append(path)
    return images, masks, paths


def train_model(images: Path, masks: Path, out: Path, args, channels: str | None) -> float:
    from core.cli.main import main

    command = ["train", "--images", str(images), "--masks", str(masks), "--arch", "small", "--epochs",
               str(args.epochs), "--steps-per-epoch", str(args.steps), "--patch", "64", "--batch", "8",
               "--lr", "3e-3", "--seed", "0", "--val-fraction", "0", "--no-calibrate", "--no-tta",
               "--device", args.device, "-o", str(out)]
    if channels:
        command += ["--channels", channels]
    t0 = time.perf_counter()
    if main(command) != 0:
        raise SystemExit(f"training {out.name} failed")
    return time.perf_counter() - t0


def on_dask(model: Path, path: Path, store_path: Path, client, device: str) -> np.ndarray:
    from core.io.label_store import LabelStore
    from core.io.sources import open_source
    from core.segment.cluster import segment_on_cluster
    from core.segment.inference import Segmenter
    from core.segment.streaming import StreamPlan

    seg = Segmenter.load(model, device=device)
    with open_source(path) as src:
        plan = StreamPlan.make(seg, src.height, src.width, 96, False, False, block_target=64, source=src)
        store = LabelStore.create(store_path, src.height, src.width, plan.chunks, plan.run_record(seg, src))
    segment_on_cluster(client, str(model), device, path, store, plan)
    return store.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--train", type=int, default=8, help="training images")
    parser.add_argument("--held-out", type=int, default=4, help="held-out images (other seeds)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from core.io.images import load_image
    from core.io.sources import open_source
    from core.segment.cluster import connect
    from core.segment.inference import Segmenter
    from core.segment.streaming import segment_source

    with tempfile.TemporaryDirectory(prefix="unetseg-bench-order-") as tmp:
        root = Path(tmp)
        images, masks, _ = write_set(root / "train", list(range(args.train)))
        _, _, held = write_set(root / "held", [10_000 + i for i in range(args.held_out)])
        truth = [generate(10_000 + i)[1] for i in range(args.held_out)]
        swapped, plain = root / "order_1_0.safetensors", root / "file_order.safetensors"
        seconds = {"1,0": train_model(images, masks, swapped, args, "1,0"),
                   "file": train_model(images, masks, plain, args, None)}
        seg, ref = Segmenter.load(swapped, device=args.device), Segmenter.load(plain, device=args.device)
        print(f"recorded channels: {seg.normalization.channels}, names {seg.normalization.channel_names}")
        fast = dict(tta=False, refine=False)
        names = ("whole", "tiled", "streamed", "Dask", "as trained", "ignored", "file")
        rows: dict[str, list[np.ndarray]] = {k: [] for k in names}
        with connect("local:2") as client:
            for i, path in enumerate(held):
                pixels = load_image(path).pixels
                rows["whole"].append(seg.segment(pixels, tile_size=0, **fast))
                rows["tiled"].append(seg.segment(pixels, tile_size=96, **fast))
                with open_source(path) as src:
                    rows["streamed"].append(segment_source(seg, src, tile_size=96, block_target=64, **fast))
                rows["Dask"].append(on_dask(swapped, path, root / f"dask{i}.ome.zarr", client, args.device))
                given = np.ascontiguousarray(pixels[..., ::-1])
                rows["as trained"].append(seg.segment(given, tile_size=0, channels=[0, 1], **fast))
                rows["ignored"].append(seg.segment(pixels, tile_size=0, channels=[0, 1], **fast))
                rows["file"].append(ref.segment(pixels, tile_size=0, **fast))

    def miou(labels: list[np.ndarray]) -> tuple[float, float]:
        acc = IoUAccumulator(3)
        for got, want in zip(labels, truth):
            acc.update(got, want)
        return acc.mean_iou([1, 2]), acc.mean_iou([0, 1, 2])

    scores = {name: miou(labels) for name, labels in rows.items()}
    paths = ("whole", "tiled", "streamed", "Dask")
    identical = {name: all(np.array_equal(a, b) for a, b in zip(rows[name], rows["as trained"])) for name in paths}
    print(f"\ntrained in {seconds['1,0']:.0f} s (--channels 1,0) and {seconds['file']:.0f} s (file order); "
          f"{args.train} training, {args.held_out} held-out images of {SIZE} x {SIZE}\n")
    print("| model | path | held-out mIoU (2 disc classes) | with background (3 classes) | mask = as trained |")
    print("|---|---|---|---|---|")
    for name in paths:
        print(f"| `--channels 1,0` | {name} | {scores[name][0]:.3f} | {scores[name][1]:.3f} | "
              f"{'yes' if identical[name] else 'NO'} |")
    print(f"| `--channels 1,0`, as trained (channels swapped in memory, read as given) | whole | "
          f"{scores['as trained'][0]:.3f} | {scores['as trained'][1]:.3f} | |")
    print(f"| `--channels 1,0`, recorded order ignored (file order forced: every path before the fix) | whole | "
          f"{scores['ignored'][0]:.3f} | {scores['ignored'][1]:.3f} | |")
    print(f"| file order (no `--channels`) | whole | {scores['file'][0]:.3f} | {scores['file'][1]:.3f} | |")
    met = all(identical.values())
    print(f"\ntarget (on every path, masks identical to the model's as trained): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
