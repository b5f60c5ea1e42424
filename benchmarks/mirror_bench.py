"""Mirror of a large prefix on a real S3 server (SeaweedFS), against listing it alone.

    .venv/bin/python benchmarks/mirror_bench.py                 # 10,000 and 100,000 objects
    .venv/bin/python benchmarks/mirror_bench.py --large 30000   # a quicker run

Prints, for each prefix size: the time boto3's paginator alone takes to list
the prefix, the time ``mirror`` takes to list it *and* link every object into a
fresh embedded filespace (target: <= 1.5x the listing), and the mirror
process's peak RSS. The growth of peak RSS from the small to the large prefix
is the memory a mirror holds per object (target: <= 30 MB for 10k -> 100k).
Each mirror runs in its own process so its RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from filespace.testing import SeaweedS3

BUCKET = "mirror-bench"

_CHILD = r"""
import json, os, sys, time
import filespace

def status(field):
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's high-water mark.
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)

location, endpoint, access, secret, prefix = sys.argv[1:6]
fsp = filespace.create(location, name="bench")
fsp.connect.enable()
fsp.connect.add_data_store("store", filespace.S3DataStoreConfig(
    access_key=access, secret_key=secret, bucket_name="mirror-bench", region="us-east-1",
    endpoint=endpoint))
rss_before = status("VmRSS")
begun = time.perf_counter()
report = fsp.connect.mirror("store", prefix, "/m")
elapsed = time.perf_counter() - begun
fsp.close()
print(json.dumps({"seconds": elapsed, "added": report.added,
                  "rss_kb": status("VmHWM"),
                  "rss_before_kb": rss_before}))
"""


def upload(server: SeaweedS3, prefix: str, count: int) -> None:
    client = server.client()

    def put(index: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}d{index % 100:02d}/o{index:07d}", Body=b"x")

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, range(count)))


def list_time(server: SeaweedS3, prefix: str) -> tuple[float, int]:
    client = server.client()
    begun = time.perf_counter()
    found = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        found += len(page.get("Contents", ()))
    return time.perf_counter() - begun, found


def mirror_once(server: SeaweedS3, work: Path, prefix: str) -> dict[str, float]:
    location = work / f"space-{prefix.strip('/')}-{time.monotonic_ns()}"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(location),
            server.endpoint,
            server.admin.access_key,
            server.admin.secret_key,
            prefix,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, XDG_CONFIG_HOME=str(work / "config")),
    )
    answer: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mirror-bench-"))
    with SeaweedS3(work / "s3") as server:
        server.create_bucket(BUCKET)
        rss: dict[int, float] = {}
        for count in (args.small, args.large):
            prefix = f"p{count}/"
            began = time.perf_counter()
            upload(server, prefix, count)
            print(f"uploaded {count:,} objects in {time.perf_counter() - began:.0f} s")
            listing, found = min(list_time(server, prefix) for _ in range(3))
            assert found == count, (found, count)
            run = min(
                (mirror_once(server, work, prefix) for _ in range(2)), key=lambda r: r["seconds"]
            )
            assert run["added"] == count, run
            rss[count] = run["rss_kb"] / 1024
            print(
                f"{count:,} objects: paginator alone {listing:.2f} s; mirror {run['seconds']:.2f} s"
                f" ({count / run['seconds']:,.0f} objects/s); ratio "
                f"{run['seconds'] / listing:.2f} (target <= 1.5); peak RSS {rss[count]:.1f} MB"
            )
        growth = rss[args.large] - rss[args.small]
        print(
            f"peak RSS growth {args.small:,} -> {args.large:,} objects: {growth:.1f} MB "
            "(target <= 30 MB)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
