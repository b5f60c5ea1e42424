"""SIGKILL in the middle of bulk Connect work, on both engines: a re-run converges.

A child process mirrors a prefix of a few thousand tiny objects, applies their
event records (``apply_events``), or drains them from a queue as
``follow --once`` does, in batches of ``BATCH`` keys, each one transaction.
The parent polls the engine until a number of batches chosen by the run's seed
(``tests/seeds.py``) is committed and kills the child there; the child cannot
finish first, since it stops and waits on its stdin two batches later. So the
kill lands in a transaction or between two, never after the work is done. The
"sweep" case kills a mirror in its final sweep (one link per transaction), once
a seeded number of the links to gone keys is removed; there the child waits
after the sweep.

Before the run the destination holds links the work must change: links with a
wrong size and ETag (to re-point) and links to keys the bucket does not have
(to remove), and a native file elsewhere. Done again to the end, the work must
leave the destination equal to the bucket (names, sizes, ETags), counters equal
to a recount from rows, no orphan rows (``tests/integrity.py``), no unreferenced
blocks for ``sweep_blocks`` to find, and a further run must change nothing.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace, MirrorReport, SyncReport
from filespace.testing import SeaweedS3
from tests.brokers import AmqpQueue, amqp_queue  # noqa: F401 - the fixture
from tests.bucket_events import record
from tests.fsfixtures import new_location, query_sql, store_config
from tests.integrity import assert_consistent
from tests.s3fixtures import _delete_bucket
from tests.test_link_files import put_objects, s3_client
from tests.test_mirror import Links, bucket_links, links_under
from tests.waiting import until

OBJECTS = 2000
BATCH = 100
WRONG = 300  # links under the destination with a wrong size and ETag
GONE = 150  # links under the destination to keys the bucket does not have
PREFIX = "k/"

CHILD = textwrap.dedent(
    """
    import sys
    import filespace
    from filespace.connect import events, follower, mirror

    location, mode, batch, hold, source = sys.argv[1:6]
    mirror.BATCH_SIZE = events.BATCH_SIZE = follower.FETCH_LIMIT = int(batch)

    def committed(keys):
        if keys >= int(hold):
            print("holding at", keys, flush=True)
            sys.stdin.readline()  # never answered: killed here at the latest

    def documents():
        with open(source) as lines:
            for index, line in enumerate(lines):
                committed(index - int(batch))  # a batch is applied once the next one starts
                yield line

    with filespace.open(location) as fsp:
        if mode == "sweep":  # the links of gone keys go one per transaction
            mirror.SWEEP_BATCH = 1
            fsp.connect.mirror(
                "store", "k/", "/dest", progress=lambda report: committed(report.removed)
            )
        elif mode == "mirror":
            fsp.connect.mirror(
                "store", "k/", "/dest",
                progress=lambda report: committed(report.added + report.updated + report.unchanged),
            )
        elif mode == "events":
            fsp.connect.apply_events(
                documents(), data_store_name="store", prefix="k/", dest_dir="/dest"
            )
        else:
            fsp.connect.follow(
                source, data_store_name="store", prefix="k/", dest_dir="/dest",
                progress=lambda stats: committed(stats.messages),
            ).run(until="drained")
    print("finished", flush=True)
    """
)


@pytest.fixture(scope="module")
def objects(s3_server: SeaweedS3) -> Iterator[tuple[str, Links]]:
    """A bucket of ``OBJECTS`` tiny objects under ``PREFIX`` (uploaded once), and its links."""
    s3 = s3_client(s3_server)
    name = s3_server.create_bucket(f"t-{uuid.uuid4().hex[:12]}")
    put_objects(
        s3, name, {f"{PREFIX}d{i % 13:02d}/o{i:05d}": f"{i}".encode() for i in range(OBJECTS)}
    )
    yield name, bucket_links(s3, name, PREFIX, strip=len(PREFIX))
    _delete_bucket(s3, name)


def _event_lines(bucket: str, wanted: Links) -> list[str]:
    """One S3 event document per change, as MinIO sends them: every object, then the gone keys."""
    records = [
        record(bucket, str(key), sequence, size=size, etag=etag)
        for sequence, (_, key, size, etag) in enumerate(sorted(wanted.values()), start=1)
    ]
    records += [record(bucket, f"{PREFIX}gone/{i}", len(records) + 1 + i) for i in range(GONE)]
    return [json.dumps({"Records": [one]}) for one in records]


def _prepare(fsp: Filespace, server: SeaweedS3, bucket: str, wanted: Links) -> None:
    """Connect on, the store, a native file, and links the work must re-point or remove."""
    fsp.connect.enable()
    fsp.connect.add_data_store("store", store_config(server, bucket))
    fsp.fs.write_file("/native", b"native bytes")
    fsp.sync_all()
    wrong = [(f"/dest/{path}", key, 1, "0bad") for path, (_, key, _, _) in sorted(wanted.items())]
    gone = [(f"/dest/gone/{i}", f"{PREFIX}gone/{i}", 1, "0bad") for i in range(GONE)]
    report = fsp.connect.link_files(
        wrong[:: OBJECTS // WRONG][:WRONG] + gone, data_store_name="store", create_parents=True
    )
    assert report.linked == WRONG + GONE and not report.failed


def _run_and_kill(
    location: str, mode: str, source: str, committed: Any, kill_at: int, hold: int
) -> None:
    """Start the child, kill it once ``committed()`` reaches ``kill_at``.

    The child stops and waits once it has done ``hold`` (a later point) itself.
    """
    command = [sys.executable, "-c", CHILD, location, mode, str(BATCH), str(hold), source]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        try:
            until(
                lambda: committed() >= kill_at or child.poll() is not None,
                f"{kill_at} keys committed by the {mode} child",
            )
        finally:
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate()
    assert child.returncode == -signal.SIGKILL, f"the child ended by itself: {out}{err}"
    assert "finished" not in out


def _marked(fsp: Filespace, column: str) -> Any:
    """How many links carry a mirror mark or a sequencer (a batch's work, as committed)."""

    def count() -> int:
        ((found,),) = query_sql(
            fsp,
            f"SELECT COUNT(*) FROM external_links WHERE {column} IS NOT NULL",  # noqa: S608
        )
        return int(found)

    return count


def _swept(fsp: Filespace) -> Any:
    """How many of the links to gone keys are gone (the final sweep's work, as committed)."""

    def count() -> int:
        ((left,),) = query_sql(
            fsp, "SELECT COUNT(*) FROM external_links WHERE object_key LIKE ?", f"{PREFIX}gone/%"
        )
        return GONE - int(left)

    return count


def _check_converged(fsp: Filespace, s3: Any, bucket: str) -> None:
    assert_consistent(fsp)
    assert links_under(fsp, "/dest") == bucket_links(s3, bucket, PREFIX, strip=len(PREFIX))
    assert fsp.sweep_blocks() == 0
    assert fsp.sweep_blocks(grace=0) == 0  # nothing unreferenced, however young
    assert fsp.fs.read_file("/native") == b"native bytes"


@pytest.mark.parametrize("mode", ["mirror", "sweep", "events", "follow"])
def test_killed_bulk_work_converges(
    mode: str,
    engine_name: str,
    objects: tuple[str, Links],
    s3_server: SeaweedS3,
    tmp_path: Path,
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    bucket, wanted = objects
    documents = _event_lines(bucket, wanted)
    queue: AmqpQueue | None = None
    if mode == "follow":
        queue = request.getfixturevalue("amqp_queue")
        queue.publish(*(document.encode() for document in documents))
        source = queue.source
    else:
        lines = tmp_path / "events.jsonl"
        lines.write_text("\n".join(documents) + "\n")
        source = str(lines)
    if mode == "sweep":  # in the final sweep, or after it before the process ends
        kill_at, hold = rng.randrange(1, GONE // 2), 1
    else:  # after a number of batches, before the child's hold two batches later
        batches = rng.randrange(2, OBJECTS // BATCH - 3)
        kill_at, hold = batches * BATCH, (batches + 2) * BATCH
    key = filespace.generate_key()
    monkeypatch.setenv("FILESPACE_KEY", key)  # for the child
    with new_location(engine_name, tmp_path) as (location, options):
        with filespace.create(location, name="crash", key=key, **options) as fsp:
            _prepare(fsp, s3_server, bucket, wanted)
        column = "mirror_mark" if mode == "mirror" else "sequencer"
        committed = _swept(fsp) if mode == "sweep" else _marked(fsp, column)
        _run_and_kill(location, mode, source, committed, kill_at, hold)
        swept = _swept(fsp)()
        assert swept >= kill_at if mode == "sweep" else swept == 0

        with filespace.open(location) as fsp:
            assert_consistent(fsp)  # what the killed run committed is whole
            _finish(mode, fsp, documents, source, kill_at, swept)
            _check_converged(fsp, s3_client(s3_server), bucket)
    if queue is not None:
        assert queue.depth() == 0


def _finish(
    mode: str, fsp: Filespace, documents: list[str], source: str, kill_at: int, swept: int
) -> None:
    """Do the killed work again to the end, and once more: the second time changes nothing."""
    if mode == "follow":
        # The killed child's unacknowledged messages are delivered again.
        follower = fsp.connect.follow(
            source, data_store_name="store", prefix="k/", dest_dir="/dest"
        )
        stats = follower.run(until="drained")
        assert stats.messages >= OBJECTS + GONE - kill_at - 3 * BATCH
        assert stats.report.removed == GONE and not stats.report.skipped
        return
    if mode == "events":
        report: MirrorReport | SyncReport = fsp.connect.apply_events(
            documents, data_store_name="store", prefix="k/", dest_dir="/dest"
        )
        done = report.added + report.updated + report.unchanged
        assert report.stale >= kill_at and done + report.stale == OBJECTS
        again: MirrorReport | SyncReport = fsp.connect.apply_events(
            documents, data_store_name="store", prefix="k/", dest_dir="/dest"
        )
    else:
        report = fsp.connect.mirror("store", PREFIX, "/dest")
        assert report.added + report.updated + report.unchanged == OBJECTS
        if mode == "sweep":
            assert report.unchanged == OBJECTS  # every batch was done before the kill
        again = fsp.connect.mirror("store", PREFIX, "/dest")
    assert report.removed == GONE - swept
    assert not report.skipped
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
