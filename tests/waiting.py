"""Waiting for what a test can observe, never for a length of time."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from filespace.objects import http

HANG_S = 120.0  # only a hang lasts this long: the condition normally holds in moments


def until(condition: Callable[[], bool], what: str, poll_s: float = 0.05) -> None:
    """Return once ``condition()`` holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + HANG_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {HANG_S:.0f} s for {what}")
        time.sleep(poll_s)


def expired(url: str) -> bool:
    """Whether the server refuses the presigned ``url`` as expired (else it must serve it)."""
    try:
        http.get_range(url, 0, 1, http.Identity())
    except http.Expired:
        return True
    return False
