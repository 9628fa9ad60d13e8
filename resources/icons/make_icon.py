"""Draw the UNetSeg application icon: ``python resources/icons/make_icon.py``.

Writes, next to this script:
  * ``unetseg.png``  256x256 RGBA (window icon, Linux desktop entry),
  * ``unetseg.ico``  16-256 px, several sizes in one file (Windows executable),
  * ``unetseg.icns`` 16-1024 px (macOS app bundle).

The design: a rounded blue square with a thick "U" (for UNet) cut into three coloured
segments, the way a segmentation mask labels one object in several classes.  Everything
is drawn at 1024 px and scaled down, so edges are anti-aliased at every size.  The output
is deterministic; rerun the script only when the design changes and commit the files.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
MASTER = 1024
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)

TOP, BOTTOM = (52, 110, 230), (22, 48, 128)  # background gradient
SEGMENTS = ((255, 193, 69), (46, 196, 182), (255, 107, 129))  # amber, teal, coral
GAP = BOTTOM  # colour of the cuts between segments (reads as background)


def _rounded_square(size: int, radius: int) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, size - 1, size - 1), radius=radius, fill=255)
    return mask


def _gradient(size: int) -> Image.Image:
    column = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM)))
    return column.resize((size, size))


def _u_mask(size: int) -> Image.Image:
    """The thick U: two arms with round caps joined by a half ring."""
    s = size / 1024
    cx, top, bend = 512 * s, 300 * s, 560 * s  # arm tops and where the arms meet the half ring
    r, w = 205 * s, 150 * s  # centre-line radius and stroke width
    mask = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(mask)
    outer, inner = r + w / 2, r - w / 2
    d.ellipse((cx - outer, bend - outer, cx + outer, bend + outer), fill=255)
    d.ellipse((cx - inner, bend - inner, cx + inner, bend + inner), fill=0)
    d.rectangle((0, 0, size, bend), fill=0)  # keep the lower half ring only
    for x in (cx - r, cx + r):
        d.rectangle((x - w / 2, top, x + w / 2, bend), fill=255)
        d.ellipse((x - w / 2, top - w / 2, x + w / 2, top + w / 2), fill=255)
    return mask


def _segment_masks(size: int) -> list[Image.Image]:
    """Split the plane into left, bottom and right parts with two slanted cuts."""
    s = size / 1024
    gap = 26 * s
    cx, bend = 512 * s, 560 * s
    parts = []
    # cut lines run from the U's centre of curvature outwards, at -150 and -30 degrees
    angles = (math.radians(150), math.radians(30))
    far = 2 * size

    def ray(angle: float) -> tuple[float, float]:
        return cx + far * math.cos(angle), bend + far * math.sin(angle)

    left = Image.new("L", (size, size), 0)
    ImageDraw.Draw(left).polygon([(cx, bend), ray(angles[0]), (-far, bend + far), (-far, -far), (cx, -far)], fill=255)
    right = Image.new("L", (size, size), 0)
    ImageDraw.Draw(right).polygon([(cx, bend), ray(angles[1]), (far, bend + far), (far, -far), (cx, -far)], fill=255)
    bottom = ImageChops.subtract(ImageChops.invert(left), right)
    cuts = Image.new("L", (size, size), 0)
    dc = ImageDraw.Draw(cuts)
    for a in angles:
        dc.line([(cx, bend), ray(a)], fill=255, width=round(gap))
    for part in (left, bottom, right):
        parts.append(ImageChops.subtract(part, cuts))
    return parts


def draw_master(size: int = MASTER) -> Image.Image:
    radius = round(size * 0.22)
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    icon.paste(_gradient(size), (0, 0), _rounded_square(size, radius))

    # a soft highlight across the upper half gives the square some depth
    shine = Image.new("L", (size, size), 0)
    ImageDraw.Draw(shine).ellipse((-0.3 * size, -0.75 * size, 1.3 * size, 0.42 * size), fill=34)
    shine = ImageChops.multiply(shine.filter(ImageFilter.GaussianBlur(size * 0.03)), _rounded_square(size, radius))
    icon = Image.composite(Image.new("RGBA", (size, size), (255, 255, 255, 255)), icon, shine)
    icon.putalpha(_rounded_square(size, radius))

    u = _u_mask(size)
    shadow = u.filter(ImageFilter.GaussianBlur(size * 0.02)).point(lambda v: v * 0.45)
    shadow = ImageChops.offset(shadow, 0, round(size * 0.018))
    icon = Image.composite(Image.new("RGBA", (size, size), (8, 20, 60, 255)), icon, shadow)
    icon.putalpha(_rounded_square(size, radius))

    for colour, part in zip(SEGMENTS, _segment_masks(size)):
        icon = Image.composite(Image.new("RGBA", (size, size), (*colour, 255)), icon,
                               ImageChops.multiply(u, part))

    # the segmented object: a white blob held by the U, outlined like an editable mask
    s = size / 1024
    blob = Image.new("L", (size, size), 0)
    ImageDraw.Draw(blob).ellipse((512 * s - 92 * s, 470 * s - 92 * s, 512 * s + 92 * s, 470 * s + 92 * s), fill=255)
    icon = Image.composite(Image.new("RGBA", (size, size), (255, 255, 255, 255)), icon, blob)
    return icon


def scaled(master: Image.Image, size: int) -> Image.Image:
    return master.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    master = draw_master()
    scaled(master, 256).save(HERE / "unetseg.png", optimize=True)
    ico = [scaled(master, n) for n in ICO_SIZES]
    ico[-1].save(HERE / "unetseg.ico", format="ICO", sizes=[(n, n) for n in ICO_SIZES], append_images=ico[:-1])
    icns = [scaled(master, n) for n in ICNS_SIZES]
    icns[-1].save(HERE / "unetseg.icns", format="ICNS", append_images=icns[:-1])
    for name in ("unetseg.png", "unetseg.ico", "unetseg.icns"):
        print(HERE / name)


if __name__ == "__main__":
    main()
