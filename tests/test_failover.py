"""PostgreSQL fails over to its standby mid-work: clients carry on against the new primary.

Each test has a primary and a streaming standby of its own (``pg_pair``) and
reaches both through one multi-host URL with ``target_session_attrs=read-write``.
The test picks the failover point (a number of committed batches, a number of
reads), stops the primary there, and promotes the standby only once the
client has tried it and been turned away as read-only (the standby's log
counts the sessions opened on it): every test crosses the window in which
there is no primary at all, whatever the machine's speed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import MirrorReport
from filespace.connect import mirror
from filespace.testing import SeaweedS3
from tests import requirements
from tests.cli_helpers import new_cli
from tests.fsfixtures import POSTGRES_ENV, store_config
from tests.integrity import assert_consistent
from tests.pgcluster import PgCluster, PgPair
from tests.test_link_files import put_objects, s3_client
from tests.test_mirror import bucket_links, links_under
from tests.waiting import HANG_S, until

SCHEMA = "failover"
MIRRORED = 2000  # tiny objects: 20 batches of 100
FAILOVER_AFTER = 600  # links committed before the primary stops
READ_FILES = 60
HELD = random.Random(13).randbytes(6 * 1024 * 1024)  # more than one read fetches


def url_of(pair: PgPair) -> str:
    return f"{pair.url}&schema={SCHEMA}"


def query(cluster: PgCluster, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on one server of the pair (not through the multi-host URL)."""
    import psycopg

    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{SCHEMA}"')
        return [tuple(row) for row in conn.execute(sql).fetchall()]


LINKS = "SELECT entry_id, object_key FROM external_links"


def committed_links(cluster: PgCluster) -> dict[int, str]:
    """Every external link's entry id and object key, as ``cluster`` has them."""
    return {int(entry): key for entry, key in query(cluster, LINKS)}


def client_tried(pair: PgPair, tried: int, *running: Future[Any]) -> bool:
    """Wait until a client opens a session on the standby (it had ``tried`` before).

    The session was turned away (the standby is read-only), so the client is
    between primaries. ``False`` if every one of ``running`` ended first
    (their results say how).
    """
    until(
        lambda: pair.standby.connections() > tried or all(job.done() for job in running),
        "a client to try the standby",
    )
    return pair.standby.connections() > tried


def test_a_client_opening_mid_failover_waits_for_the_new_primary(
    pg_pair: PgPair, tmp_path: Path
) -> None:
    url = url_of(pg_pair)
    with filespace.create(url, name="opening", data=(tmp_path / "b").as_uri()) as fsp:
        fsp.fs.write_file("/before", b"committed before the failover")
    tried = pg_pair.standby.connections()
    pg_pair.primary.stop("fast")

    def open_and_read() -> bytes:
        with filespace.open(url) as fsp:
            return fsp.fs.read_file("/before")

    with ThreadPoolExecutor(1) as pool:
        opening = pool.submit(open_and_read)
        if client_tried(pg_pair, tried, opening):
            pg_pair.standby.promote()
        assert opening.result(timeout=HANG_S) == b"committed before the failover"


