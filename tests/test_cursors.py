"""The opaque cursor of ``list_external_files``: it names its store and the last id given."""

from __future__ import annotations

import pytest

from filespace.connect import cursors


def test_a_cursor_goes_back_to_where_it_was_made() -> None:
    assert cursors.decode("", 7) == 0
    for store, after in ((1, 0), (7, 12345), (2**40, 2**62)):
        made = cursors.encode(store, after)
        assert made.startswith("c1.") and "=" not in made
        assert cursors.decode(made, store) == after
    assert cursors.encode(3, 9) == "c1.Mzo5"  # the form is stable: cursors outlive processes


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("garbage", "^malformed cursor$"),
        ("c2.Mzo5", "^malformed cursor$"),
        ("c1.!!!", "^malformed cursor$"),
        ("c1.Mzo", "^malformed cursor$"),  # "3:" has no id
        ("c1.Mzo5OjE", "^malformed cursor$"),  # "3:9:1" has three parts
        ("c1.YTo5", "^malformed cursor$"),  # "a:9"
        ("c1.__8", "^malformed cursor$"),  # not UTF-8
        ("c1.NDo5", "^the cursor belongs to another data store$"),  # store 4
        ("c1.MzotMQ", "^malformed cursor$"),  # "3:-1": ids are never negative
    ],
)
def test_bad_cursors(cursor: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cursors.decode(cursor, 3)


def test_a_cursor_must_be_a_string() -> None:
    with pytest.raises(ValueError, match=r"^cursor must be a string$"):
        cursors.decode(3, 3)  # type: ignore[arg-type]
