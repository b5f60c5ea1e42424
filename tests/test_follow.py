"""``connect.follow``: event documents through real brokers (RabbitMQ, NATS JetStream)."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from urllib.parse import urlsplit

import pytest

import filespace
from filespace import Filespace
from filespace.testing import SeaweedS3
from tests import leakguard
from tests.brokers import AMQP, NATS, AmqpQueue, NatsStream, amqp_queue, nats_stream  # noqa: F401
from tests.bucket_events import Bucket, as_message
from tests.test_link_files import s3_client
from tests.test_mirror import bucket_links, links_under


def history(s3_server: SeaweedS3, bucket: str) -> Bucket:
    """Creates, overwrites and deletes, keys with spaces, + and unicode."""
    changes = Bucket(s3_client(s3_server), bucket)
    for index in range(30):
        changes.put(f"d{index % 3}/o {index}+é", b"x" * index)
    for index in range(0, 30, 4):
        changes.put(f"d{index % 3}/o {index}+é", b"rewritten")
    for index in range(1, 30, 5):
        changes.delete(f"d{index % 3}/o {index}+é")
    return changes


def messages(changes: Bucket, per_message: int = 7) -> list[bytes]:
    records = changes.records
    return [
        as_message(records[at : at + per_message]) for at in range(0, len(records), per_message)
    ]


@pytest.mark.parametrize("broker", ["amqp", "nats"])
def test_follow_drains_a_queue(
    connected: Filespace,
    s3_server: SeaweedS3,
    bucket: str,
    broker: str,
    request: pytest.FixtureRequest,
) -> None:
    fixture = "amqp_queue" if broker == "amqp" else "nats_stream"
    feed: AmqpQueue | NatsStream = request.getfixturevalue(fixture)
    changes = history(s3_server, bucket)
    bodies = messages(changes)
    feed.publish(*bodies, *bodies[:3])  # the first three delivered twice
    seen: list[filespace.FollowStats] = []
    follower = connected.connect.follow(
        feed.source, data_store_name="store", dest_dir="/f", progress=seen.append
    )
    assert "guest:" not in repr(follower)
    stats = follower.run(until="drained")
    assert stats.messages == len(bodies) + 3
    report = stats.report
    twice = sum(len(json.loads(body)["Records"]) for body in bodies[:3])
    assert report.records == len(changes.records) + twice == 44 + twice
    assert not report.skipped and not report.errors and not report.ignored
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)
    assert report.added - report.removed == 24 == connected.connect.count_external_files("store")
    assert report.stale >= twice
    assert seen and seen[-1].messages == stats.messages
    # Acknowledged: a second run finds nothing.
    again = connected.connect.follow(feed.source, data_store_name="store", dest_dir="/f")
    assert again.run(until="drained").messages == 0


@pytest.mark.parametrize("broker", ["amqp", "nats"])
def test_a_feed_counts_what_waits_for_it(broker: str, request: pytest.FixtureRequest) -> None:
    """``queued``: what a drain asks before it stops (waiting on the broker or received)."""
    from filespace.connect.feeds import open_feed

    fixture = "amqp_queue" if broker == "amqp" else "nats_stream"
    queue: AmqpQueue | NatsStream = request.getfixturevalue(fixture)
    queue.publish(*(b'{"n": %d}' % number for number in range(5)))
    feed = open_feed(queue.source, lambda: None)
    feed.connect()
    try:
        assert feed.queued() == 5
        taken = feed.fetch(2, 5.0)
        while len(taken) < 2:  # a fetch may hand over fewer than asked, never more
            taken += feed.fetch(2 - len(taken), 5.0)
        assert [message.body for message in taken] == [b'{"n": 0}', b'{"n": 1}']
        assert feed.queued() == 3
        feed.ack(taken)
        rest = feed.fetch(10, 5.0)
        while len(taken) + len(rest) < 5:
            rest += feed.fetch(10, 5.0)
        feed.ack(rest)
        assert feed.queued() == 0
    finally:
        feed.close()


def test_an_unreachable_broker_is_one_error_without_the_password(connected: Filespace) -> None:
    follower = connected.connect.follow(
        "amqp://user:s3cret-pw@127.0.0.1:1/%2F?queue=q", data_store_name="store", dest_dir="/f"
    )
    with pytest.raises(filespace.FeedError) as caught:
        follower.run(until="drained")
    assert "s3cret-pw" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_bad_sources_are_value_errors(connected: Filespace) -> None:
    for source, why in (
        ("ftp://x/", "is not amqp://"),
        ("amqp://h:5672/%2F", r"name the queue \(\?queue=NAME\)"),
        ("nats://h:4222/", "name the subject"),
        ("nats://h:4222/s?ack_wait=0", "ack_wait must be seconds > 0"),
        (7, "source must be a URL string"),
    ):
        with pytest.raises(ValueError, match=why):
            connected.connect.follow(source, data_store_name="store", dest_dir="/f")
    with pytest.raises(ValueError, match="expose"):
        connected.connect.follow("http://0.0.0.0:8080/", data_store_name="store", dest_dir="/f")


def test_broker_clients_log_no_password(
    connected: Filespace, caplog: pytest.LogCaptureFixture
) -> None:
    """pika's and nats-py's own DEBUG logging, with a refused login and a good connection."""
    password = "broker-password-" + uuid.uuid4().hex
    leakguard.remember(password)
    caplog.set_level(logging.DEBUG)
    amqp = urlsplit(AMQP)
    refused = connected.connect.follow(
        f"amqp://guest:{password}@{amqp.hostname}:{amqp.port}/%2F?queue=q",
        data_store_name="store",
        dest_dir="/f",
    )
    with pytest.raises(filespace.FeedError, match="ACCESS_REFUSED") as caught:
        refused.run(until="drained")
    nats = urlsplit(NATS)
    subject = f"fs.{uuid.uuid4().hex[:10]}"
    with contextlib.suppress(filespace.FeedError):  # with or without auth on the server
        connected.connect.follow(
            f"nats://someone:{password}@{nats.hostname}:{nats.port}/{subject}",
            data_store_name="store",
            dest_dir="/f",
        ).run(until="drained")
    assert caplog.records  # pika logged its DEBUG lines
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert password not in logged + str(caught.value)
