"""Aggregate read throughput of many readers at once vs 8 plain range readers.

    .venv/bin/python benchmarks/load_bench.py      # 8 x 32 MiB objects, 32 threads + 4 processes

Starts a throw-away SeaweedFS S3 server (``filespace.testing.SeaweedS3``),
uploads 8 random objects, links them into a fresh SQLite filespace and mounts
it (``filespace mount --foreground --cache-mb 0``, as ``fuse_bench.py`` does).
Then, in turns for ``--runs`` rounds (the best of each counts):

- the mixed load: 32 threads in this process and 4 spawned processes of 4
  threads each (each opens the filespace itself), every thread reading whole
  objects in 1 MiB reads, a third through ``fs.open``, a third through fsspec
  (``filespace://``) and a third through plain ``open`` under the mount; half
  of the threads all read one object, the others spread over the rest. The
  rate is every byte read over the time from the common start (a barrier,
  once every process has opened the filespace) to the last reader's end;
- the 8-range plain client of ``read_bench.py`` (``urllib3_parallel``: 8
  threads reading 8 MiB ranges), over each object in turn, in the same run.

Every reader runs without the disk tier of the block cache (``cache_size_mb=0``,
``--cache-mb 0``) and objects above the reader's 8 MiB request size are
streamed, not kept in memory, so the bytes of the load come from the server,
as the baseline's do (readers of one object at one time may still share a
block fetch: single flight). Prints both rates and their ratio
(target >= 0.8); the bytes every reader got are counted and checked.
``--ways fs.open`` (or ``fsspec``, ``mount``, any comma-separated set) runs
the same load through fewer ways in, to see where the time goes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import IO, Any

import fsspec
from fuse_bench import _mount
from linked_object import MIB, add_store
from read_bench import mb_s, report, urllib3_parallel

import filespace
from filespace.testing import SeaweedS3

OBJECTS = 8
THREADS = 32
PROCESSES = 4
PROCESS_THREADS = 4
WAYS = ("fs.open", "fsspec", "mount")
CHUNK = MIB


def _path(index: int) -> str:
    return f"/load/o{index}.bin"


@dataclass(frozen=True)
class Plan:
    """What every reading process is told: where to read, how much and which ways."""

    location: str
    key: str
    mountpoint: str
    reads: int
    ways: tuple[str, ...]


class Readers:
    """One process's reading threads."""

    def __init__(self, plan: Plan) -> None:
        self.ways = plan.ways
        # No disk tier: every byte of a round comes from the server, as the baseline's do.
        self.options: dict[str, Any] = {
            "location": plan.location,
            "key": plan.key,
            "cache_size_mb": 0,
        }
        self.fsp = filespace.open(plan.location, key=plan.key, cache_size_mb=0)
        self.mountpoint = Path(plan.mountpoint)
        self.reads = plan.reads
        fsspec.filesystem("filespace", **self.options)  # the shared filespace, opened now

    def run(self, threads: int, first: int, ready: Callable[[], object]) -> int:
        """Read with ``threads`` threads numbered from ``first``, all at once after ``ready()``.

        Gives the bytes read.
        """
        counts = [0] * threads
        go = threading.Event()
        pool = [
            threading.Thread(target=self._read, args=(first + slot, counts, slot, go))
            for slot in range(threads)
        ]
        for thread in pool:
            thread.start()
        ready()
        go.set()
        for thread in pool:
            thread.join()
        return sum(counts)

    def _read(self, number: int, counts: list[int], slot: int, go: threading.Event) -> None:
        go.wait()
        way = self.ways[number % len(self.ways)]
        for read in range(self.reads):
            index = 0 if number % 2 == 0 else 1 + (number + read) % (OBJECTS - 1)
            with self._open(way, index) as handle:
                while data := handle.read(CHUNK):
                    counts[slot] += len(data)

    def _open(self, way: str, index: int) -> IO[bytes]:
        if way == "fs.open":
            return self.fsp.fs.open(_path(index), "rb")
        if way == "fsspec":
            return fsspec.filesystem("filespace", **self.options).open(_path(index), "rb")  # type: ignore[no-any-return]
        return open(self.mountpoint / _path(index).lstrip("/"), "rb")


