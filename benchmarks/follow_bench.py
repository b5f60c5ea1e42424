"""Following a bucket's events through RabbitMQ, against ``link_files`` measured in the same run.

    .venv/bin/python benchmarks/follow_bench.py                      # SQLite
    .venv/bin/python benchmarks/follow_bench.py --engine postgresql  # needs FILESPACE_TEST_POSTGRES
    .venv/bin/python benchmarks/follow_bench.py --lag-seconds 0      # the throughput figure only

Needs RabbitMQ (``FILESPACE_BENCH_AMQP``, default ``amqp://guest:guest@127.0.0.1:5672/%2F``);
no S3: an ``ObjectCreated`` record carries the size and ETag, so nothing is looked up.

Figures printed:
- EVENTS ``ObjectCreated`` records published as messages of PER_MESSAGE records
  to a fresh queue, then applied by ``Follower.run(until="drained")`` (fetch,
  apply, acknowledge) into a fresh filespace, vs ``link_files`` of the same
  items (with their size and ETag, parents made) into another fresh one: the
  ratio of the rates (goal: at least 0.5);
- lag from publish to visible (``get_entry`` on a second handle succeeds) with
  one record per message published at a steady RATE per second for
  LAG_SECONDS while a follower runs: median, p99 and max (goal: p99 at most 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pika
from link_bench import location  # this directory is on the path when run as a script

import filespace
from filespace import LinkItem

AMQP = os.environ.get("FILESPACE_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
BUCKET = "bench-bucket"
ETAG = "0cc175b9c0f1b6a831c399e269772661"
DIRECTORIES = 100
POLL_S = 0.005
"""How often the reader asks for a path not there yet (the lag's resolution)."""


def key(number: int) -> str:
    return f"k/d{number % DIRECTORIES:03d}/o{number:08d}"


def record(number: int) -> dict[str, Any]:
    return {
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": BUCKET},
            "object": {
                "key": key(number),
                "size": 1000,
                "eTag": ETAG,
                "sequencer": f"{number:016X}",
            },
        },
    }


def open_space(where: str, options: dict[str, Any]) -> filespace.Filespace:
    fsp = filespace.create(where, name="bench", **options)
    fsp.connect.enable()
    config = filespace.S3DataStoreConfig(
        "AKBENCH", "bench-secret-key", BUCKET, "us-east-1", endpoint="http://127.0.0.1:9"
    )
    fsp.connect.add_data_store("store", config)
    return fsp


class Queue:
    """A fresh durable queue on the broker, deleted by ``close``."""

    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        self.channel = self.connection.channel()
        self.name = f"fs-bench-{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.name, durable=True)
        self.source = f"{AMQP}?queue={self.name}"

    def publish(self, body: bytes) -> None:
        self.channel.basic_publish("", self.name, body)

    def close(self) -> None:
        self.channel.queue_delete(self.name)
        self.connection.close()


def follow_once(engine: str, work: Path, events: int, per_message: int) -> float:
    """Seconds to drain EVENTS records (in messages of PER_MESSAGE) into a fresh filespace."""
    queue = Queue()
    try:
        for start in range(0, events, per_message):
            numbers = range(start, min(start + per_message, events))
            queue.publish(json.dumps({"Records": [record(n) for n in numbers]}).encode())
        with location(engine, work) as (where, options):
            fsp = open_space(where, options)
            try:
                follower = fsp.connect.follow(queue.source, data_store_name="store", dest_dir="/f")
                started = time.perf_counter()
                stats = follower.run(until="drained")
                followed = time.perf_counter() - started
                assert stats.report.added == events, stats
                assert fsp.connect.count_external_files("store") == events
            finally:
                fsp.close()
    finally:
        queue.close()
    return followed


