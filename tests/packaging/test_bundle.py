"""The packaged app (``dist/unetseg/``, built by ``make dist``) works on a machine without Python.

Every command runs the frozen executable in a scrubbed environment: no PYTHONPATH, no
VIRTUAL_ENV, the virtualenv off PATH, a fresh HOME, offscreen Qt, and a working directory
outside the repository, so nothing can be borrowed from the source tree or the venv.

``make test`` builds the bundle first; ``make test-fast`` (``-m "not packaging"``) skips this
file.  A missing bundle is a failure, never a skip, so CI cannot pass without testing it.
Set UNETSEG_DIST to test a bundle somewhere else (e.g. an unpacked release archive).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("UNETSEG_DIST") or ROOT / "dist" / "unetseg")
EXE = DIST / ("unetseg.exe" if sys.platform == "win32" else "unetseg")
INTERNAL = DIST / "_internal"
SAMPLES = ROOT / "resources" / "samples"
SAMPLE = SAMPLES / "shapes_waves.png"
MIN_SAMPLE_IOU = 0.75  # the small model scores ~0.89 on this sample; a broken bundle scores ~0
MAX_BUNDLE_MB = 900  # CPU torch; CUDA builds are several GB and skip this check
# The app reports its own start-to-window time; the target (bench/startup_frozen.py) is < 2 s.
# This 2-core CI machine measured 0.5 s idle and up to 2.4 s with both cores busy, hence 4 s.
MAX_STARTUP_S = float(os.environ.get("UNETSEG_MAX_STARTUP_S", "4.0"))
COMMANDS = ("open", "segment", "info", "train", "generate", "self-test")


@pytest.fixture(scope="module")
def exe() -> Path:
    if not EXE.is_file():
        pytest.fail(f"the packaged app {EXE} is missing: build it with `make dist` "
                    "(`make test` does), or skip packaging tests with -m 'not packaging'", pytrace=False)
    if not os.access(EXE, os.X_OK):
        pytest.fail(f"{EXE} is not executable", pytrace=False)
    return EXE


@pytest.fixture
def home(tmp_path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def run(exe, home):
    """Run the frozen app in a user-like environment; returns the CompletedProcess."""
    env = scrubbed_env(home)

    def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), *args], env=env, cwd=home, capture_output=True, text=True,
                              timeout=timeout)

    return _run


def scrubbed_env(home: Path) -> dict[str, str]:
    venv = Path(sys.prefix).resolve()
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and not Path(p).resolve().is_relative_to(venv) and not Path(p).resolve().is_relative_to(ROOT)]
    env = {"PATH": os.pathsep.join(path), "HOME": str(home), "TMPDIR": str(home),
           "QT_QPA_PLATFORM": "offscreen", "LANG": "C.UTF-8"}
    for key in ("SYSTEMROOT", "WINDIR", "TEMP", "TMP", "USERPROFILE"):  # Windows cannot start without these
        if key in os.environ:
            env[key] = str(home) if key in ("TEMP", "TMP") else os.environ[key]
    return env


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit status {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


def test_the_bundle_is_built():
    assert EXE.is_file(), (f"the packaged app {EXE} is missing: build it with `make dist` "
                           "(`make test` does), or skip packaging tests with -m 'not packaging'")


def test_scrubbed_environment_has_no_python_setup(tmp_path):
    env = scrubbed_env(tmp_path)
    assert not {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} & set(env)
    assert str(Path(sys.prefix).resolve()) not in env["PATH"]


def test_bundle_layout(exe):
    """Resources where core.resources looks for them (sys._MEIPASS/resources), nothing heavy unused."""
    res = INTERNAL / "resources"
    for rel in ("models/small.safetensors", "models/large.safetensors", "unetseg.desktop",
                "icons/unetseg.png", "icons/unetseg.ico", "icons/unetseg.icns", "docs/getting_started.md"):
        assert (res / rel).is_file(), f"{rel} is not bundled in {res}"
    samples = sorted(p.name for p in (res / "samples").glob("*.png"))
    assert samples == sorted(p.name for p in SAMPLES.glob("*.png")) and samples
    for name in samples:
        assert (res / "samples" / "ground_truth" / name).is_file(), f"ground truth of {name} is not bundled"
    fonts = list((INTERNAL / "qtawesome" / "fonts").glob("*.ttf"))
    assert fonts and list((INTERNAL / "qtawesome" / "fonts").glob("*charmap*.json")), \
        "qtawesome's fonts are not bundled: the app's icons would be blank"
    for unused in ("torch/include", "torch/test", "PySide6/Qt/translations", "PySide6/Qt/qml", "tkinter"):
        assert not (INTERNAL / unused).exists(), f"{unused} should be excluded (build.spec PRUNE/excludes)"
    qt_libs = " ".join(p.name for p in INTERNAL.rglob("*Qt6*"))
    for module in ("WebEngine", "Qml", "Quick", "Multimedia", "3D", "Pdf", "Charts", "Network"):
        assert f"Qt6{module}" not in qt_libs, f"Qt {module} is bundled but unused"


def test_bundle_size(exe):
    cuda = any(INTERNAL.rglob("libtorch_cuda*")) or any(INTERNAL.rglob("torch_cuda*.dll"))
    if cuda:
        pytest.skip("CUDA torch build: several GB by design")
    size = sum(p.stat().st_size for p in DIST.rglob("*") if p.is_file() and not p.is_symlink())
    assert size / 2**20 < MAX_BUNDLE_MB, f"bundle is {size / 2**20:.0f} MB (limit {MAX_BUNDLE_MB} MB)"


def test_version_and_every_command(run):
    proc = run("--version", timeout=60)
    assert proc.returncode == 0, explain(proc)
    assert re.match(r"unetseg \d+\.\d+", proc.stdout), proc.stdout
    proc = run("--help", timeout=60)
    assert proc.returncode == 0, explain(proc)
    for command in COMMANDS:
        assert command in proc.stdout, f"`unetseg {command}` missing from --help"


def test_self_test_passes(run):
    proc = run("self-test")
    assert proc.returncode == 0 and "self-test passed" in proc.stdout, explain(proc)
    for fmt in ("index", "color", "overlay", "tiff", "npy", "coco"):
        assert re.search(rf"format {fmt}: .*: ok", proc.stdout), f"{fmt} export not verified\n{proc.stdout}"


def test_info_lists_the_builtin_models(run):
    proc = run("info", timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert "model small: UNetSmall" in proc.stdout and "model large: UNetLarge" in proc.stdout, proc.stdout
    # the models come from the bundle, never from the source tree
    files = [Path(line.split("file:", 1)[1].strip()) for line in proc.stdout.splitlines() if "file:" in line]
    assert files and all(f.resolve().parent == (INTERNAL / "resources" / "models").resolve() for f in files), \
        proc.stdout


def test_segment_writes_masks_that_match_the_ground_truth(run, tmp_path):
    from core.io.masks import mask_output_path

    out = tmp_path / "masks"
    proc = run("segment", str(SAMPLE), "-o", str(out), "--format", "index", "color")
    assert proc.returncode == 0, explain(proc)
    described = re.search(r"\((\w+), (\d+) classes\)", proc.stderr)
    assert described, f"no model description printed\n{explain(proc)}"
    classes = int(described.group(2))
    index_path = mask_output_path(out, SAMPLE.stem, "index")
    color_path = mask_output_path(out, SAMPLE.stem, "color")
    assert index_path.is_file() and color_path.is_file(), sorted(p.name for p in out.iterdir())

    image = Image.open(SAMPLE)
    with Image.open(index_path) as im:
        assert im.mode in ("P", "L"), im.mode
        labels = np.asarray(im)
    assert labels.shape == (image.height, image.width)
    assert labels.max() < classes, f"label {labels.max()} outside the model's {classes} classes"
    with Image.open(color_path) as im:
        assert im.size == image.size and im.mode in ("RGB", "RGBA")

    truth = np.asarray(Image.open(SAMPLES / "ground_truth" / SAMPLE.name))
    ious = []
    for c in range(1, classes):
        union = np.logical_or(labels == c, truth == c).sum()
        if union:
            ious.append(np.logical_and(labels == c, truth == c).sum() / union)
    assert ious and np.mean(ious) >= MIN_SAMPLE_IOU, f"mean IoU {np.mean(ious):.3f} vs ground truth: {ious}"


def test_gui_starts_shows_the_window_and_quits(run, home):
    # 3 s is enough for the background thread to import torch and load the model as well
    proc = run("open", str(SAMPLE), "--quit-after", "3", "--startup-timing", timeout=30)
    assert proc.returncode == 0, explain(proc)
    match = re.search(r"window shown ([0-9.]+) s after", proc.stdout)
    assert match, f"no startup time printed\n{explain(proc)}"
    assert "Traceback" not in proc.stderr, explain(proc)
    for log in home.rglob("unetseg*.log"):  # the app's error log, wherever its data folder is
        errors = [line for line in log.read_text(errors="replace").splitlines()
                  if re.search(r" (ERROR|CRITICAL) ", line)]
        assert not errors, f"the app logged errors in {log}:\n" + "\n".join(errors[:20])
    assert float(match.group(1)) < MAX_STARTUP_S, f"window took {match.group(1)} s (limit {MAX_STARTUP_S} s)"


@pytest.mark.skipif(sys.platform != "linux", reason="strace is Linux-only")
def test_no_compiler_is_ever_started(exe, tmp_path):
    """The frozen app must not try to compile anything (torch.compile, Inductor, cpp_extension)."""
    strace = next((Path(p) / "strace" for p in os.environ.get("PATH", "").split(os.pathsep)
                   if (Path(p) / "strace").is_file()), None)
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    log = tmp_path / "execve.log"
    home = tmp_path / "strace-home"
    home.mkdir()
    proc = subprocess.run([str(strace), "-f", "-qq", "-e", "trace=execve", "-o", str(log), str(exe),
                           "segment", str(SAMPLE), "-o", str(tmp_path / "out"), "--model", "large"],
                          env=scrubbed_env(home), cwd=home, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, explain(proc)
    started = re.findall(r'execve\("([^"]+)"', log.read_text())
    compilers = [p for p in started if re.search(r"(^|/)(gcc|g\+\+|cc|c\+\+|clang\S*|ld|as|nvcc|cl)$", p)]
    assert not compilers, f"the frozen app started a compiler: {compilers}"
