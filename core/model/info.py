"""What a model is, in one structure: `unetseg info` prints it, `--json` dumps it, and the app's
About This Model dialog lays it out.

Why one structure: the three must not disagree, and the checkpoint's raw metadata (a nested
JSON blob of thousands of characters) is for scripts, not people.  ``model_info`` gathers the
facts; ``render_text`` turns them into short ``key = value`` lines and a calibration table.
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any, Mapping

from core.classes import classes_to_json
from core.model.summary import NO_DESCRIPTION

if TYPE_CHECKING:  # torch loads only when a model is described, not when this is imported
    from core.model.checkpoints import Checkpoint

KNOWN_KEYS = ("description", "summary", "training", "calibration", "quality", "provenance", "inference",
              "version", "in_channels", "num_classes")
HIDDEN_RECIPE_KEYS = ("command",)
WIDTH = 96


def model_info(ck: Checkpoint, name: str, device: str | None = None) -> dict:
    """Everything a person or a script may want to know about checkpoint ``ck``."""
    from core.model.networks import HALO, count_parameters, flops_per_pixel

    model = ck.build()
    flops = flops_per_pixel(model)
    return {
        "name": name,
        "file": str(ck.path) if ck.path else None,
        "summary": ck.summary,
        "description": ck.description,
        "architecture": f"UNet{ck.arch.title()}",
        "in_channels": ck.in_channels,
        "num_classes": ck.num_classes,
        "classes": classes_to_json(ck.classes),
        "parameters": count_parameters(model),
        "kflop_per_pixel": round(flops / 1e3, 1),
        "tta": ck.tta,
        "refine": ck.refine.to_json() if ck.refine else None,
        "refine_text": str(ck.refine) if ck.refine else "off",
        "halo": HALO[ck.arch],
        "normalization": ck.normalization.to_json(),
        "training": ck.metadata.get("training"),
        "calibration": ck.metadata.get("calibration"),
        "quality": ck.metadata.get("quality"),
        "provenance": ck.metadata.get("provenance"),
        "device": device,
        "metadata": full_metadata(ck),
    }


def full_metadata(ck: Checkpoint) -> dict:
    """The checkpoint's metadata as stored, with the fields the loader lifted out put back."""
    return {"arch": ck.arch, "in_channels": ck.in_channels, "num_classes": ck.num_classes,
            "classes": classes_to_json(ck.classes), "normalization": ck.normalization.to_json(),
            **ck.metadata}


def to_json(infos: list[dict], devices: Mapping[str, Any]) -> str:
    return json.dumps({"models": infos, "devices": dict(devices)}, indent=1, default=str)


# --------------------------------------------------------------------------- text


def render_text(info: Mapping[str, Any]) -> str:
    """A readable summary of one ``model_info`` (the raw metadata stays for ``--json``)."""
    lines = [f"model {info['name']}: {info['architecture']} ({info['summary']})"]
    if info["description"] != NO_DESCRIPTION:
        lines += _wrap(info["description"], "  ")
    if info.get("file"):
        lines.append(f"  file: {info['file']}")
    norm = info["normalization"]
    names = f" ({', '.join(norm['channel_names'])})" if norm.get("channel_names") else ""
    picked = f", image channels {','.join(str(c) for c in norm['channels'])}" if norm.get("channels") else ""
    lines.append(f"  input channels: {info['in_channels']}{names}{picked}; classes: {info['num_classes']}")
    lines.append(f"  parameters: {info['parameters']:,}; {info['kflop_per_pixel']:.0f} kFLOP per pixel")
    if info["tta"]:
        lines.append(f"  test-time augmentation on by default: {8 * info['kflop_per_pixel']:.0f} kFLOP per pixel")
    fitted = " (fitted by `unetseg calibrate`)" if info["refine"] else ""
    lines.append(f"  edge refinement: {info['refine_text']}{fitted}")
    if norm.get("mode") == "percentile":
        low, high = norm["percentiles"]
        rule = f"raw channels, each scaled by its {low:g}-{high:g} percentiles per image"
    else:
        rule = f"mean {tuple(norm['mean'])}, std {tuple(norm['std'])}, range 0-{norm['value_range']:g}"
    lines.append(f"  receptive-field halo: {info['halo']} px; normalisation: {rule}")
    if info.get("device"):
        lines.append(f"  device: {info['device']}")
    lines.append("  classes:")
    for c in info["classes"][:40]:
        r, g, b = c["color"]
        lines.append(f"    {c['id']:3d}  #{r:02x}{g:02x}{b:02x}  {c['name']}")
    if len(info["classes"]) > 40:
        lines.append(f"    ... and {len(info['classes']) - 40} more")
    if info.get("quality"):
        lines += quality_lines(info["quality"], "  ")
    if info.get("training"):
        lines += training_lines(info["training"], "  ")
    if info.get("calibration"):
        lines += calibration_lines(info["calibration"], "  ")
    if info.get("provenance"):
        lines.append("  provenance:")
        lines += _wrap(str(info["provenance"]), "    ")
    other = {k: v for k, v in info["metadata"].items()
             if k not in KNOWN_KEYS and k not in ("arch", "classes", "normalization")}
    for key, value in other.items():
        lines.append(f"  {key} = {_short(value)}")
    return "\n".join(lines)