def link_once(engine: str, work: Path, events: int) -> float:
    """Seconds to ``link_files`` the same items into a fresh filespace."""
    with location(engine, work) as (where, options):
        fsp = open_space(where, options)
        try:
            started = time.perf_counter()
            report = fsp.connect.link_files(
                (LinkItem(f"/f/{key(n)}", key(n), 1000, ETAG) for n in range(events)),
                data_store_name="store",
                create_parents=True,
            )
            linked = time.perf_counter() - started
            assert report.linked == events, report
            assert not report.failed, report
        finally:
            fsp.close()
    return linked


def throughput(engine: str, work: Path, events: int, per_message: int, repeat: int) -> None:
    """The best of ``repeat`` runs of each, taken in turns (a shared machine is noisy)."""
    followed, linked = [], []
    for _ in range(repeat):
        followed.append(follow_once(engine, work, events, per_message))
        linked.append(link_once(engine, work, events))
    follow_rate, link_rate = events / min(followed), events / min(linked)
    print(f"{engine}: {events:,} ObjectCreated events in {events // per_message} messages, "
          f"best of {repeat}")  # fmt: skip
    print(f"  follow (drain through RabbitMQ): {follow_rate:10,.0f} events/s "
          f"({', '.join(f'{t:.2f}' for t in followed)} s)")  # fmt: skip
    print(f"  link_files of the same items:    {link_rate:10,.0f} links/s  "
          f"({', '.join(f'{t:.2f}' for t in linked)} s)")  # fmt: skip
    print(f"  ratio follow / link_files: {follow_rate / link_rate:.2f}x (goal >= 0.5x)")


def lag(engine: str, work: Path, rate: int, seconds: int) -> None:
    queue = Queue()
    total = rate * seconds
    published = [0.0] * total
    try:
        with location(engine, work) as (where, options):
            fsp = open_space(where, options)
            reader = filespace.open(where)  # another client, as a reader would be
            follower = fsp.connect.follow(queue.source, data_store_name="store", dest_dir="/f")
            running = threading.Thread(target=follower.run, daemon=True)
            running.start()
            seen = [0.0] * total

            def visible(number: int) -> bool:
                try:
                    reader.fs.get_entry(f"/f/{key(number)}")
                except FileNotFoundError:
                    return False
                return True

            def check() -> None:
                # One queue, applied batch after batch, each batch committed at once: once
                # event n shows, so do all before it. So the reader waits for the first event
                # not seen yet, then finds the last one showing by galloping and bisection
                # (a few lookups per batch, not one per event: it must not be the bottleneck).
                done = 0
                while done < total:
                    if not visible(done):
                        time.sleep(POLL_S)
                        continue
                    now = time.perf_counter()
                    low, step = done, 1  # low shows
                    while low + step < total and visible(low + step):
                        low, step = low + step, step * 2
                    high = min(low + step, total)  # high does not show (or is the end)
                    while high - low > 1:
                        middle = (low + high) // 2
                        low, high = (middle, high) if visible(middle) else (low, middle)
                    for number in range(done, low + 1):
                        seen[number] = now
                    done = low + 1

            checker = threading.Thread(target=check, daemon=True)
            checker.start()
            begun = time.perf_counter()
            for number in range(total):
                due = begun + number / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                published[number] = time.perf_counter()
                queue.publish(json.dumps({"Records": [record(number)]}).encode())
            sent = time.perf_counter() - begun
            checker.join()
            follower.stop()
            running.join()
            reader.close()
            fsp.close()
    finally:
        queue.close()
    lags = sorted(seen[n] - published[n] for n in range(total))
    p99 = lags[int(len(lags) * 0.99) - 1]
    print(f"{engine}: lag from publish to visible, {rate:,} events/s for {seconds} s "
          f"({total:,} events, published at {total / sent:,.0f}/s)")  # fmt: skip
    print(f"  median {statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {lags[-1] * 1000:.0f} ms (goal p99 <= 1000 ms)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--lag-seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="follow-bench-") as work:
        throughput(args.engine, Path(work), args.events, args.per_message, args.repeat)
        if args.lag_seconds:
            lag(args.engine, Path(work), args.rate, args.lag_seconds)


if __name__ == "__main__":
    main()
