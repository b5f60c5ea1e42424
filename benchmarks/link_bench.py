"""Linking at scale, against the engine's own limit measured in the same run.

    .venv/bin/python benchmarks/link_bench.py                      # SQLite, 1,000,000 links
    .venv/bin/python benchmarks/link_bench.py --engine postgresql  # needs FILESPACE_TEST_POSTGRES
    .venv/bin/python benchmarks/link_bench.py --total 100000       # a quicker run

Figures printed (each a ratio against a baseline from this run):
- ``link_files`` of TOTAL items with size and checksum, in ten calls spread
  over 1,000 directories, vs a raw insert of the same rows into tables of the
  same shape (SQLite: ``sqlite3`` ``executemany`` in one transaction per call;
  PostgreSQL: psycopg ``COPY``); and the last tenth's rate vs the first's;
- a loop of LOOP ``link_file`` calls vs raw single-row insert-and-commit of the
  same rows (entry and link) into same-shaped tables;
- paging every link with ``limit=1000``: the last page's cost vs the first's;
- ``count_external_files`` at TOTAL links vs at 1,000 links.
- PostgreSQL only, with ``--processes N``: N processes each linking
  PER_PROCESS files at once vs one process alone (aggregate rate).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filespace
from filespace import LinkItem

DIRECTORIES = 1000
CALLS = 10


@contextmanager
def location(engine: str, work: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A location for a new filespace on ``engine`` (a throw-away schema on PostgreSQL)."""
    if engine == "sqlite":
        yield str(work / f"space-{uuid.uuid4().hex[:8]}"), {}
        return
    import psycopg

    base = os.environ.get("FILESPACE_TEST_POSTGRES")
    if not base:
        raise SystemExit("set FILESPACE_TEST_POSTGRES=postgresql://user@host:port/db")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{base}?schema={schema}", {"data": (work / f"blocks-{schema}").as_uri()}
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def open_space(engine: str, where: str, options: dict[str, Any]) -> filespace.Filespace:
    fsp = filespace.create(where, name="bench", **options)
    fsp.connect.enable()
    fsp.connect.add_data_store(
        "store", filespace.S3DataStoreConfig("AKBENCH", "secret", "bench-bucket", "us-east-1")
    )
    return fsp


def items(call: int, per_call: int) -> Iterator[LinkItem]:
    for index in range(per_call):
        number = call * per_call + index
        yield LinkItem(
            f"/d{number % DIRECTORIES:04d}/f{number:08d}", f"k/{number:08d}", 1000, "etag"
        )


# -- raw baselines ---------------------------------------------------------------------------
_SQLITE_TABLES = [
    "CREATE TABLE entries (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES entries (id),"
    " name TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL, size INTEGER NOT NULL,"
    " ctime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, target TEXT,"
    " UNIQUE (parent_id, name))",
    "CREATE TABLE external_links (entry_id INTEGER PRIMARY KEY REFERENCES entries (id),"
    " data_store_id INTEGER, object_key TEXT, url TEXT, size INTEGER NOT NULL,"
    " checksum TEXT NOT NULL, linked_ns INTEGER NOT NULL, mirror_mark INTEGER)",
    "CREATE INDEX external_links_by_store ON external_links (data_store_id, entry_id)",
]


