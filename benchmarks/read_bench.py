"""Read benchmarks of external files against plain S3 clients, in one run.

    .venv/bin/python benchmarks/read_bench.py [--size-mb 512] [--samples 200]

Starts a throw-away SeaweedFS S3 server (``filespace.testing.SeaweedS3``),
uploads one random object, links it into a fresh filespace through two data
stores (the server itself, and ``benchmarks/wan_proxy.py`` in front of it:
20 ms before each response, 100 MB/s per connection), and measures, each
baseline on the same server in the same run:

- sequential: ``fs.open(...).read(8 MiB)`` in a loop vs one boto3
  ``get_object`` stream and vs 8 threads reading 8 MiB ranges with urllib3;
- cold random 64 KiB reads (median latency) vs one plain ranged GET of the
  same offsets;
- warm re-reads of the same offsets from the memory tier and from the disk
  tier (a new ``Filespace`` on the same cache directory), and a warm
  sequential re-read from disk.

Every "cold" figure uses a fresh, empty cache directory.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
import wan_proxy
from linked_object import add_store

import filespace
from filespace.testing import SeaweedS3

MIB = 1024 * 1024
CHUNK = 8 * MIB
RANDOM_SIZE = 64 * 1024
BUCKET = "bench"
KEY = "big.bin"


def mb_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


# -- baselines ------------------------------------------------------------------------
def boto3_stream(client: Any, size: int) -> float:
    start = time.perf_counter()
    body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
    total = 0
    while chunk := body.read(CHUNK):
        total += len(chunk)
    assert total == size
    return mb_s(size, time.perf_counter() - start)


def urllib3_parallel(url: str, size: int, threads: int = 8) -> float:
    manager = urllib3.PoolManager(maxsize=threads)
    offsets = list(range(0, size, CHUNK))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not offsets:
                    return
                offset = offsets.pop(0)
            end = min(offset + CHUNK, size) - 1
            response = manager.request("GET", url, headers={"Range": f"bytes={offset}-{end}"})
            assert response.status == 206
            assert len(response.data) == end - offset + 1

    start = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    manager.clear()
    return mb_s(size, time.perf_counter() - start)


def plain_random(url: str, offsets: list[int]) -> list[float]:
    manager = urllib3.PoolManager(maxsize=2)
    manager.request("GET", url, headers={"Range": "bytes=0-0"})  # a warm connection, like ours
    latencies = []
    for offset in offsets:
        start = time.perf_counter()
        response = manager.request(
            "GET", url, headers={"Range": f"bytes={offset}-{offset + RANDOM_SIZE - 1}"}
        )
        assert len(response.data) == RANDOM_SIZE
        latencies.append(time.perf_counter() - start)
    return latencies


# -- filespace ------------------------------------------------------------------------
class Bench:
    def __init__(self, workdir: Path, server: SeaweedS3, proxy_endpoint: str) -> None:
        self.workdir = workdir
        self.location = workdir / "space"
        with filespace.create(self.location, name="bench") as space:
            for name, endpoint in (("lo", server.endpoint), ("wan", proxy_endpoint)):
                add_store(space, server, BUCKET, name, endpoint)
                space.connect.link_file(f"/{name}.bin", name, KEY)
                space.connect.link_file(f"/{name}-warmup", name, "warmup")
        self._caches = 0

    def fresh_cache(self) -> Path:
        self._caches += 1
        path = self.workdir / f"cache{self._caches}"
        return path

    @contextmanager
    def space(self, cache: Path) -> Iterator[filespace.Filespace]:
        with filespace.open(self.location, cache_dir=cache) as space:
            # Sign URLs and open connections first, as a long-running client would have.
            space.fs.read_file("/lo-warmup")
            space.fs.read_file("/wan-warmup")
            yield space

    def sequential(self, name: str, cache: Path, size: int) -> float:
        with self.space(cache) as space:
            start = time.perf_counter()
            total = 0
            with space.fs.open(f"/{name}.bin", "rb") as handle:
                while chunk := handle.read(CHUNK):
                    total += len(chunk)
            elapsed = time.perf_counter() - start
            assert total == size
            space.fs._cache.flush(60)  # type: ignore[attr-defined] - settle the disk tier
        return mb_s(size, elapsed)

    def random(self, name: str, cache: Path, offsets: list[int]) -> list[float]:
        with self.space(cache) as space:
            return random_reads(space, name, offsets)


def random_reads(space: filespace.Filespace, name: str, offsets: list[int]) -> list[float]:
    latencies = []
    with space.fs.open(f"/{name}.bin", "rb") as handle:
        handle.read(1)  # the first read of a handle confirms the object with the server
        for offset in offsets:
            start = time.perf_counter()
            handle.seek(offset)
            data = handle.read(RANDOM_SIZE)
            latencies.append(time.perf_counter() - start)
            assert len(data) == RANDOM_SIZE
    return latencies


def median_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


def interleaved(runs: int, *measures: Callable[[], float]) -> list[float]:
    """The best of ``runs`` rounds of each measure, taken in turn (a busy spell of
    the machine then hits every contender alike, not one of them). Each round
    starts with a different contender, so none always runs right after the
    same other one (the server may still be settling from the one before)."""
    best = [0.0] * len(measures)
    for round_ in range(runs):
        for step in range(len(measures)):
            index = (round_ + step) % len(measures)
            best[index] = max(best[index], measures[index]())
    return best


# -- main -------------------------------------------------------------------------------
def upload(client: Any, size: int) -> None:
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="warmup", Body=b"w" * 1024)
    data = io.BytesIO(os.urandom(size))
    client.upload_fileobj(data, BUCKET, KEY)


def report(label: str, value: float, target: str, ok: bool) -> str:
    return f"{label:<58} {value:7.2f}x   target {target:<7} {'ok' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--samples", type=int, default=200, help="random reads per figure")
    parser.add_argument("--runs", type=int, default=3, help="sequential rounds (best counts)")
    args = parser.parse_args(argv)
    size = args.size_mb * MIB
    workdir = Path(tempfile.mkdtemp(prefix="filespace-bench-"))
    os.environ["FILESPACE_CACHE_DIR"] = str(workdir / "default-cache")
    os.environ["FILESPACE_CONFIG_DIR"] = str(workdir / "config")
    os.environ["XDG_CONFIG_HOME"] = str(workdir / "config")
    rng = random.Random(7)
    offsets = [rng.randrange(0, size - RANDOM_SIZE) for _ in range(args.samples)]
    lines: list[str] = []
    server = SeaweedS3(workdir / "s3")
    server.start()
    proxy, proxy_endpoint = wan_proxy.spawn(server.endpoint)
    try:
        client = server.client()
        upload(client, size)
        bench = Bench(workdir, server, proxy_endpoint)
        import boto3
        from botocore.config import Config

        def boto(endpoint: str) -> Any:
            return boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name=server.region,
                aws_access_key_id=server.admin.access_key,
                aws_secret_access_key=server.admin.secret_key,
                config=Config(s3={"addressing_style": "path"}),
            )

        for label, endpoint, name in (
            ("loopback", server.endpoint, "lo"),
            ("WAN (20 ms, 100 MB/s per connection)", proxy_endpoint, "wan"),
        ):
            s3 = boto(endpoint)
            url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600
            )
            stream, parallel, ours = interleaved(
                args.runs,
                lambda s3=s3: boto3_stream(s3, size),
                lambda url=url: urllib3_parallel(url, size),
                lambda name=name: bench.sequential(name, bench.fresh_cache(), size),
            )
            plain = median_ms(plain_random(url, offsets))
            cache = bench.fresh_cache()
            with bench.space(cache) as space:
                cold = median_ms(random_reads(space, name, offsets))
                warm_memory = median_ms(random_reads(space, name, offsets))  # same Filespace
                space.fs._cache.flush(60)  # type: ignore[attr-defined]
            warm_disk = median_ms(bench.random(name, cache, offsets))  # new one: disk tier only
            seq_cache = bench.fresh_cache()
            cold_seq = bench.sequential(name, seq_cache, size)
            second_seq = bench.sequential(name, seq_cache, size)  # a stream is admitted now
            warm_seq = bench.sequential(name, seq_cache, size)
            lines.append(f"## {label}")
            lines.append(f"  boto3 get_object stream            {stream:8.0f} MB/s")
            lines.append(f"  urllib3, 8 threads x 8 MiB ranges  {parallel:8.0f} MB/s")
            lines.append(f"  filespace read(8 MiB) loop, cold   {ours:8.0f} MB/s")
            lines.append(f"  plain 64 KiB ranged GET            {plain:8.2f} ms median")
            lines.append(f"  filespace 64 KiB read, cold        {cold:8.2f} ms median")
            lines.append(f"  filespace 64 KiB read, warm memory {warm_memory:8.3f} ms median")
            lines.append(f"  filespace 64 KiB read, warm disk   {warm_disk:8.3f} ms median")
            lines.append(
                f"  filespace sequential, passes 1/2/3 {cold_seq:8.0f} / {second_seq:.0f}"
                f" / {warm_seq:.0f} MB/s"
            )
            best_plain = max(stream, parallel)
            if name == "lo":
                lines.append(
                    report(
                        "  sequential vs best plain client",
                        ours / best_plain,
                        ">= 0.8",
                        ours >= 0.8 * best_plain,
                    )
                )
                lines.append(
                    report(
                        "  cold random latency vs plain GET",
                        cold / plain,
                        "<= 2",
                        cold <= 2 * plain,
                    )
                )
            else:
                lines.append(
                    report(
                        "  sequential vs one boto3 stream",
                        ours / stream,
                        ">= 3",
                        ours >= 3 * stream,
                    )
                )
                lines.append(
                    report(
                        "  sequential vs 8 urllib3 range readers",
                        ours / parallel,
                        ">= 0.8",
                        ours >= 0.8 * parallel,
                    )
                )
                lines.append(
                    report(
                        "  cold random latency vs plain GET",
                        cold / plain,
                        "<= 1.3",
                        cold <= 1.3 * plain,
                    )
                )
            lines.append(
                report(
                    "  warm (memory) random read speed-up vs cold",
                    cold / warm_memory,
                    ">= 3",
                    cold >= 3 * warm_memory,
                )
            )
            lines.append(
                report(
                    "  warm (disk) random read speed-up vs cold",
                    cold / warm_disk,
                    ">= 3",
                    cold >= 3 * warm_disk,
                )
            )
            lines.append(
                report(
                    "  3rd sequential pass (disk if far) vs 1st",
                    warm_seq / cold_seq,
                    "(info)",
                    True,
                )
            )
            print("\n".join(lines[-14:]), flush=True)
    finally:
        proxy.kill()
        proxy.wait()
        server.stop(grace=1)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n# {args.size_mb} MiB object, {args.samples} random reads, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
