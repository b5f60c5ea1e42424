"""Native file throughput on the local block store vs a plain local file.

Writes then reads SIZE MiB sequentially in CHUNK-sized calls, first with
Python's ``open`` on a plain file (fsync once at the end, so both sides are
durable when the write is timed as done), then through ``fsp.fs.open`` on a
fresh embedded filespace (blocks streamed to their files, fsynced before the
metadata commit on close). Reads come from the page cache on both sides.
Prints the median of ``--repeat`` runs, each run's figures and the
native/plain ratios (target: >= 0.5).

With ``--s3`` the block store is a prefix of a bucket on a throw-away SeaweedFS
server instead, and the plain side is boto3 putting and then getting the same
bytes as 4 MiB objects (the filespace's block size) one after another.

    .venv/bin/python benchmarks/native_bench.py            # 512 MiB, 3 runs
    .venv/bin/python benchmarks/native_bench.py --size-mib 128 --repeat 1
    .venv/bin/python benchmarks/native_bench.py --s3 --size-mib 256
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import filespace
from filespace.testing import SeaweedS3

MIB = 1 << 20


def _pattern(chunk: int) -> list[bytes]:
    """A few distinct random chunks, so a misplaced block cannot go unnoticed."""
    return [os.urandom(chunk) for _ in range(7)]


def plain_write(path: Path, chunks: list[bytes], count: int) -> float:
    start = time.perf_counter()
    with open(path, "wb") as handle:
        for index in range(count):
            handle.write(chunks[index % len(chunks)])
        handle.flush()
        os.fsync(handle.fileno())
    return time.perf_counter() - start


def plain_read(path: Path, chunk: int) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    with open(path, "rb") as handle:
        while data := handle.read(chunk):
            total += len(data)
    return time.perf_counter() - start, total


BLOCK = 4 * MIB


def s3_write(client: Any, bucket: str, chunks: list[bytes], count: int) -> float:
    """Put the same bytes as ``native_write`` as 4 MiB objects, one after another."""
    data = b"".join(chunks[index % len(chunks)] for index in range(count))
    start = time.perf_counter()
    for offset in range(0, len(data), BLOCK):
        client.put_object(Bucket=bucket, Key=f"plain/{offset}", Body=data[offset : offset + BLOCK])
    return time.perf_counter() - start


def s3_read(client: Any, bucket: str, size: int) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    for offset in range(0, size, BLOCK):
        total += len(client.get_object(Bucket=bucket, Key=f"plain/{offset}")["Body"].read())
    return time.perf_counter() - start, total


def native_write(fsp: filespace.Filespace, chunks: list[bytes], count: int) -> float:
    start = time.perf_counter()
    with fsp.fs.open("/big", "wb") as handle:
        for index in range(count):
            handle.write(chunks[index % len(chunks)])
    return time.perf_counter() - start


def native_read(fsp: filespace.Filespace, chunks: list[bytes], chunk: int) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    index = 0
    with fsp.fs.open("/big", "rb") as handle:
        while data := handle.read(chunk):
            if index % 97 == 0 and data != chunks[index % len(chunks)]:
                raise AssertionError(f"chunk {index} read back wrong")
            total += len(data)
            index += 1
    return time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--chunk-mib", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--s3", action="store_true", help="an S3 block store (SeaweedFS)")
    args = parser.parse_args()
    chunk = args.chunk_mib * MIB
    count = args.size_mib // args.chunk_mib
    chunks = _pattern(chunk)
    scratch = Path(tempfile.mkdtemp(prefix="native-bench-", dir=args.dir))
    os.environ.setdefault("FILESPACE_CONFIG_DIR", str(scratch / "config"))
    rates: dict[str, list[float]] = {"plain_w": [], "plain_r": [], "native_w": [], "native_r": []}
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(SeaweedS3(scratch / "s3")) if args.s3 else None
            for run in range(args.repeat):
                if server is None:
                    path = scratch / f"plain-{run}"
                    rates["plain_w"].append(args.size_mib / plain_write(path, chunks, count))
                    seconds, total = plain_read(path, chunk)
                    path.unlink()
                    options: dict[str, Any] = {}
                else:
                    bucket = server.create_bucket(f"bench-{run}")
                    client = server.client()
                    rates["plain_w"].append(args.size_mib / s3_write(client, bucket, chunks, count))
                    seconds, total = s3_read(client, bucket, count * chunk)
                    options = {
                        "data": f"s3://{bucket}/blocks",
                        "data_endpoint": server.endpoint,
                        "data_region": server.region,
                        "data_access_key": server.admin.access_key,
                        "data_secret_key": server.admin.secret_key,
                    }
                assert total == count * chunk
                rates["plain_r"].append(args.size_mib / seconds)
                with filespace.create(
                    scratch / f"space-{run}", name="bench", key=filespace.generate_key(), **options
                ) as fsp:
                    rates["native_w"].append(args.size_mib / native_write(fsp, chunks, count))
                    seconds, total = native_read(fsp, chunks, chunk)
                    assert total == count * chunk
                    rates["native_r"].append(args.size_mib / seconds)
                shutil.rmtree(scratch / f"space-{run}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    plain = "boto3 4 MiB" if args.s3 else "plain open"
    where = "S3 block store" if args.s3 else "local block store"
    print(
        f"size {args.size_mib} MiB, chunk {args.chunk_mib} MiB, {where}, "
        f"median of {args.repeat} runs"
    )
    print(
        f"write: {plain} {median['plain_w']:8.0f} MiB/s   native {median['native_w']:8.0f} "
        f"MiB/s   ratio {median['native_w'] / median['plain_w']:.2f}"
    )
    print(
        f"read:  {plain} {median['plain_r']:8.0f} MiB/s   native {median['native_r']:8.0f} "
        f"MiB/s   ratio {median['native_r'] / median['plain_r']:.2f}"
    )
    print(
        "runs (MiB/s):", {name: [round(rate) for rate in values] for name, values in rates.items()}
    )


if __name__ == "__main__":
    main()