def raw_sqlite(path: Path, total: int) -> tuple[float, float, float]:
    """Raw sqlite3 on same-shaped tables: bulk rows/s, single insert-and-commit rows/s,
    and the bulk rate of the last tenth over the first."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    for statement in _SQLITE_TABLES:
        conn.execute(statement)
    conn.execute("INSERT INTO entries VALUES (1, NULL, '', 'dir', 'native', 0, 0, 0, NULL)")
    conn.executemany(
        "INSERT INTO entries VALUES (?, 1, ?, 'dir', 'native', 0, 0, 0, NULL)",
        [(2 + d, f"d{d:04d}") for d in range(DIRECTORIES)],
    )
    per_call = total // CALLS
    next_id = 2 + DIRECTORIES
    started = time.perf_counter()
    tenths = []
    for call in range(CALLS):
        begun = time.perf_counter()
        rows = []
        links = []
        for index in range(per_call):
            number = call * per_call + index
            rows.append((next_id, 2 + number % DIRECTORIES, f"f{number:08d}", 1000))
            links.append((next_id, f"k/{number:08d}"))
            next_id += 1
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO entries VALUES (?, ?, ?, 'file', 's3', ?, 0, 0, NULL)", rows)
        conn.executemany(
            "INSERT INTO external_links VALUES (?, 1, ?, NULL, 1000, 'etag', 0, NULL)", links
        )
        conn.execute("COMMIT")
        tenths.append(per_call / (time.perf_counter() - begun))
    bulk = total / (time.perf_counter() - started)
    loop = min(total, 20_000)
    started = time.perf_counter()
    for index in range(loop):
        conn.execute("BEGIN")
        (entry_id,) = conn.execute(
            "INSERT INTO entries (parent_id, name, type, kind, size, ctime_ns, mtime_ns)"
            " VALUES (2, ?, 'file', 's3', 1000, 0, 0) RETURNING id",
            (f"single{index}",),
        ).fetchone()
        conn.execute(
            "INSERT INTO external_links VALUES (?, 1, ?, NULL, 1000, 'etag', 0, NULL)",
            (entry_id, f"single/{index}"),
        )
        conn.execute("COMMIT")
    single = loop / (time.perf_counter() - started)
    conn.close()
    return bulk, single, tenths[-1] / tenths[0]


def raw_postgres(total: int) -> tuple[float, float, float]:
    """(COPY rows/s, single insert-and-commit rows/s) on same-shaped PostgreSQL tables."""
    import psycopg

    base = os.environ["FILESPACE_TEST_POSTGRES"]
    schema = f"raw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        try:
            conn.execute(
                "CREATE TABLE entries (id BIGINT PRIMARY KEY, parent_id BIGINT REFERENCES"
                " entries (id), name TEXT NOT NULL, type TEXT NOT NULL, kind TEXT NOT NULL,"
                " size BIGINT NOT NULL, ctime_ns BIGINT NOT NULL, mtime_ns BIGINT NOT NULL,"
                " target TEXT, UNIQUE (parent_id, name))"
            )
            conn.execute(
                "CREATE TABLE external_links (entry_id BIGINT PRIMARY KEY REFERENCES entries"
                " (id), data_store_id BIGINT, object_key TEXT, url TEXT, size BIGINT NOT NULL,"
                " checksum TEXT NOT NULL, linked_ns BIGINT NOT NULL, mirror_mark BIGINT)"
            )
            conn.execute("CREATE INDEX ON external_links (data_store_id, entry_id)")
            conn.execute("INSERT INTO entries VALUES (1, NULL, '', 'dir', 'native', 0, 0, 0)")
            with conn.cursor().copy(
                "COPY entries (id, parent_id, name, type, kind, size,"
                " ctime_ns, mtime_ns) FROM STDIN"
            ) as copy:
                for d in range(DIRECTORIES):
                    copy.write_row((2 + d, 1, f"d{d:04d}", "dir", "native", 0, 0, 0))
            per_call = total // CALLS
            next_id = 2 + DIRECTORIES
            started = time.perf_counter()
            tenths = []
            for call in range(CALLS):
                begun = time.perf_counter()
                with conn.transaction(), conn.cursor() as cursor:
                    first = next_id
                    with cursor.copy(
                        "COPY entries (id, parent_id, name, type, kind, size,"
                        " ctime_ns, mtime_ns) FROM STDIN"
                    ) as copy:
                        for index in range(per_call):
                            number = call * per_call + index
                            copy.write_row(
                                (
                                    next_id,
                                    2 + number % DIRECTORIES,
                                    f"f{number:08d}",
                                    "file",
                                    "s3",
                                    1000,
                                    0,
                                    0,
                                )
                            )
                            next_id += 1
                    with cursor.copy(
                        "COPY external_links (entry_id, data_store_id, object_key,"
                        " size, checksum, linked_ns) FROM STDIN"
                    ) as copy:
                        for offset in range(per_call):
                            copy.write_row(
                                (first + offset, 1, f"k/{first + offset}", 1000, "etag", 0)
                            )
                tenths.append(per_call / (time.perf_counter() - begun))
            bulk = total / (time.perf_counter() - started)
            loop = min(total, 5_000)
            started = time.perf_counter()
            for index in range(loop):
                with conn.transaction():
                    (entry_id,) = conn.execute(
                        "INSERT INTO entries VALUES (%s, 2, %s, 'file', 's3', 1000, 0, 0)"
                        " RETURNING id",
                        (next_id, f"single{index}"),
                    ).fetchone()  # type: ignore[misc]
                    conn.execute(
                        "INSERT INTO external_links VALUES (%s, 1, %s, NULL, 1000, 'e', 0)",
                        (entry_id, f"single/{index}"),
                    )
                next_id += 1
            single = loop / (time.perf_counter() - started)
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return bulk, single, tenths[-1] / tenths[0]


# -- ours --------------------------------------------------------------------------------------
def bulk_link(fsp: filespace.Filespace, total: int) -> tuple[float, list[float]]:
    """link_files in CALLS calls; returns (overall rate, rate per call)."""
    for d in range(DIRECTORIES):
        fsp.fs.create_dir(f"/d{d:04d}")
    per_call = total // CALLS
    rates = []
    started = time.perf_counter()
    for call in range(CALLS):
        begun = time.perf_counter()
        report = fsp.connect.link_files(items(call, per_call), data_store_name="store")
        assert not report.failed, report.failed[:3]
        assert report.linked == per_call
        rates.append(per_call / (time.perf_counter() - begun))
    return total / (time.perf_counter() - started), rates


def loop_link(fsp: filespace.Filespace, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        fsp.connect.link_file(f"/d0000/single{index}", "store", f"single/{index}", 1000, "etag")
    return count / (time.perf_counter() - started)


def page_costs(fsp: filespace.Filespace) -> tuple[float, float, int]:
    """Median cost of the first three pages and of the last three (seconds), page count."""
    timings = []
    cursor = ""
    while True:
        begun = time.perf_counter()
        page = fsp.connect.list_external_files("store", limit=1000, cursor=cursor)
        timings.append(time.perf_counter() - begun)
        if not page.has_more:
            break
        cursor = page.cursor
    return statistics.median(timings[:3]), statistics.median(timings[-4:-1]), len(timings)


def count_cost(fsp: filespace.Filespace) -> float:
    samples = []
    for _ in range(50):
        begun = time.perf_counter()
        fsp.connect.count_external_files("store")
        samples.append(time.perf_counter() - begun)
    return statistics.median(samples)


def _worker(where: str, key: str, prefix: str, count: int, start: Any) -> float:
    os.environ["FILESPACE_KEY"] = key
    with filespace.open(where) as fsp:
        fsp.fs.create_dir(prefix)
        batch = [
            LinkItem(f"{prefix}/f{index}", f"{prefix}/{index}", 10, "etag")
            for index in range(count)
        ]
        start.wait()
        begun = time.perf_counter()
        report = fsp.connect.link_files(batch, data_store_name="store")
        assert report.linked == count, report.failed[:3]
        return time.perf_counter() - begun


def contention(engine: str, work: Path, processes: int, per_process: int) -> None:
    """N processes linking at once vs one process alone, on one filespace."""
    context = multiprocessing.get_context("spawn")
    with location(engine, work) as (where, options):
        key = filespace.generate_key()
        fsp = filespace.create(where, name="bench", key=key, **options)
        fsp.connect.enable()
        fsp.connect.add_data_store(
            "store", filespace.S3DataStoreConfig("AKBENCH", "secret", "bench-bucket", "us-east-1")
        )
        fsp.close()
        with context.Manager() as manager:
            alone_start = manager.Barrier(1)
            with context.Pool(1) as pool:
                alone = pool.apply(_worker, (where, key, "/alone", per_process, alone_start))
            start = manager.Barrier(processes)
            with context.Pool(processes) as pool:
                jobs = [
                    pool.apply_async(_worker, (where, key, f"/p{n}", per_process, start))
                    for n in range(processes)
                ]
                began = time.perf_counter()
                [job.get() for job in jobs]
                together = time.perf_counter() - began
        with filespace.open(where, key=key) as fsp:
            expected = per_process * (processes + 1)
            count = fsp.connect.count_external_files("store")
            stats = fsp.fs.get_statistics()
            assert count == expected == stats.external_files_count, (count, expected)
        one = per_process / alone
        many = processes * per_process / together
        print(
            f"{processes} processes x {per_process:,} links: {many:,.0f} links/s aggregate; "
            f"one process alone {one:,.0f} links/s; ratio {many / one:.2f} (target >= 0.8); "
            f"all {expected:,} present, counters exact"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--loop", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--per-process", type=int, default=50_000)
    parser.add_argument("--skip-contention", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="bench-config-"))
    work = Path(tempfile.mkdtemp(prefix="link-bench-"))
    print(f"engine {args.engine}; python {sys.version.split()[0]}; {os.cpu_count()} cores")
    if args.engine == "sqlite":
        raw_bulk, raw_single, raw_drift = raw_sqlite(work / "raw.db", args.total)
        raw_name = "raw sqlite3 executemany"
    else:
        raw_bulk, raw_single, raw_drift = raw_postgres(args.total)
        raw_name = "raw psycopg COPY"
    with location(args.engine, work) as (where, options):
        fsp = open_space(args.engine, where, options)
        rate, rates = bulk_link(fsp, args.total)
        print(
            f"link_files {args.total:,} links: {rate:,.0f} links/s; {raw_name} "
            f"{raw_bulk:,.0f} rows/s; ratio {rate / raw_bulk:.2f} (target >= 0.5)"
        )
        print(
            f"  last tenth {rates[-1]:,.0f}/s vs first {rates[0]:,.0f}/s: ratio "
            f"{rates[-1] / rates[0]:.2f} (target >= 0.8; the raw insert's own: {raw_drift:.2f})"
        )
        first, last, pages = page_costs(fsp)
        print(
            f"paging {pages:,} pages of 1,000: last page {last * 1e3:.2f} ms vs first "
            f"{first * 1e3:.2f} ms; ratio {last / first:.2f} (target <= 2)"
        )
        big = count_cost(fsp)
        loop_count = min(args.loop, args.total)
        single = loop_link(fsp, loop_count)
        print(
            f"link_file loop of {loop_count:,}: {single:,.0f} links/s; raw single-row "
            f"insert-and-commit {raw_single:,.0f}/s; ratio {single / raw_single:.2f} "
            "(target >= 0.3)"
        )
        fsp.close()
    with location(args.engine, work) as (where, options):
        small = open_space(args.engine, where, options)
        small.fs.create_dir("/d0000")
        small.connect.link_files(
            (LinkItem(f"/d0000/f{i}", f"k{i}", 1, "e") for i in range(1000)),
            data_store_name="store",
        )
        tiny = count_cost(small)
        small.close()
    print(
        f"count_external_files at {args.total:,} links {big * 1e6:.0f} us vs at 1,000 "
        f"{tiny * 1e6:.0f} us; ratio {big / tiny:.2f} (target <= 2)"
    )
    if args.engine == "postgresql" and not args.skip_contention:
        contention(args.engine, work, args.processes, args.per_process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
