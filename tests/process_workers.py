"""Work done in pool worker processes by the cross-process error tests (must be importable)."""

from __future__ import annotations

from typing import Any

import fsspec


def read_file(path: str, storage_options: dict[str, Any]) -> bytes:
    """The bytes of ``filespace://path``, read through fsspec as a data tool reads them."""
    with fsspec.open(f"filespace://{path}", "rb", **storage_options) as handle:
        data: bytes = handle.read()
    return data
