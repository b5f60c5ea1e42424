"""``connect.follow`` and ``filespace follow`` through SQS: moto's server, signed like AWS.

The documents are the ones S3 puts on a queue: one record per message, the
``s3:TestEvent`` sent when the configuration is set, and the same wrapped in
SNS notifications (S3 -> SNS -> SQS). The server checks every request's SigV4
signature and the follower identity's IAM policy (``tests/sqsserver.py``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import filespace
from filespace import Filespace
from filespace.testing import SeaweedS3
from tests import leakguard
from tests.bucket_events import Bucket, as_message, s3_test_event, via_sns
from tests.cli_helpers import FILESPACE, Cli
from tests.fsfixtures import postgres_url
from tests.sqsserver import SqsQueue, SqsServer
from tests.test_cli_follow import _in_step, follow_cli  # noqa: F401
from tests.test_follow import history
from tests.test_link_files import s3_client
from tests.test_mirror import bucket_links, links_under
from tests.waiting import until


@pytest.fixture
def cli(engine_name: str, request: pytest.FixtureRequest) -> Cli:
    """A filespace on each engine with data store ``store`` (``follow_cli``)."""
    found: Cli = request.getfixturevalue("follow_cli")
    return found


def as_s3_sends(changes: Bucket) -> list[bytes]:
    """The records of ``changes`` as S3 puts them on a queue: one per message, every third
    through SNS, and both kinds of the test message S3 sends first."""
    bodies = [as_message([one]) for one in changes.records]
    wrapped = [via_sns(body) if at % 3 == 0 else body for at, body in enumerate(bodies)]
    return [s3_test_event(changes.name), via_sns(s3_test_event(changes.name)), *wrapped]


def _env(server: SqsServer, source: str) -> dict[str, str]:
    """What ``filespace follow`` runs with: the source and the follower's credentials."""
    return {
        "FILESPACE_FOLLOW_SOURCE": source,
        **server.follower.env(),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def test_follow_drains_an_sqs_queue(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, sqs_queue: SqsQueue
) -> None:
    changes = history(s3_server, bucket)
    sent = as_s3_sends(changes)
    again = [as_message([one]) for one in changes.records[:3]]  # delivered twice
    sqs_queue.publish(*sent, *again)
    follower = connected.connect.follow(sqs_queue.source, data_store_name="store", dest_dir="/f")
    stats = follower.run(until="drained")
    assert stats.messages == len(sent) + 3 == 44 + 2 + 3
    report = stats.report
    assert report.records == 44 + 2 + 3
    assert report.ignored == 2  # the test messages
    assert not report.skipped and not report.errors
    assert report.stale >= 3
    assert report.added - report.removed == 24 == connected.connect.count_external_files("store")
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)
    assert sqs_queue.depth() == 0  # every message deleted once applied
    again_follower = connected.connect.follow(
        sqs_queue.source, data_store_name="store", dest_dir="/f"
    )
    assert again_follower.run(until="drained").messages == 0


def test_follow_once_through_sqs_on_the_command_line(
    cli: Cli,
    s3_server: SeaweedS3,
    bucket: str,
    sqs_server: SqsServer,
    sqs_queue: SqsQueue,
) -> None:
    changes = history(s3_server, bucket)
    sent = as_s3_sends(changes)
    sqs_queue.publish(*sent)
    env = _env(sqs_server, sqs_queue.source)
    doc = cli.ok("follow", "/f", "--store", "store", "--once", "--json", env=env).json()
    assert doc["source"] == sqs_queue.source
    assert doc["messages"] == len(sent)
    assert (doc["ignored"], doc["skipped"], doc["errors"]) == (2, 0, 0)
    assert doc["added"] - doc["removed"] == 24
    assert sqs_queue.depth() == 0
    _in_step(cli, s3_server, bucket)
    shown = cli.ok("follow", "/f", "-s", "store", "--once", env=env)
    assert shown.out == f"followed {sqs_queue.source} into /f: 0 messages: 0 added, " + (
        "0 updated, 0 removed, 0 unchanged, 0 stale, 0 ignored, 0 skipped, 0 errors\n"
    )
    assert shown.err == ""


@contextmanager
def writes_held(fsp_url: str) -> Iterator[None]:
    """Another client holds the engine's write lock until the block ends: a commit waits."""
    if fsp_url.startswith("sqlite://"):
        conn = sqlite3.connect(fsp_url[len("sqlite://") :], isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        return
    from urllib.parse import parse_qs, urlsplit

    import psycopg

    schema = parse_qs(urlsplit(fsp_url).query)["schema"][0]
    with psycopg.connect(postgres_url()) as conn:
        conn.execute(
            f'LOCK TABLE "{schema}".entries, "{schema}".event_tombstones IN EXCLUSIVE MODE'
        )
        yield
        conn.rollback()


def test_a_follower_killed_before_its_commit_gets_the_messages_again(
    cli: Cli,
    s3_server: SeaweedS3,
    bucket: str,
    sqs_server: SqsServer,
    sqs_queue: SqsQueue,
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    for index in range(10):  # one receive takes them all
        changes.put(f"k/{index}", b"v" * index)
    env = _env(sqs_server, sqs_queue.source)
    with cli.api() as fsp:
        fsp.fs.create_dir("/f")  # the follower has nothing to write before its first batch
        url = fsp.engine_url
    sqs_queue.publish(*(as_message([one]) for one in changes.records))  # one receive's worth
    sqs_queue.set_visibility(3)  # room for the test to see them in flight
    assert FILESPACE
    with writes_held(url):
        child = subprocess.Popen(
            [FILESPACE, "follow", "/f", "-s", "store"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**cli.env, **env},
            cwd=cli.home,
        )
        try:
            until(lambda: sqs_queue.counts()[0] == 0, "the follower to receive every message")
            # Received, in a batch that cannot commit: none deleted.
            assert sqs_queue.depth() == 10
            child.kill()
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    # Visible again after the visibility timeout; the drain waits for them.
    doc = cli.ok("follow", "/f", "-s", "store", "--once", "--json", env=env).json()
    assert (doc["messages"], doc["added"]) == (10, 10)
    assert sqs_queue.depth() == 0
    _in_step(cli, s3_server, bucket)


UNREACHABLE = "sqs://http://127.0.0.1:1/123456789012/bucket-events"


def test_an_unreachable_sqs_endpoint_is_one_error_line(cli: Cli, sqs_server: SqsServer) -> None:
    failed = cli.fails("follow", "/f", "-s", "store", env=_env(sqs_server, UNREACHABLE))
    assert failed.err.startswith(f"error: cannot follow {UNREACHABLE}: EndpointConnectionError: ")


def test_sqs_refusals_are_feed_errors(
    connected: Filespace, sqs_queue: SqsQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    follower = connected.connect.follow(UNREACHABLE, data_store_name="store", dest_dir="/f")
    with pytest.raises(filespace.FeedError, match=r"^cannot follow sqs://http://127\.0\.0\.1:1/"):
        follower.run(until="drained")
    missing = sqs_queue.source.rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(
        filespace.FeedError, match=r"cannot follow .*no-such-queue: .*NonExistentQueue"
    ):
        connected.connect.follow(missing, data_store_name="store", dest_dir="/f").run(
            until="drained"
        )
    wrong = "wrong-secret-" + os.urandom(12).hex()
    leakguard.remember(wrong)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    follower = connected.connect.follow(sqs_queue.source, data_store_name="store", dest_dir="/f")
    with pytest.raises(filespace.FeedError, match="SignatureDoesNotMatch") as caught:
        follower.run(until="drained")
    assert wrong not in str(caught.value)