def _worker(plan: Plan, first: int, start: Barrier, out: Any) -> None:
    readers = Readers(plan)
    out.put(readers.run(PROCESS_THREADS, first, start.wait))
    readers.fsp.close()


def mixed_load(plan: Plan, expected: int) -> float:
    """MB/s of the whole load, from the common start to the last reader's end."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES + 1)
    out = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(plan, THREADS + n * PROCESS_THREADS, start, out),
        )
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    readers = Readers(plan)
    began = 0.0

    def ready() -> None:
        nonlocal began
        start.wait()  # every process has opened the filespace and started its threads
        began = time.perf_counter()

    total = readers.run(THREADS, 0, ready)
    total += sum(out.get() for _ in workers)
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    readers.fsp.close()
    if total != expected:
        raise AssertionError(f"read {total} bytes, expected {expected}")
    return mb_s(total, elapsed)


def baseline(urls: list[str], size: int) -> float:
    """MB/s of ``read_bench.py``'s 8-range reader over every object in turn."""
    seconds = sum(size / (urllib3_parallel(url, size) * 1e6) for url in urls)
    return mb_s(size * len(urls), seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=32, help="size of each of the 8 objects")
    parser.add_argument("--reads", type=int, default=2, help="whole objects each thread reads")
    parser.add_argument("--runs", type=int, default=2, help="rounds of each (best counts)")
    parser.add_argument(
        "--ways", default=",".join(WAYS), help="ways in, comma-separated (threads take turns)"
    )
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    busy = os.getloadavg()[0]  # before this run adds its own
    scratch = Path(tempfile.mkdtemp(prefix="load-bench-"))
    os.environ["FILESPACE_CONFIG_DIR"] = str(scratch / "config")
    os.environ["FILESPACE_CACHE_DIR"] = str(scratch / "cache")
    key = filespace.generate_key()
    os.environ["FILESPACE_KEY"] = key
    location = str(scratch / "space")
    try:
        with SeaweedS3(scratch / "seaweedfs") as server:
            bucket = server.create_bucket("load")
            s3 = server.client()
            urls = []
            with filespace.create(location, name="load", key=key) as fsp:
                add_store(fsp, server, bucket, "load")
                fsp.fs.create_dir("/load")
                for index in range(OBJECTS):
                    s3.put_object(Bucket=bucket, Key=f"o{index}", Body=os.urandom(size))
                    fsp.connect.link_file(_path(index), "load", f"o{index}")
                    urls.append(
                        s3.generate_presigned_url(
                            "get_object", Params={"Bucket": bucket, "Key": f"o{index}"}
                        )
                    )
            mountpoint = scratch / "mnt"
            process = _mount(location, mountpoint, dict(os.environ))
            plan = Plan(location, key, str(mountpoint), args.reads, tuple(args.ways.split(",")))
            expected = (THREADS + PROCESSES * PROCESS_THREADS) * args.reads * size
            ours = plain = 0.0
            try:
                for _ in range(args.runs):
                    plain = max(plain, baseline(urls, size))
                    ours = max(ours, mixed_load(plan, expected))
            finally:
                subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False)
                process.wait(timeout=60)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    readers = THREADS + PROCESSES * PROCESS_THREADS
    print(
        f"{OBJECTS} objects x {args.size_mib} MiB; {THREADS} threads + {PROCESSES} processes x "
        f"{PROCESS_THREADS} threads, {args.reads} whole reads each ({readers * args.reads} in all);"
        f" best of {args.runs}; {os.cpu_count()} CPUs, load average {busy:.1f} at the start"
    )
    print(f"  urllib3, 8 threads x 8 MiB ranges      {plain:8.0f} MB/s")
    print(f"  mixed load: {', '.join(plan.ways):<27}{ours:8.0f} MB/s")
    print(report("  mixed load vs 8 range readers", ours / plain, ">= 0.8", ours >= 0.8 * plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
