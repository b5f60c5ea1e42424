"""A data loader's reads: many small linked files in a known order, epoch after epoch.

    .venv/bin/python benchmarks/loader_bench.py [--objects 3000] [--size-kib 128]
        [--threads 16] [--delay-ms 10]

Starts a throw-away SeaweedFS S3 server (``filespace.testing.SeaweedS3``) and
``benchmarks/wan_proxy.py`` in front of it (``--delay-ms`` before each
response, 100 MB/s per connection), uploads ``--objects`` random objects,
links them (size and ETag given) into a fresh filespace through the proxy,
and reads them all in one fixed random order with ``--threads`` reader
threads, each taking the next file of the order. Measured in the same run,
every figure through the same proxy:

- boto3 ``get_object`` with the same number of threads (the baseline);
- ``fs.read_file``, a cold cache, the default strict opens;
- ``fs.prefetch(order)`` plus the same reads, a cold cache,
  ``revalidate_after_s=3600`` (a file fetched moments ago is not asked about);
- epoch 1 and epoch 2 with ``revalidate_after_s=3600``: epoch 2 is a new
  ``Filespace`` on the same cache directory (a fresh memory tier; what the
  disk tier and its confirmation stamps hold), as the next process would.

Prints files per second and the ratios against the baseline and against
epoch 1, and for each phase where the CPU went: this process, and the servers
(SeaweedFS and the proxy, which share the machine with it), in milliseconds
per file. The servers' share bounds every figure that reaches them: with
``os.cpu_count()`` cores, no client can read more than cores / (their ms per
file) files per second, however little it spends itself; that bound is
printed as a ratio to boto3 next to the prefetch goal.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wan_proxy

import filespace
from filespace.testing import SeaweedS3

BUCKET = "loader"


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Costs:
    """CPU per file of each phase: this process's, and the servers' (given by pid)."""

    def __init__(self, servers: list[int]) -> None:
        self.servers = servers
        self.phases: dict[str, tuple[float, float]] = {}  # name -> (ours, servers) ms/file

    def measure(self, name: str, files: int, run: Callable[[], float]) -> float:
        """``run()`` (a rate), noting what it cost per file under ``name``."""
        ours, theirs = time.process_time(), sum(cpu_seconds(pid) for pid in self.servers)
        rate = run()
        ours = time.process_time() - ours
        theirs = sum(cpu_seconds(pid) for pid in self.servers) - theirs
        self.phases[name] = (ours * 1000 / files, theirs * 1000 / files)
        return rate


def in_threads(order: list[str], threads: int, read: Callable[[str], int]) -> float:
    """Read every name of ``order`` with ``threads`` threads taking the next one; files/s."""
    names = iter(order)
    lock = threading.Lock()
    total = [0]

    def work() -> None:
        while True:
            with lock:
                name = next(names, None)
            if name is None:
                return
            got = read(name)
            with lock:
                total[0] += got

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    return len(order) / seconds


def upload(client: Any, count: int, size: int) -> dict[str, str]:
    """``count`` random objects of ``size`` bytes; key -> ETag."""
    client.create_bucket(Bucket=BUCKET)

    def put(number: int) -> tuple[str, str]:
        key = f"samples/{number:06}.bin"
        etag = client.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(size))["ETag"]
        return key, etag.strip('"')

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return dict(pool.map(put, range(count)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--size-kib", type=int, default=128)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    size = args.size_kib * 1024
    workdir = Path(tempfile.mkdtemp(prefix="filespace-loader-bench-"))
    os.environ["FILESPACE_CACHE_DIR"] = str(workdir / "default-cache")
    os.environ["FILESPACE_CONFIG_DIR"] = str(workdir / "config")
    os.environ["XDG_CONFIG_HOME"] = str(workdir / "config")
    server = SeaweedS3(workdir / "s3")
    server.start()
    proxy, endpoint = wan_proxy.spawn(server.endpoint, delay_ms=args.delay_ms)
    try:
        etags = upload(server.client(), args.objects, size)
        location = workdir / "space"
        with filespace.create(location, name="loader") as space:
            space.connect.enable()
            space.connect.add_data_store(
                "wan",
                filespace.S3DataStoreConfig(
                    access_key=server.admin.access_key,
                    secret_key=server.admin.secret_key,
                    bucket_name=BUCKET,
                    region=server.region,
                    endpoint=endpoint,
                ),
            )
            report = space.connect.link_files(
                (filespace.LinkItem(f"/{key}", key, size, etag) for key, etag in etags.items()),
                data_store_name="wan",
                create_parents=True,
            )
            assert report.ok, report.failed[:3]
        keys = sorted(etags)
        random.Random(7).shuffle(keys)
        order = [f"/{key}" for key in keys]
        caches = (workdir / f"cache{number}" for number in itertools.count())

        import boto3
        from botocore.config import Config

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=server.region,
            aws_access_key_id=server.admin.access_key,
            aws_secret_access_key=server.admin.secret_key,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=args.threads),
        )

        def boto_read(path: str) -> int:
            return len(s3.get_object(Bucket=BUCKET, Key=path[1:])["Body"].read())

        assert server.pid is not None
        costs = Costs([server.pid, proxy.pid])
        files = len(order)
        boto = costs.measure("boto3", files, lambda: in_threads(order, args.threads, boto_read))

        def opened(cache: Path, window: float = 0.0) -> filespace.Filespace:
            return filespace.open(location, cache_dir=cache, revalidate_after_s=window)

        def read_all(space: filespace.Filespace) -> Callable[[], float]:
            return lambda: in_threads(
                order, args.threads, lambda path: len(space.fs.read_file(path))
            )

        with opened(next(caches)) as space:
            plain = costs.measure("read_file", files, read_all(space))

        def hinted_pass(space: filespace.Filespace) -> float:
            start = time.perf_counter()
            ahead = space.fs.prefetch(order)
            in_threads(order, args.threads, lambda path: len(space.fs.read_file(path)))
            rate = len(order) / (time.perf_counter() - start)
            assert ahead.wait(600)
            assert not ahead.errors, list(ahead.errors.items())[:3]
            return rate

        with opened(next(caches), 3600) as space:
            hinted = costs.measure("prefetch", files, lambda: hinted_pass(space))

        epochs = next(caches)
        with opened(epochs, 3600) as space:
            first = costs.measure("epoch 1", files, read_all(space))
            cache = space.fs._cache  # type: ignore[attr-defined]
            cache.flush(600)  # on disk for the next one
            dropped = cache.dropped  # blocks that skipped the disk: it fell behind
        with opened(epochs, 3600) as space:
            second = costs.measure("epoch 2", files, read_all(space))

        print(
            f"{args.objects} objects x {args.size_kib} KiB, {args.threads} reader threads, "
            f"proxy {args.delay_ms:g} ms each way, 100 MB/s per connection"
        )
        print(f"  boto3 get_object                          {boto:8.0f} files/s")
        print(f"  fs.read_file, cold, strict                {plain:8.0f} files/s")
        print(f"  prefetch(order) + read_file, window 3600  {hinted:8.0f} files/s")
        print(f"  epoch 1, window 3600                      {first:8.0f} files/s")
        print(f"  epoch 2, window 3600 (new Filespace)      {second:8.0f} files/s")
        print(f"  (epoch 1: {dropped} blocks skipped the disk tier, which fell behind)")
        print("CPU per file, ms: this process / the servers (SeaweedFS + proxy)")
        for name, (ours, theirs) in costs.phases.items():
            print(f"  {name:10} {ours:6.2f} / {theirs:5.2f}")
        cores = os.cpu_count() or 1
        serving = costs.phases["boto3"][1]
        ceiling = cores / (serving / 1000) if serving > 0 else float("inf")
        print(
            f"  the servers alone allow at most {ceiling:,.0f} files/s on {cores} cores "
            f"({ceiling / boto:.2f}x boto3) with a client that costs nothing"
        )
        print(f"read_file / boto3                 {plain / boto:6.2f}x   (goal >= 0.9)")
        print(
            f"prefetch + window / boto3         {hinted / boto:6.2f}x   (goal >= 2; "
            f"the servers' bound here {ceiling / boto:.2f}x)"
        )
        print(f"epoch 2 / epoch 1 (window 3600)   {second / first:6.2f}x   (goal >= 5)")
    finally:
        proxy.kill()
        proxy.wait()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
