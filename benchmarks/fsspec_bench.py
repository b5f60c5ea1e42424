"""Sequential read of a linked object through fsspec vs ``fsp.fs.open`` directly.

Starts a throw-away SeaweedFS S3 server (``filespace.testing.SeaweedS3``),
uploads one SIZE MiB object, links it into a fresh filespace, then reads it
start to end in CHUNK-sized reads, alternating the two ways ``--repeat``
times: ``fsp.fs.open(path, "rb")`` and ``fsspec.open("filespace:///...")``
(``storage_options={"location": ...}``). The external-read cache is off by
default (``--cache-mb 0``), so every run reads from the server. Prints the
median rates and the fsspec/direct ratio (target: >= 0.8).

    .venv/bin/python benchmarks/fsspec_bench.py             # 512 MiB, 3 runs each
    .venv/bin/python benchmarks/fsspec_bench.py --size-mib 64 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import fsspec
from linked_object import MIB, PATH, link_big_object, medians, runs_line, timed_read

import filespace
from filespace.fsspec import FilespaceFileSystem, close_shared_filespaces
from filespace.testing import SeaweedS3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-mb", type=int, default=0, help="external-read cache size")
    args = parser.parse_args()
    chunk = args.chunk_mib * MIB
    scratch = Path(tempfile.mkdtemp(prefix="fsspec-bench-"))
    os.environ.setdefault("FILESPACE_CONFIG_DIR", str(scratch / "config"))
    try:
        with SeaweedS3(scratch / "seaweedfs") as server:
            linked = link_big_object(server, scratch, args.size_mib)
            location, key, expected = linked.location, linked.key, linked.digest
            options: dict[str, Any] = {
                "location": location,
                "key": key,
                "cache_dir": str(scratch / "cache"),
                "cache_size_mb": args.cache_mb,
            }
            direct = filespace.open(
                location, key=key, cache_dir=scratch / "cache-direct", cache_size_mb=args.cache_mb
            )
            rates: dict[str, list[float]] = {"direct": [], "fsspec": []}
            openers: dict[str, Callable[[], IO[bytes]]] = {
                "direct": lambda: direct.fs.open(PATH, "rb"),
                "fsspec": lambda: fsspec.open(f"filespace://{PATH}", "rb", **options).open(),
            }
            for run in range(args.repeat):
                order = ["direct", "fsspec"] if run % 2 == 0 else ["fsspec", "direct"]
                for name in order:
                    seconds, digest = timed_read(openers[name], chunk)
                    if digest != expected:
                        raise AssertionError(f"{name} read different bytes")
                    rates[name].append(args.size_mib / seconds)
            direct.close()
            FilespaceFileSystem.clear_instance_cache()
            close_shared_filespaces()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = medians(rates)
    print(
        f"linked object {args.size_mib} MiB, chunk {args.chunk_mib} MiB, cache "
        f"{args.cache_mb} MB, median of {args.repeat} runs"
    )
    print(
        f"fs.open direct {median['direct']:7.0f} MiB/s   fsspec {median['fsspec']:7.0f} MiB/s"
        f"   ratio {median['fsspec'] / median['direct']:.2f}"
    )
    print(runs_line(rates))


if __name__ == "__main__":
    main()
