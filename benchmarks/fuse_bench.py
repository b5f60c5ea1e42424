"""Sequential read of a linked object through a FUSE mount vs boto3 and ``fs.open``.

Starts a throw-away SeaweedFS S3 server (``filespace.testing.SeaweedS3``),
uploads one SIZE MiB object, links it into a fresh filespace and mounts that
filespace with ``filespace mount --foreground --cache-mb 0`` (no block cache:
every run reads from the server; the kernel drops a file's pages when it is
opened again). Then reads the object start to end in CHUNK-sized reads, three
ways per round, rotating which goes first: one boto3 ``get_object()`` stream,
``fsp.fs.open(path, "rb")`` in this process, and plain ``open()`` of the file
under the mount point. Prints median rates and the ratios of the mount to the
other two.

    .venv/bin/python benchmarks/fuse_bench.py              # 512 MiB, 3 rounds
    .venv/bin/python benchmarks/fuse_bench.py --size-mib 64 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

from linked_object import KEY, MIB, PATH, link_big_object, medians, runs_line, timed_read

import filespace
from filespace.testing import SeaweedS3


def _mount(location: str, mountpoint: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    mountpoint.mkdir()
    command = [sys.executable, "-m", "filespace", "mount", location, str(mountpoint)]
    process = subprocess.Popen(
        [*command, "--foreground", "--cache-mb", "0"], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not os.path.ismount(mountpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the mount did not come up: {process.stderr}")
        time.sleep(0.05)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    chunk = args.chunk_mib * MIB
    scratch = Path(tempfile.mkdtemp(prefix="fuse-bench-"))
    env = {**os.environ, "FILESPACE_CONFIG_DIR": str(scratch / "config")}
    env["FILESPACE_CACHE_DIR"] = str(scratch / "cache-mount")
    os.environ["FILESPACE_CONFIG_DIR"] = env["FILESPACE_CONFIG_DIR"]
    rates: dict[str, list[float]] = {"boto3": [], "fs.open": [], "mount": []}
    try:
        with SeaweedS3(scratch / "seaweedfs") as server:
            linked = link_big_object(server, scratch, args.size_mib)
            s3, bucket, location, key = linked.s3, linked.bucket, linked.location, linked.key
            env["FILESPACE_KEY"] = key
            mountpoint = scratch / "mnt"
            process = _mount(location, mountpoint, env)
            direct = filespace.open(
                location, key=key, cache_dir=scratch / "cache-direct", cache_size_mb=0
            )
            openers: dict[str, Callable[[], IO[bytes]]] = {
                "boto3": lambda: s3.get_object(Bucket=bucket, Key=KEY)["Body"],
                "fs.open": lambda: direct.fs.open(PATH, "rb"),
                "mount": partial(open, mountpoint / PATH.lstrip("/"), "rb", buffering=0),
            }
            try:
                names = list(openers)
                for run in range(args.repeat):
                    for name in names[run % 3 :] + names[: run % 3]:
                        seconds, digest = timed_read(openers[name], chunk)
                        if digest != linked.digest:
                            raise AssertionError(f"{name} read different bytes")
                        rates[name].append(args.size_mib / seconds)
            finally:
                direct.close()
                subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False)
                process.wait(timeout=60)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = medians(rates)
    print(
        f"linked object {args.size_mib} MiB, chunk {args.chunk_mib} MiB, no block cache, "
        f"median of {args.repeat} rounds"
    )
    print("  ".join(f"{name} {rate:6.0f} MiB/s" for name, rate in median.items()))
    print(
        f"mount / boto3 {median['mount'] / median['boto3']:.2f}   "
        f"mount / fs.open {median['mount'] / median['fs.open']:.2f}"
    )
    print(runs_line(rates))


if __name__ == "__main__":
    main()
