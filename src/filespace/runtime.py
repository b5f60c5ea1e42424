"""The process-wide state of the library, and its reset in a forked child.

Connection pools, fetch threads and caches are made once per process and
shared by every open ``Filespace``. A child made by ``fork`` (multiprocessing's
default on Linux, PyTorch DataLoader workers) inherits them in whatever state
the parent's threads left them: locks held, queues that no thread serves,
sockets the parent is reading. So each of them is registered here, and one
``after_in_child`` hook drops them all; the child builds its own on first use.

- ``singleton(factory)`` returns a getter for one shared instance, built on
  first use and built again in a forked child.
- ``on_fork(reset)`` runs ``reset`` in a forked child, for state a getter does
  not fit (objects that fix their own locks, such as open caches).
- ``forks()`` counts the forks this process descends from, so an object made
  before one can notice that it now lives in a child.

This module is ground level: the data path registers with it, never the
reverse.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Singleton(Generic[T]):
    """One instance per process, made by ``factory`` on first call."""

    __slots__ = ("_factory", "_lock", "_value")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Singleton({getattr(self._factory, '__qualname__', self._factory)!r})"

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._factory()
        return value

    def _forget(self) -> None:
        # The parent's lock may have been held at the fork: a new one, and no value.
        self._lock = threading.Lock()
        self._value = None


_singletons: list[Singleton[Any]] = []
_resets: list[Callable[[], None]] = []
_forks = 0


def singleton(factory: Callable[[], T]) -> Singleton[T]:
    """A getter of the process's one ``factory()`` instance (a forked child makes its own)."""
    slot = Singleton(factory)
    _singletons.append(slot)
    return slot


def on_fork(reset: Callable[[], None]) -> Callable[[], None]:
    """Run ``reset`` in every forked child (after the singletons are dropped)."""
    _resets.append(reset)
    return reset


def forks() -> int:
    """How many forks lie between the first process and this one."""
    return _forks


def _after_fork_in_child() -> None:
    global _forks  # noqa: PLW0603 - the one counter this hook exists to keep
    _forks += 1
    for slot in _singletons:
        slot._forget()
    for reset in _resets:
        reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
