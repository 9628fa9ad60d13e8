"""Messages name what they count: "1 image", and a few of the images, then how many more."""

from __future__ import annotations

from core.wording import counted, some_names


def test_counted_nouns_and_short_lists_of_names():
    assert counted(1, "object") == "1 object" and counted(1200, "object") == "1,200 objects"
    assert some_names(["a.png"]) == "a.png"
    assert some_names(["a.png", "b.png", "c.png"]) == "a.png, b.png and c.png"
    assert some_names([f"{i}.png" for i in range(7)]) == "0.png, 1.png, 2.png and 4 more"
