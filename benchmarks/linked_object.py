"""What the read benchmarks share: one large object linked into a new filespace,
a timed and checked read, and the summary of each contender's runs."""

from __future__ import annotations

import hashlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import filespace
from filespace.testing import SeaweedS3

MIB = 1 << 20
PATH = "/data/big.bin"
KEY = "big.bin"


@dataclass
class LinkedObject:
    """Where the object lives and how to open the filespace that links it at ``PATH``."""

    s3: Any
    bucket: str
    location: str
    key: str
    digest: str


def link_big_object(server: SeaweedS3, scratch: Path, size_mib: int) -> LinkedObject:
    """Upload ``size_mib`` MiB (1 MiB of random bytes repeated) and link it at ``PATH``."""
    bucket = server.create_bucket("bench")
    body = os.urandom(MIB) * size_mib
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    s3 = server.client()
    s3.put_object(Bucket=bucket, Key=KEY, Body=body)
    del body
    location = str(scratch / "space")
    key = filespace.generate_key()
    with filespace.create(location, name="bench", key=key) as fsp:
        add_store(fsp, server, bucket, "bench")
        fsp.fs.create_dir(PATH.rsplit("/", 1)[0])
        fsp.connect.link_file(PATH, "bench", KEY)
    return LinkedObject(s3=s3, bucket=bucket, location=location, key=key, digest=digest)


def add_store(
    fsp: filespace.Filespace,
    server: SeaweedS3,
    bucket: str,
    name: str,
    endpoint: str | None = None,
) -> None:
    """Connect enabled and data store ``name`` on ``bucket`` (at ``endpoint``), as the admin."""
    fsp.connect.enable()
    fsp.connect.add_data_store(
        name,
        filespace.S3DataStoreConfig(
            access_key=server.admin.access_key,
            secret_key=server.admin.secret_key,
            bucket_name=bucket,
            region=server.region,
            endpoint=endpoint or server.endpoint,
        ),
    )


def timed_read(opener: Callable[[], IO[bytes]], chunk: int) -> tuple[float, str]:
    """Seconds to read what ``opener`` opens start to end in ``chunk`` reads, and its digest."""
    digest = hashlib.blake2b(digest_size=16)
    start = time.perf_counter()
    with opener() as handle:
        while data := handle.read(chunk):
            digest.update(data)
    return time.perf_counter() - start, digest.hexdigest()


def medians(rates: dict[str, list[float]]) -> dict[str, float]:
    """Each contender's median rate."""
    return {name: statistics.median(values) for name, values in rates.items()}


def runs_line(rates: dict[str, list[float]]) -> str:
    """Every run's rate, for the record next to the medians."""
    return "runs (MiB/s): " + str(
        {name: [round(r) for r in values] for name, values in rates.items()}
    )
