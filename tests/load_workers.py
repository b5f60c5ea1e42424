"""The reading side of the load test (``tests/test_load.py``): one process's threads.

Each thread reads linked objects through one of the three ways in: ``fs.open``,
fsspec (``filespace://``) and plain ``open`` under the FUSE mount, some threads
all on one object and some spread over the others, whole or in scattered
ranges; every byte is compared with the object's contents (made again here
from their seed, so a worker process needs nothing but its arguments). After
every read the thread asks how big the block cache is (``cache_info``, as
``filespace cache info`` does), so the largest size seen during the load is
known. Spawned worker processes run ``work``, which opens the filespace itself.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import IO, Any

import fsspec

import filespace
from tests.waiting import HANG_S, until

MIB = 1024 * 1024
# A few blocks each (cached in memory and on disk), and one over the reader's
# 8 MiB request size (read sequentially as one stream from a near server).
SIZES = [2 * MIB + 100_003 * index for index in range(7)] + [9 * MIB + 4321]
SHARED = 0  # the object every "same" read is of
READS_PER_THREAD = 3
WAYS = ("fs.open", "fsspec", "mount")
_WRITER = "filespace-cache-writer"  # the disk writer thread of a block cache (io/cache.py)


def name(index: int) -> str:
    """The path object ``index`` is linked at."""
    return f"/load/o{index}.bin"


def payload(index: int) -> bytes:
    """Object ``index``'s contents (seeded: the same in every process)."""
    return random.Random(f"load-object-{index}").randbytes(SIZES[index])


@dataclass
class Setup:
    """How a process reaches the filespace and the mount (picklable for spawned workers)."""

    location: str
    key: str
    cache_root: str
    cache_mb: int
    mountpoint: str


@dataclass
class Outcome:
    """What one process's threads saw in one round."""

    errors: list[str] = field(default_factory=list)
    reads: int = 0
    bytes: int = 0
    largest_cache: int = 0

    def add(self, other: Outcome) -> None:
        self.errors += other.errors
        self.reads += other.reads
        self.bytes += other.bytes
        self.largest_cache = max(self.largest_cache, other.largest_cache)


@dataclass
class Resources:
    """A process's open file descriptors (by kind) and threads."""

    fds: Counter[str]
    tasks: int
    python_threads: int

    @property
    def pooled(self) -> Counter[str]:
        """Descriptors of pools and of work under way: sockets, SQLite's database files, and
        the disk tier's ledger (held while a batch of blocks is written, by the writer
        or a reader helping it)."""
        return Counter({kind: n for kind, n in self.fds.items() if kind in _POOLED})

    @property
    def others(self) -> Counter[str]:
        """Every other descriptor: these must not grow from round to round."""
        return Counter({kind: n for kind, n in self.fds.items() if kind not in _POOLED})


_POOLED = {"socket", "sqlite", "ledger"}


def resources(pid: int | str = "self") -> Resources:
    """What process ``pid`` holds now, from ``/proc``."""
    kinds: Counter[str] = Counter()
    folder = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(folder):
        try:
            target = os.readlink(folder / fd)
        except FileNotFoundError:  # closed while listed (our own listing's descriptor)
            continue
        kinds[_kind(target)] += 1
    tasks = len(os.listdir(f"/proc/{pid}/task"))
    mine = pid == "self" or int(pid) == os.getpid()
    return Resources(kinds, tasks, threading.active_count() if mine else -1)


def quiet(pid: int | str = "self") -> Resources:
    """What process ``pid`` holds once nothing is changing: three looks in a row agree.

    A block load a reader started may still finish in the fetch pool after
    the reader returned (a cache file open for a moment), and a thread that
    ended leaves ``/proc`` a moment after ``join`` returns; a leak does not
    go away, and is what stays.
    """
    looks = [resources(pid), resources(pid)]

    def agree() -> bool:
        # Three looks in a row, not "no thread but Python's": a long test session holds
        # threads of native libraries (Arrow's pool, say) that are not leaks of this test.
        looks.append(resources(pid))
        last = looks[-1]
        return all(
            (look.fds, look.tasks, look.python_threads)
            == (last.fds, last.tasks, last.python_threads)
            for look in looks[-3:]
        )

    until(agree, f"process {pid}'s descriptors and threads to stop changing")
    return looks[-1]


def _kind(target: str) -> str:
    if target.startswith(("socket:", "pipe:")):
        return target.split(":", maxsplit=1)[0]
    if target.endswith(("meta.db", "meta.db-wal", "meta.db-shm")):
        return "sqlite"
    if target.endswith("/.usage"):
        return "ledger"
    return target


