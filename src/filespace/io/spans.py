"""Runs of block indexes and the parts of a read: small helpers of the readers."""

from __future__ import annotations

from collections.abc import Iterator


def parts_joined(parts: list[memoryview]) -> bytes:
    """The parts as one ``bytes``: a whole block from disk as it is (immutable, no copy)."""
    if len(parts) == 1 and isinstance(parts[0].obj, bytes) and len(parts[0].obj) == len(parts[0]):
        return parts[0].obj
    return b"".join(parts)


def runs(indexes: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs of sorted ``indexes`` as ``(start, stop)`` pairs."""
    start = previous = -2
    for index in indexes:
        if index != previous + 1:
            if start >= 0:
                yield start, previous + 1
            start = index
        previous = index
    if start >= 0:
        yield start, previous + 1
