"""Model > About This Model…: what ``unetseg info`` prints, laid out for people.

Built from the same ``core.model.info.model_info`` dictionary as the command line, so the two
never disagree: classes with their colours, architecture, parameters, training data and recipe,
calibration, quality figures, and the device the model runs on.  **Copy as Text** copies the
``unetseg info`` text (for a bug report or a lab notebook).
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping

from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from core.model.info import calibration_table, duration, render_text
from core.model.summary import NO_DESCRIPTION

TABLE = '<table cellspacing="0" cellpadding="3" style="border-collapse: collapse;">'


def about_model_html(info: Mapping[str, Any]) -> str:
    """The dialog's page: short sections, tables instead of JSON."""
    parts = [f"<h2>{escape(str(info['name']))} <small>({escape(info['summary'])})</small></h2>"]
    if info["description"] != NO_DESCRIPTION:
        parts.append(f"<p>{escape(info['description'])}</p>")
    else:
        parts.append("<p><i>This model carries no description: what it recognises and how well is "
                     "not recorded in its file.</i></p>")
    parts.append(_section("Classes", _classes(info["classes"])))
    parts.append(_section("Model", _pairs(_architecture(info))))
    if info.get("quality"):
        parts.append(_section("Quality", _quality(info["quality"])))
    if info.get("training"):
        parts.append(_section("Training", _training(info["training"])))
    if info.get("calibration"):
        parts.append(_section("Edge refinement calibration", _calibration(info["calibration"])))
    if info.get("provenance"):
        parts.append(_section("Provenance", f"<p>{escape(str(info['provenance']))}</p>"))
    return "\n".join(parts)


def _section(title: str, body: str) -> str:
    return f"<h3>{escape(title)}</h3>{body}"


def _pairs(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td style='color:#555'>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"{TABLE}{cells}</table>"


def _classes(classes: list[dict]) -> str:
    rows = []
    for c in classes[:64]:
        r, g, b = c["color"]
        swatch = (f"<span style='background-color:#{r:02x}{g:02x}{b:02x}; color:#{r:02x}{g:02x}{b:02x};'>"
                  "&#9608;&#9608;&#9608;</span>")
        rows.append(f"<tr><td align='right'>{c['id']}</td><td>{swatch}</td><td>{escape(c['name'])}</td>"
                    f"<td style='color:#777'>#{r:02x}{g:02x}{b:02x}</td></tr>")
    more = f"<p>… and {len(classes) - 64} more (see <code>unetseg info</code>)</p>" if len(classes) > 64 else ""
    return f"{TABLE}{''.join(rows)}</table>{more}"


def _architecture(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    norm = info["normalization"]
    rows = [("architecture", f"{info['architecture']}, {info['in_channels']} input channels, "
                             f"{info['num_classes']} classes"),
            ("parameters", f"{info['parameters']:,}"),
            ("cost", f"{info['kflop_per_pixel']:.0f} kFLOP per pixel" +
             (" (x8 with test-time augmentation)" if info["tta"] else "")),
            ("test-time augmentation", "on by default" if info["tta"] else "off by default"),
            ("edge refinement", str(info["refine_text"])),
            ("receptive field", f"{info['halo']} px"),
            ("normalisation", f"mean {tuple(norm['mean'])}, std {tuple(norm['std'])}")]
    if info.get("file"):
        rows.append(("file", str(info["file"])))
    if info.get("device"):
        rows.append(("device", str(info["device"])))
    return rows


def _quality(quality: Mapping[str, Any]) -> str:
    rows = []
    for row in quality.get("results", []):
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in (row.get("per_class") or {}).items())
        rows.append(f"<tr><td><b>{row.get('miou', 0):.3f}</b></td><td>{escape(str(row.get('setting', '')))}"
                    f"<br><span style='color:#777'>{escape(per_class)}</span></td></tr>")
    return (f"<p>Mean IoU on {escape(str(quality.get('benchmark', '')))}</p>"
            f"{TABLE}{''.join(rows)}</table>")


def _training(training: Mapping[str, Any], depth: int = 0) -> str:
    rows: list[tuple[str, str]] = []
    if "train_images" in training:
        rows.append(("images", f"{training['train_images']:,} for training, {training.get('val_images', 0):,} "
                               "for validation"))
    dataset = training.get("dataset")
    if isinstance(dataset, Mapping):
        rows.append(("data set", f"{dataset.get('images')} pairs, sha256 {dataset.get('files_sha256')}"))
    for split, label in (("val", "validation mIoU"), ("train", "mIoU on the training images")):
        if f"{split}_miou" in training:
            rows.append((label, f"{training[f'{split}_miou']:.4f} (kept epoch {training.get('epochs')} of "
                                f"{training.get('epochs_planned')})"))
    selection = training.get("selection")
    if isinstance(selection, Mapping) and selection.get("note"):
        rows.append(("kept because", str(selection["note"])))
    if "seconds" in training:
        rows.append(("time", f"{duration(training['seconds'])} on {training.get('device', '?')}"))
    config = training.get("config")
    if isinstance(config, Mapping):
        recipe = ", ".join(f"{k} = {v}" for k, v in config.items()
                           if v is not None and k not in ("command", "images", "masks", "out")
                           and not (k.startswith("kd_") and not config.get("teacher")))
        rows.append(("recipe", recipe))
    if training.get("command"):
        rows.append(("command", str(training["command"])))
    body = _pairs(rows)
    init = training.get("init")
    if isinstance(init, Mapping) and isinstance(init.get("training"), Mapping) and depth < 3:
        body += (f"<p><b>Fine-tuned from</b> {escape(str(init.get('model')))}:</p>"
                 + _training(init["training"], depth + 1))
    return body


def _calibration(cal: Mapping[str, Any]) -> str:
    adopted = cal.get("refine")
    if isinstance(adopted, Mapping):
        verdict = (f"Adopted radius {adopted['radius']} px (eps {adopted['eps']:g}): mIoU "
                   f"{cal.get('miou_unrefined', 0):.4f} → {cal.get('miou', 0):.4f} on {cal.get('images')} images.")
    else:
        verdict = (f"Not adopted: no setting raised mIoU enough over {cal.get('miou_unrefined', 0):.4f} "
                   f"on {cal.get('images')} images.")
    html = f"<p>{escape(verdict)}</p>"
    table = calibration_table(cal)
    if table:
        radii, epsilons, cells = table
        head = "<tr><th>radius</th>" + "".join(f"<th>eps {e:g}</th>" for e in epsilons) + "</tr>"
        rows = []
        for r in radii:
            tds = []
            for e in epsilons:
                v = cells.get((r, e))
                best = isinstance(adopted, Mapping) and adopted["radius"] == r and adopted["eps"] == e
                text = "" if v is None else (f"<b>{v:.4f}</b>" if best else f"{v:.4f}")
                tds.append(f"<td align='right'>{text}</td>")
            rows.append(f"<tr><td align='right'>{r}</td>{''.join(tds)}</tr>")
        html += f"{TABLE}{head}{''.join(rows)}</table>"
    return html


class AboutModelDialog(QDialog):
    """Non-modal; takes the ``model_info`` dictionary, never the window."""

    def __init__(self, info: Mapping[str, Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("about_model_dialog")
        self.setWindowTitle(f"About This Model: {info['name']}")
        self.info = info
        self.browser = QTextBrowser()
        self.browser.setObjectName("about_model_text")
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(about_model_html(info))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy as Text", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_text)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(640, 720)

    def copy_text(self) -> None:
        """``unetseg info``'s text for this model onto the clipboard."""
        QApplication.clipboard().setText(render_text(self.info))
