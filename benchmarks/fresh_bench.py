"""A first read in a new process: how ``filespace cat``, a notebook cell or a batch job meets data.

    .venv/bin/python benchmarks/fresh_bench.py [--size-mib 256] [--rounds 5]

Starts a throw-away SeaweedFS S3 server (``filespace.testing.SeaweedS3``) and
``benchmarks/wan_proxy.py`` in front of it (20 ms before each response,
100 MB/s per connection), uploads one random object and links it (size and
ETag given) into a fresh filespace through both. Then, each round, new Python
processes read the whole object once, each timed from the first line of its
own code (before its imports) to the last byte, the interpreter's own start
left out alike:

- filespace: ``import filespace``, ``filespace.open``, ``fs.open(path)`` read
  in 8 MiB pieces, a new empty cache directory (nothing learned before);
- boto3: ``import boto3``, a client, one ``get_object`` stream read in 8 MiB pieces;
- 8 range readers: ``import urllib3``, 8 threads each GETting 8 MiB ranges of
  a URL the parent presigned (the fastest plain way to stream one object).

The order of the three rotates from round to round. Prints each median and
filespace's rate over the faster plain client, on loopback and over the WAN
(issue goal: at least 0.9 both).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import wan_proxy

import filespace
from filespace.testing import SeaweedS3

BUCKET = "fresh"
KEY = "data/object.bin"
PIECE = 8 * 1024 * 1024

OURS = """
import time
began = time.perf_counter()
import json, sys
import filespace
where, path, cache = sys.argv[1:4]
total = 0
with filespace.open(where, cache_dir=cache) as fsp, fsp.fs.open(path, "rb") as handle:
    while piece := handle.read(PIECE):
        total += len(piece)
print(json.dumps({"seconds": time.perf_counter() - began, "bytes": total}))
"""

BOTO = """
import time
began = time.perf_counter()
import json, sys
import boto3
from botocore.config import Config
endpoint, region, access, secret, bucket, key = sys.argv[1:7]
client = boto3.client("s3", endpoint_url=endpoint, region_name=region,
    aws_access_key_id=access, aws_secret_access_key=secret,
    config=Config(s3={"addressing_style": "path"}))
body = client.get_object(Bucket=bucket, Key=key)["Body"]
total = 0
while piece := body.read(PIECE):
    total += len(piece)
print(json.dumps({"seconds": time.perf_counter() - began, "bytes": total}))
"""

RANGES = """
import time
began = time.perf_counter()
import json, sys, threading
import urllib3
url, size = sys.argv[1], int(sys.argv[2])
pool = urllib3.PoolManager(maxsize=8)
starts = iter(range(0, size, PIECE))
lock = threading.Lock()
total = [0]
def work():
    while True:
        with lock:
            start = next(starts, None)
        if start is None:
            return
        end = min(start + PIECE, size) - 1
        got = len(pool.request("GET", url, headers={"Range": f"bytes={start}-{end}"}).data)
        with lock:
            total[0] += got
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"seconds": time.perf_counter() - began, "bytes": total[0]}))
"""


def child(code: str, *args: str, env: dict[str, str]) -> tuple[float, int]:
    """Run ``code`` in a new interpreter; the seconds it reports (checking every byte came)."""
    source = f"PIECE = {PIECE}\n" + code
    done = subprocess.run(
        [sys.executable, "-c", source, *args], env=env, capture_output=True, text=True, check=True
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["seconds"]), int(answer["bytes"])


def measure(
    args: argparse.Namespace, workdir: Path, server: SeaweedS3, far: str, env: dict[str, str]
) -> dict[str, dict[str, list[float]]]:
    """Rates (MB/s) of each way, round by round, on loopback and over the WAN."""
    size = args.size_mib * 1024 * 1024
    s3 = server.client()
    s3.create_bucket(Bucket=BUCKET)
    etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=os.urandom(size))["ETag"].strip('"')
    where = str(workdir / "space")
    who = server.admin
    with filespace.create(where, name="fresh") as space:
        space.connect.enable()
        for name, endpoint in (("near", server.endpoint), ("far", far)):
            space.connect.add_data_store(
                name,
                filespace.S3DataStoreConfig(
                    who.access_key, who.secret_key, BUCKET, server.region, endpoint=endpoint
                ),
            )
            space.connect.link_file(f"/{name}.bin", name, KEY, size=size, checksum=etag)
    results: dict[str, dict[str, list[float]]] = {}
    for place, endpoint in (("loopback", server.endpoint), ("WAN", far)):
        url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600
        ).replace(server.endpoint, endpoint)
        path = "/near.bin" if place == "loopback" else "/far.bin"
        runs: dict[str, list[float]] = {"filespace": [], "boto3": [], "8 ranges": []}
        for round_ in range(args.rounds):
            cache = str(workdir / f"cache-{place}-{round_}")
            credentials = [endpoint, server.region, who.access_key, who.secret_key]
            ways: dict[str, tuple[str, list[str]]] = {
                "filespace": (OURS, [where, path, cache]),
                "boto3": (BOTO, [*credentials, BUCKET, KEY]),
                "8 ranges": (RANGES, [url, str(size)]),
            }
            names = list(ways)
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                code, arguments = ways[name]
                seconds, got = child(code, *arguments, env=env)
                assert got == size, f"{name} read {got} of {size} bytes"
                runs[name].append(size / seconds / 1e6)
        results[place] = runs
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="filespace-fresh-bench-") as scratch:
        workdir = Path(scratch)
        env = {
            **os.environ,
            "FILESPACE_CONFIG_DIR": str(workdir / "config"),
            "XDG_CONFIG_HOME": str(workdir / "config"),
        }
        os.environ.update(env)
        with SeaweedS3(workdir / "s3") as server, wan_proxy.spawned(server.endpoint) as far:
            results = measure(args, workdir, server, far, env)
    print(
        f"one {args.size_mib} MiB object read whole by a new process, "
        f"median of {args.rounds} (MB/s, imports included)"
    )
    for place, runs in results.items():
        medians = {name: statistics.median(rates) for name, rates in runs.items()}
        best = max(medians["boto3"], medians["8 ranges"])
        line = "  ".join(f"{name} {rate:7.0f}" for name, rate in medians.items())
        print(f"  {place:9} {line}")
        print(
            f"  {place:9} filespace / the faster plain client  "
            f"{medians['filespace'] / best:5.2f}x   (goal >= 0.9)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
