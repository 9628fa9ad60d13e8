"""Desktop integration files and the spec itself: quick checks that need no bundle.

These are not marked ``packaging`` (they take milliseconds), so ``make test-fast`` runs them.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"


def test_png_icon_is_256_square_with_transparent_corners():
    with Image.open(ICONS / "unetseg.png") as im:
        assert im.size == (256, 256) and im.mode == "RGBA"
        assert im.getpixel((0, 0))[3] == 0  # rounded corner
        assert im.getpixel((128, 128))[3] == 255


def test_ico_and_icns_hold_several_sizes():
    with Image.open(ICONS / "unetseg.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(ICONS / "unetseg.icns") as icns:
        assert {(16, 16, 2), (256, 256, 1), (512, 512, 2)} <= set(icns.info["sizes"])
    assert (ICONS / "make_icon.py").is_file()


def test_desktop_entry():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(ROOT / "resources" / "unetseg.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "UNetSeg"
    assert d["Exec"] == "unetseg %F" and d["Icon"] == "unetseg" and d["Terminal"] == "false"
    assert {"Graphics", "Science"} <= set(filter(None, d["Categories"].split(";")))
    mime = set(filter(None, d["MimeType"].split(";")))
    assert {"image/png", "image/jpeg", "image/tiff"} <= mime


def test_spec_uses_only_relative_paths():
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    assert "SPECPATH" in spec
    code = "\n".join(line.split("#", 1)[0] for line in spec.splitlines())
    absolute = re.findall(r"""["'](/(?:home|work|usr|opt|tmp|Users)\b[^"']*|[A-Za-z]:\\[^"']*)["']""", code)
    assert not absolute, f"absolute paths in build.spec: {absolute}"
    assert "upx=False" in spec and "upx=True" not in spec