def test_a_mirror_carries_on_against_the_promoted_standby(
    pg_pair: PgPair,
    s3_server: SeaweedS3,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mirror, "BATCH_SIZE", 100)
    s3 = s3_client(s3_server)
    put_objects(s3, bucket, {f"p/d{i % 10}/o{i:05d}": f"v{i}".encode() for i in range(MIRRORED)})
    paused, resumed = threading.Event(), threading.Event()

    def progress(report: MirrorReport) -> None:
        # Between two batches: the mirror waits here while the primary stops.
        if report.added >= FAILOVER_AFTER and not paused.is_set():
            paused.set()
            assert resumed.wait(HANG_S), "the test never let the mirror go on"

    with filespace.create(url_of(pg_pair), name="mirrored", data=(tmp_path / "b").as_uri()) as fsp:
        fsp.connect.enable()
        fsp.connect.add_data_store("store", store_config(s3_server, bucket))
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(fsp.connect.mirror, "store", "p/", "/dest", progress=progress)
            until(lambda: paused.is_set() or running.done(), "the mirror to reach the failover")
            committed = committed_links(pg_pair.primary)
            tried = pg_pair.standby.connections()
            pg_pair.primary.stop("fast")
            resumed.set()
            if client_tried(pg_pair, tried, running):
                pg_pair.standby.promote()
            report = running.result(timeout=HANG_S)
        assert FAILOVER_AFTER <= len(committed) < MIRRORED
        assert (report.added, report.updated, report.removed) == (MIRRORED, 0, 0)
        assert links_under(fsp, "/dest") == bucket_links(s3, bucket, "p/", strip=2)
        # Nothing committed before the failover was lost (and made again: same ids).
        after = committed_links(pg_pair.standby)
        assert committed.items() <= after.items() and len(after) == MIRRORED
        # Counters equal a recount of the rows, and no row hangs off nothing.
        monkeypatch.setenv(POSTGRES_ENV, pg_pair.standby.url)  # where integrity reads rows
        assert_consistent(fsp)
        again = fsp.connect.mirror("store", "p/", "/dest")
        assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, MIRRORED)
        assert fsp.fs.get_statistics().external_files_count == MIRRORED


# -- reads -----------------------------------------------------------------------------------
def _mount_missing() -> str | None:
    from tests.test_fuse import _WHY_NOT

    return _WHY_NOT


@contextmanager
def reading_through(
    how: str, fsp: filespace.Filespace, home: Path
) -> Iterator[Callable[[str], bytes]]:
    """A function reading a file of ``fsp`` whole: by ``fs.open``, or through a FUSE mount."""
    if how == "api":

        def by_open(path: str) -> bytes:
            with fsp.fs.open(path, "rb") as handle:
                data: bytes = handle.read()
                return data

        yield by_open
        return
    why = _mount_missing()
    if why is not None:
        requirements.skip("fuse", why)
    from tests.test_fuse import mounted

    cli = new_cli(home)
    key = fsp.key_file.read_text().strip()
    with mounted(cli, home / "mnt", fsp.location, env={"FILESPACE_KEY": key}) as (mnt, _):
        yield lambda path: (mnt / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize("how", ["api", "mount"])
def test_reads_of_linked_files_carry_on_across_a_failover(
    how: str, pg_pair: PgPair, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3 = s3_client(s3_server)
    bodies = {f"r/f{i:03d}": f"file {i};".encode() * (i + 1) for i in range(READ_FILES)}
    put_objects(s3, bucket, {**bodies, "held": HELD})
    with filespace.create(url_of(pg_pair), name="read", data=(tmp_path / "b").as_uri()) as fsp:
        fsp.connect.enable()
        fsp.connect.add_data_store("store", store_config(s3_server, bucket))
        assert fsp.connect.mirror("store", "r/", "/r").added == READ_FILES
        fsp.connect.link_file("/held", "store", "held")
        held = fsp.fs.open("/held", "rb")  # opened before the failover, read across it
        assert held.read(7) == HELD[:7]
        with reading_through(how, fsp, tmp_path / "home") as read:
            done: list[str] = []

            def read_each() -> None:
                # Each file once: every read looks its path up in the engine anew.
                for key, body in bodies.items():
                    assert read(f"/{key}") == body, key
                    done.append(key)

            blocked_at = READ_FILES
            with ThreadPoolExecutor(2) as pool:
                reader = pool.submit(read_each)
                until(lambda: len(done) >= 10 or reader.done(), "ten reads before the failover")
                tried = pg_pair.standby.connections()
                pg_pair.primary.stop("fast")
                if client_tried(pg_pair, tried, reader):
                    blocked_at = len(done)  # the reader waits for a primary
                    # The open file reads on across the promotion (its URL is
                    # signed anew, at most once a second, from the engine's record).
                    rest = pool.submit(held.read)
                    pg_pair.standby.promote()
                    assert rest.result(timeout=HANG_S) == HELD[7:]
                reader.result(timeout=HANG_S)
        held.close()
        assert done == list(bodies) and 10 <= blocked_at < READ_FILES