def cache_size(root: str) -> int:
    """Bytes of block files under the cache root, as ``filespace cache info`` reports them."""
    return sum(cache.size for cache in filespace.cache_info(root))


def writer_idle() -> bool:
    """Whether no block cache of this process has a disk writer running (it stops when idle)."""
    return not any(thread.name == _WRITER for thread in threading.enumerate())


class Load:
    """One process's readers: ``fs.open``, fsspec and the mount, in threads."""

    def __init__(self, setup: Setup, fsp: filespace.Filespace, tag: str) -> None:
        self.setup = setup
        self.fsp = fsp
        self.tag = tag
        self.expected = [payload(index) for index in range(len(SIZES))]
        self.options: dict[str, Any] = {
            "location": setup.location,
            "key": setup.key,
            "cache_dir": setup.cache_root,
            "cache_size_mb": setup.cache_mb,
        }
        fsspec.filesystem("filespace", **self.options)  # opens the shared filespace now

    def round(self, threads: int, round_: int) -> Outcome:
        """``threads`` threads reading at once; what they saw."""
        outcomes = [Outcome() for _ in range(threads)]
        pool = [
            threading.Thread(target=self._thread, args=(number, round_, outcomes[number]))
            for number in range(threads)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        total = Outcome()
        for outcome in outcomes:
            total.add(outcome)
        return total

    def _thread(self, number: int, round_: int, outcome: Outcome) -> None:
        rng = random.Random(f"{self.tag}-{number}-{round_}")
        way = WAYS[number % len(WAYS)]
        for read in range(READS_PER_THREAD):
            # Even threads all read the shared object; odd ones spread over the rest.
            index = SHARED if number % 2 == 0 else 1 + (number + read) % (len(SIZES) - 1)
            whole = rng.random() < 0.5
            where = f"{self.tag} thread {number} {way} {name(index)}"
            try:
                with self._open(way, index) as handle:
                    got = (
                        self._whole(handle, index, rng)
                        if whole
                        else self._ranges(handle, index, rng)
                    )
            except Exception as problem:  # noqa: BLE001 - every failure is reported, not raised
                outcome.errors.append(f"{where}: {type(problem).__name__}: {problem}")
                continue
            if isinstance(got, str):
                outcome.errors.append(f"{where}: {got}")
            else:
                outcome.reads += 1
                outcome.bytes += got
            outcome.largest_cache = max(outcome.largest_cache, cache_size(self.setup.cache_root))

    def _open(self, way: str, index: int) -> IO[bytes]:
        if way == "fs.open":
            return self.fsp.fs.open(name(index), "rb")
        if way == "fsspec":
            return fsspec.filesystem("filespace", **self.options).open(name(index), "rb")  # type: ignore[no-any-return]
        return open(Path(self.setup.mountpoint) / name(index).lstrip("/"), "rb")

    def _whole(self, handle: IO[bytes], index: int, rng: random.Random) -> int | str:
        expected = self.expected[index]
        position = 0
        while chunk := handle.read(rng.randrange(64 * 1024, 2 * MIB)):
            if chunk != expected[position : position + len(chunk)]:
                return f"wrong bytes in [{position}, {position + len(chunk)})"
            position += len(chunk)
        return position if position == len(expected) else f"ended at {position}"

    def _ranges(self, handle: IO[bytes], index: int, rng: random.Random) -> int | str:
        expected = self.expected[index]
        total = 0
        for _ in range(6):
            offset = rng.randrange(0, len(expected) + 1000)
            length = rng.randrange(1, 600 * 1024)
            handle.seek(offset)
            data = handle.read(length)
            if data != expected[offset : offset + length]:
                return f"wrong bytes reading {length} at {offset}"
            total += len(data)
        return total


def settle() -> None:
    """Wait until this process's block cache writers have ended (they do once idle)."""
    until(writer_idle, "the block cache's disk writer to go idle")


def work(setup: Setup, barrier: Barrier, tag: str, threads: int, rounds: int) -> dict[str, Any]:
    """A worker process: open the filespace, then read with the others, round after round."""
    with filespace.open(
        setup.location, key=setup.key, cache_dir=setup.cache_root, cache_size_mb=setup.cache_mb
    ) as fsp:
        load = Load(setup, fsp, tag)
        outcomes = []
        barrier.wait(HANG_S)  # every process is ready: the parent takes its "before" now
        seen = [quiet()]
        for round_ in range(rounds):
            barrier.wait(HANG_S)
            outcomes.append(load.round(threads, round_))
            barrier.wait(HANG_S)  # (so the parent looks at the mount once nobody reads)
            settle()
            seen.append(quiet())
    return {"outcomes": outcomes, "resources": seen}