def quality_lines(quality: Mapping[str, Any], indent: str) -> list[str]:
    lines = _wrap(f"quality: {quality.get('benchmark', '')}".rstrip(), indent, hang="  ")
    for row in quality.get("results", []):
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in (row.get("per_class") or {}).items())
        lines.append(f"{indent}  mIoU {row.get('miou', float('nan')):.3f}  {row.get('setting', '')}"
                     + (f" ({per_class})" if per_class else ""))
    return lines


def training_lines(training: Mapping[str, Any], indent: str, title: str = "training") -> list[str]:
    """The run's outcome as ``key = value`` lines, then its recipe, then what it started from."""
    rows: list[tuple[str, str]] = []
    if training.get("command"):
        rows.append(("command", str(training["command"])))
    if "train_images" in training:
        pixels = training.get("train_pixels")
        rows.append(("images", f"{training['train_images']:,} training + {training.get('val_images', 0):,} validation"
                     + (f" ({pixels:,} training pixels)" if isinstance(pixels, int) else "")))
    dataset = training.get("dataset")
    if isinstance(dataset, Mapping):
        rows.append(("dataset", f"{dataset.get('images')} image/mask pairs, files sha256 {dataset.get('files_sha256')}"))
    if "epochs" in training:
        rows.append(("kept epoch", f"{training['epochs']} of {training.get('epochs_planned', '?')}"))
    for split, label in (("val", "val mIoU"), ("train", "train mIoU (no held-out images)")):
        if f"{split}_miou" in training:
            per_class = ", ".join(f"{k} {v:.3f}" for k, v in (training.get(f"{split}_iou_per_class") or {}).items())
            rows.append((label, f"{training[f'{split}_miou']:.4f}" + (f" ({per_class})" if per_class else "")))
    selection = training.get("selection")
    if isinstance(selection, Mapping) and selection.get("note"):
        rows.append(("kept because", str(selection["note"])))
    if "seconds" in training:
        rows.append(("time", f"{duration(training['seconds'])} on {training.get('device', '?')}, "
                             f"torch {training.get('torch', '?')}"))
    lines = [f"{indent}{title}:"] + _rows(rows, indent + "  ")
    config = training.get("config")
    if isinstance(config, Mapping):
        recipe = [(k, _short(v)) for k, v in config.items() if v is not None and k not in HIDDEN_RECIPE_KEYS
                  and not (k.startswith("kd_") and not config.get("teacher"))]
        lines.append(f"{indent}  recipe:")
        lines += _rows(recipe, indent + "    ")
    init = training.get("init")
    if isinstance(init, Mapping) and isinstance(init.get("training"), Mapping):
        lines += training_lines(init["training"], indent + "  ", f"fine-tuned from {init.get('model', '?')}")
    elif isinstance(init, Mapping):
        lines.append(f"{indent}  fine-tuned from {init.get('model', '?')} (no record of how it was made)")
    return lines


def calibration_lines(cal: Mapping[str, Any], indent: str) -> list[str]:
    """The adopted setting in one line, then every candidate's mIoU as a radius x eps table."""
    adopted = cal.get("refine")
    outcome = (f"adopted radius {adopted['radius']} px, eps {adopted['eps']:g}: mIoU {cal.get('miou', 0):.4f}"
               if isinstance(adopted, Mapping) else "refinement not adopted (no setting helped enough)")
    tta = "on" if cal.get("tta") else "off"
    lines = [f"{indent}calibration: {cal.get('images', '?')} images, test-time augmentation {tta}",
             f"{indent}  mIoU without refinement {cal.get('miou_unrefined', 0):.4f}; {outcome}"]
    if cal.get("command"):
        lines += _rows([("command", str(cal["command"]))], indent + "  ")
    dataset = cal.get("dataset")
    if isinstance(dataset, Mapping):
        lines += _rows([("dataset", f"{dataset.get('images')} image/mask pairs, files sha256 "
                                    f"{dataset.get('files_sha256')}")], indent + "  ")
    table = calibration_table(cal)
    if table:
        radii, epsilons, cells = table
        lines.append(f"{indent}  {'radius':>6}" + "".join(f"  {'eps ' + format(e, 'g'):>10}" for e in epsilons))
        for r in radii:
            lines.append(f"{indent}  {r:>6}" + "".join(
                f"  {cells[(r, e)]:>10.4f}" if (r, e) in cells else f"  {'':>10}" for e in epsilons))
    return lines


def calibration_table(cal: Mapping[str, Any]) -> tuple[list[int], list[float], dict] | None:
    """``(radii, epsilons, {(radius, eps): mIoU})`` of the scored candidates, or None."""
    cells = {}
    for c in cal.get("candidates") or []:
        try:
            cells[(int(c["radius"]), float(c["eps"]))] = float(c["miou"])
        except (KeyError, TypeError, ValueError):
            continue
    if not cells:
        return None
    return sorted({r for r, _ in cells}), sorted({e for _, e in cells}), cells


def duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _rows(rows: list[tuple[str, str]], indent: str) -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k:<{width}} = {v}" for k, v in rows]


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _wrap(text: str, indent: str, hang: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + hang) or [indent.rstrip()]
