"""``connect.follow``: what a follower counts and reports, and how it rides out its broker.

Batches are made one at a time: the progress callback that hears of a batch
publishes the next message, so a JetStream drain sees it waiting (the
consumer's pending count) before it asks whether the stream is drained. Broker
failures are made with a relay whose connections the test cuts
(``tests.brokers.Cuttable``) at a point the progress callback reports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

import filespace
from filespace import Filespace
from filespace.connect.feeds import open_feed
from filespace.testing import SeaweedS3
from tests.brokers import AMQP, AmqpQueue, Cuttable, NatsStream, amqp_queue, nats_stream  # noqa: F401
from tests.bucket_events import Bucket, as_message, record
from tests.faultproxy import Fault, FaultProxy, Rule
from tests.sqsserver import SqsQueue, SqsServer
from tests.test_link_files import s3_client
from tests.test_mirror import bucket_links, links_under
from tests.waiting import until


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> AmqpQueue:
    """A fresh RabbitMQ queue (``amqp_queue``)."""
    found: AmqpQueue = request.getfixturevalue("amqp_queue")
    return found


@pytest.fixture
def stream(request: pytest.FixtureRequest) -> NatsStream:
    """A fresh JetStream stream (``nats_stream``)."""
    found: NatsStream = request.getfixturevalue("nats_stream")
    return found


PER_BATCH = 60
"""Unusable records per message: three messages hold more than the 100 the stats keep."""


def _troubled(bucket: str, batch: int) -> list[dict[str, Any]]:
    """``PER_BATCH`` records whose key is not URL-encoded UTF-8 (skipped) and as many
    without ``s3.bucket`` (errors), each one telling which batch and which record it was."""
    skipped = []
    for index in range(PER_BATCH):
        one = record(bucket, "k", 10 + index, size=1, etag="e" * 32)
        one["s3"]["object"]["key"] = f"%FFb{batch}-{index}"
        skipped.append(one)
    errors = [
        {"eventName": f"ObjectCreated:B{batch}-{index}", "s3": {}} for index in range(PER_BATCH)
    ]
    return skipped + errors


def _skipped_key(batch: int, index: int) -> filespace.SkippedKey:
    return filespace.SkippedKey(f"%FFb{batch}-{index}", "key is not URL-encoded UTF-8")


def _error(batch: int, index: int) -> str:
    return f"a ObjectCreated:B{batch}-{index} record without s3.bucket and s3.object"


def test_a_drain_counts_every_batch_and_keeps_the_last_hundred_problems(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, stream: NatsStream
) -> None:
    """Three batches, one message each: every count adds up over them, ``report.skipped``
    and ``report.errors`` keep the most recent 100, and each progress report is a snapshot
    that later batches do not change."""
    changes = Bucket(s3_client(s3_server), bucket)
    bodies = [
        as_message([changes.put(f"b{batch}", b"x" * batch), *_troubled(bucket, batch)])
        for batch in range(3)
    ]
    stream.publish(bodies[0])
    after_batch: list[filespace.FollowStats] = []

    def heard(stats: filespace.FollowStats) -> None:
        if stats.messages > len(after_batch):
            after_batch.append(stats)
            if len(after_batch) < len(bodies):  # waiting before the drain asks
                stream.publish(bodies[len(after_batch)])

    follower = connected.connect.follow(
        stream.source, data_store_name="store", dest_dir="/f", progress=heard
    )
    stats = follower.run(until="drained")
    assert [seen.messages for seen in after_batch] == [1, 2, 3]
    assert stats.messages == 3
    assert (stats.skipped, stats.errors) == (3 * PER_BATCH, 3 * PER_BATCH)
    everything = [(batch, index) for batch in range(3) for index in range(PER_BATCH)]
    assert stats.report.skipped == [_skipped_key(*at) for at in everything[-100:]]
    assert stats.report.errors == [_error(*at) for at in everything[-100:]]
    assert stats.report.added == 3
    # What the first batch's report said, it still says.
    first = after_batch[0]
    assert (first.messages, first.skipped, first.errors, first.report.added) == (
        1,
        PER_BATCH,
        PER_BATCH,
        1,
    )
    assert first.report.skipped == [_skipped_key(0, index) for index in range(PER_BATCH)]
    assert first.report.errors == [_error(0, index) for index in range(PER_BATCH)]
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)


def test_a_reconcile_counts_links_added_updated_and_removed(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    """``reconciled`` is the sum of what the reconcile's mirror added, re-pointed and
    removed: here 1 + 2 + 3, changes no event told of."""
    s3 = s3_client(s3_server)
    for key in ("keep", "new1", "new2", "gone1", "gone2", "gone3"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"before")
    assert connected.connect.mirror("store", "", "/f").added == 6
    s3.put_object(Bucket=bucket, Key="new1", Body=b"after, longer")
    s3.put_object(Bucket=bucket, Key="new2", Body=b"after, longer")
    for key in ("gone1", "gone2", "gone3"):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.put_object(Bucket=bucket, Key="added", Body=b"a")
    follower = connected.connect.follow(
        queue.source, data_store_name="store", dest_dir="/f", reconcile_every=3600
    )
    stats = follower.run(until="drained")
    assert (stats.messages, stats.reconciles, stats.reconciled) == (0, 1, 1 + 2 + 3)
    assert links_under(connected, "/f") == bucket_links(s3, bucket, "", strip=0)


def _relayed(queue: AmqpQueue) -> tuple[Cuttable, str]:
    """A cuttable relay to RabbitMQ and the source that reaches ``queue`` through it."""
    broker = urlsplit(AMQP)
    relay = Cuttable((broker.hostname or "127.0.0.1", broker.port or 5672))
    return relay, f"amqp://guest:guest@127.0.0.1:{relay.port}/%2F?queue={queue.name}"


def test_a_drain_connects_again_after_each_loss_and_says_what_was_lost(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    """The connection is cut before the first fetch and again after the first batch (before
    the drain asks what is still queued): each loss is reported with what the broker
    client said, then counted as a reconnect, and the drain still applies everything."""
    relay, source = _relayed(queue)
    public = f"lost amqp://guest@127.0.0.1:{relay.port}/%2F?queue={queue.name}: "
    changes = Bucket(s3_client(s3_server), bucket)
    queue.publish(as_message([changes.put("first", b"1")]))
    heard: list[tuple[int, int, str]] = []

    def progress(stats: filespace.FollowStats) -> None:
        heard.append((stats.reconnects, stats.messages, stats.last_problem))
        if len(heard) == 1:  # connected: the first fetch finds the connection gone
            relay.cut()
        elif stats.messages == 1 and stats.reconnects == 1 and len(heard) == 4:
            relay.cut()  # after the first batch: the question "what is queued?" fails
            until(lambda: queue.consumers() == 0, "RabbitMQ to drop the cut consumer")
            queue.publish(as_message([changes.put("second", b"2")]))
            until(lambda: queue.depth() == 1, "the second message to wait on the queue")

    try:
        follower = connected.connect.follow(
            source, data_store_name="store", dest_dir="/f", progress=progress
        )
        stats = follower.run(until="drained")
    finally:
        relay.close()
    pairs = [(reconnects, messages) for reconnects, messages, _ in heard]
    assert pairs[:6] == [
        (0, 0),  # connected
        (0, 0),  # the fetch failed
        (1, 0),  # connected again
        (1, 1),  # the first batch
        (1, 1),  # asking what is queued failed
        (2, 1),  # connected again
    ], heard
    # Then the second message. The cut after the first batch may come before
    # RabbitMQ has that batch's ack: it then delivers the first message again
    # (at least once), in the same batch or the next, and applying it again
    # changes nothing.
    again = stats.messages - 2
    assert again in (0, 1) and pairs[-1] == (2, 2 + again), heard
    assert all(reconnects == 2 for reconnects, _ in pairs[6:]), heard
    problems = [problem for _, _, problem in heard]
    assert problems[0] == ""
    assert problems[1].startswith(public) and problems[1:4] == [problems[1]] * 3
    assert problems[4].startswith(public) and set(problems[4:]) == {problems[4]}
    assert "guest:guest" not in problems[1] + problems[4]
    assert (stats.reconnects, stats.report.added) == (2, 2)
    assert stats.last_problem == problems[4]
    assert relay.connections == 3
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)


class Following:
    """A follower running in a thread; the test waits on what its progress reports."""

    def __init__(self, follower_of: Callable[..., filespace.Follower]) -> None:
        self._lock = threading.Lock()
        self.last: filespace.FollowStats | None = None
        self.follower = follower_of(progress=self._heard)
        self.failed: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.follower.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.failed.append(exc)

    def _heard(self, stats: filespace.FollowStats) -> None:
        with self._lock:
            self.last = stats

    def wait(self, done: Callable[[], bool], what: str) -> None:
        """Until ``done()`` holds; fails at once if the follower died instead."""
        until(lambda: done() or not self.thread.is_alive(), what)
        assert not self.failed, self.failed
        assert self.thread.is_alive()

    def added(self) -> int:
        with self._lock:
            return 0 if self.last is None else self.last.report.added

    def stop(self) -> filespace.FollowStats:
        self.follower.stop()
        self.thread.join(60)
        assert not self.thread.is_alive() and not self.failed, self.failed
        return self.follower.stats


def test_a_follower_keeps_trying_to_connect_until_the_queue_is_back(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    """The queue is deleted and the connection cut: connecting again fails (the queue must
    exist) and is tried again, later, until the queue is back; ``last_problem`` says why the
    last attempt failed, and the one reconnect that succeeded is counted once."""
    import pika

    relay, source = _relayed(queue)
    changes = Bucket(s3_client(s3_server), bucket)
    admin = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = admin.channel()
    try:
        queue.publish(as_message([changes.put("first", b"1")]))
        running = Following(
            lambda **progress: connected.connect.follow(
                source, data_store_name="store", dest_dir="/f", **progress
            )
        )
        running.wait(lambda: running.added() == 1, "the first message applied")
        channel.queue_delete(queue.name)
        relay.cut()
        # The first connection, then two attempts: the first of them failed.
        running.wait(lambda: relay.connections >= 3, "a second attempt to connect")
        channel.queue_declare(queue.name, durable=True)
        channel.basic_publish("", queue.name, as_message([changes.put("second", b"2")]))
        running.wait(lambda: running.added() == 2, "the message sent once the queue was back")
        stats = running.stop()
    finally:
        admin.close()
        relay.close()
    assert stats.reconnects == 1
    assert stats.last_problem.startswith(
        f"cannot follow amqp://guest@127.0.0.1:{relay.port}/%2F?queue={queue.name}: "
    )
    assert "NOT_FOUND" in stats.last_problem and "guest:guest" not in stats.last_problem
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)


def test_a_drain_waits_for_the_one_message_a_killed_run_held(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, stream: NatsStream
) -> None:
    """A run that fetched one message and went away without acknowledging it: a drain
    applies what is waiting, then waits for JetStream to deliver the held one again
    (after the consumer's AckWait, 1 s here) and applies it too."""
    source = f"{stream.source}?ack_wait=1"
    changes = Bucket(s3_client(s3_server), bucket)
    stream.publish(as_message([changes.put("held", b"h")]))
    killed = open_feed(source, lambda: None)
    killed.connect()
    try:
        held = killed.fetch(1, 5.0)
        assert [
            json.loads(message.body)["Records"][0]["s3"]["object"]["key"] for message in held
        ] == ["held"]
    finally:
        killed.close()  # never acknowledged
    stream.publish(as_message([changes.put("waiting", b"w")]))
    follower = connected.connect.follow(source, data_store_name="store", dest_dir="/f")
    stats = follower.run(until="drained")
    assert (stats.messages, stats.report.added) == (2, 2)
    assert stream.depth() == 0
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)


def test_run_takes_none_drained_or_seconds_and_names_what_it_got_otherwise(
    connected: Filespace, queue: AmqpQueue
) -> None:
    """``until`` is checked before anything is connected; the repr names the source
    without its password."""
    follower = connected.connect.follow(queue.source, data_store_name="store", dest_dir="/f")
    public = queue.source.replace("guest:guest@", "guest@")
    assert repr(follower) == f"Follower({public!r})"
    for given, shown in ((-1, "-1"), (-0.5, "-0.5"), (True, "True"), ("soon", "'soon'")):
        with pytest.raises(
            ValueError, match=rf'^until must be None, "drained" or seconds, got {shown}$'
        ):
            follower.run(until=given)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [0, 0.5])
def test_a_run_for_some_seconds_returns_its_stats_without_reconciling_unasked(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue, seconds: float
) -> None:
    """Without ``reconcile_every`` nothing is mirrored, however long the run; 0 s is a
    run that stops at once."""
    s3_client(s3_server).put_object(Bucket=bucket, Key="quiet", Body=b"no event")
    follower = connected.connect.follow(queue.source, data_store_name="store", dest_dir="/f")
    stats = follower.run(until=seconds)
    assert (stats.messages, stats.reconciles, stats.reconciled) == (0, 0, 0)
    assert links_under(connected, "/f") == {}


def test_a_timed_run_reconciles_at_start_then_on_schedule_only(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    """A run of 1.5 s reconciling every hour reconciles once, at its start, then stops at
    its deadline with the stats."""
    s3_client(s3_server).put_object(Bucket=bucket, Key="quiet", Body=b"no event")
    follower = connected.connect.follow(
        queue.source, data_store_name="store", dest_dir="/f", reconcile_every=3600
    )
    stats = follower.run(until=1.5)
    assert (stats.messages, stats.reconciles, stats.reconciled) == (0, 1, 1)
    assert connected.connect.get_external_file("/f/quiet").object_id == "quiet"


def test_events_that_are_no_document_are_named_by_their_type(connected: Filespace) -> None:
    """``apply_events`` refuses what is neither a document nor an iterable of them, before
    applying anything, and says what it got."""
    with pytest.raises(
        TypeError, match=r"^events must be an event document or an iterable of them, not int$"
    ):
        connected.connect.apply_events(42, data_store_name="store", dest_dir="/e")


def test_a_message_applied_but_not_deleted_comes_again_and_changes_nothing(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, sqs_queue: SqsQueue
) -> None:
    """Every attempt to delete the first message fails: the follower connects again and
    says what was lost; the change was committed, so when SQS delivers the message again
    (after its 1 s visibility timeout) it is applied again as stale and then deleted."""
    changes = Bucket(s3_client(s3_server), bucket)
    sqs_queue.publish(as_message([changes.put("once", b"1")]))
    server = urlsplit(sqs_queue.url)
    # Requests in order: connect, receive, then the delete and its three retries.
    rules = [Rule(Fault.S500, method="POST", nth={3, 4, 5, 6})]
    with FaultProxy(f"http://{server.netloc}", rules) as proxy:
        proxied = sqs_queue.url.replace(f"http://{server.netloc}", proxy.endpoint)
        follower = connected.connect.follow(
            f"sqs://{proxied}", data_store_name="store", dest_dir="/f"
        )
        stats = follower.run(until="drained")
    assert len(proxy.faults(Fault.S500)) == 4
    assert stats.last_problem.startswith(f"lost sqs://{proxied}: ")
    assert (stats.messages, stats.reconnects) == (2, 1)
    assert (stats.report.added, stats.report.records) == (1, 2)
    assert sqs_queue.depth() == 0
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)


def test_a_drain_that_loses_the_queue_while_waiting_for_a_held_message_still_gets_it(
    connected: Filespace,
    s3_server: SeaweedS3,
    bucket: str,
    sqs_server: SqsServer,
    sqs_queue: SqsQueue,
) -> None:
    """A killed run holds one message (visibility 60 s). The drain applies the other, then
    asks how many are in flight and every attempt fails: it connects again, says what was
    lost, and keeps waiting; once the held message is visible again it is applied."""
    sqs_queue.set_visibility(60)
    changes = Bucket(s3_client(s3_server), bucket)
    sqs_queue.publish(as_message([changes.put("held", b"h")]))
    killed = open_feed(sqs_queue.source, lambda: None)
    killed.connect()
    try:
        (held,) = killed.fetch(1, 5.0)
    finally:
        killed.close()  # never deleted
    sqs_queue.publish(as_message([changes.put("waiting", b"w")]))
    server = urlsplit(sqs_queue.url)
    # Requests in order: connect, receive, delete, an empty receive, then the question
    # "how many are in flight?" and its three retries.
    rules = [Rule(Fault.S500, method="POST", nth={5, 6, 7, 8})]
    with FaultProxy(f"http://{server.netloc}", rules) as proxy:

        def release() -> None:
            """The held message visible again once the drain has lost the queue."""
            until(lambda: len(proxy.faults()) == 4, "four failed requests")
            sqs_server.client().change_message_visibility(
                QueueUrl=sqs_queue.url, ReceiptHandle=held.tag, VisibilityTimeout=0
            )

        releasing = threading.Thread(target=release, daemon=True)
        releasing.start()
        proxied = sqs_queue.url.replace(f"http://{server.netloc}", proxy.endpoint)
        follower = connected.connect.follow(
            f"sqs://{proxied}", data_store_name="store", dest_dir="/f"
        )
        stats = follower.run(until="drained")
        releasing.join(60)
    assert stats.last_problem.startswith(f"lost sqs://{proxied}: ")
    assert (stats.messages, stats.reconnects, stats.report.added) == (2, 1, 2)
    assert sqs_queue.depth() == 0
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)


def test_unreadable_documents_are_errors_that_say_what_is_wrong(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    """Each document that cannot be read is one error with the reason a user sees; a
    ``Message`` text beside ``Records`` is no SNS envelope (that needs ``"Type":
    "Notification"``), so the records are applied."""
    changes = Bucket(s3_client(s3_server), bucket)
    made = changes.put("kept", b"k")
    report = connected.connect.apply_events(
        [
            b"\xff\xfe",
            "[" * 100_000,
            {"Records": "not a list"},
            {"Records": [made], "Message": "an unrelated text"},
        ],
        data_store_name="store",
        dest_dir="/e",
    )
    assert report.errors == [
        "a document that is not UTF-8 text",
        "a document nested too deeply",
        "Records is not a list",
    ]
    assert (report.added, report.records) == (1, 4)


def test_records_that_are_not_event_records_are_errors_that_say_what_is_missing(
    connected: Filespace, bucket: str
) -> None:
    """Each unreadable record is one error naming what it lacks; the others still count."""
    whole = record(bucket, "k", 1, size=1, etag="e" * 32)
    no_key = json.loads(json.dumps(whole))
    no_key["s3"]["object"]["key"] = ""
    key_not_text = json.loads(json.dumps(whole))
    key_not_text["s3"]["object"]["key"] = 5
    records = [
        5,
        {"eventName": "ObjectCreated:Put"},
        {"s3": whole["s3"]},
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": whole["s3"]["bucket"]}},
        no_key,
        key_not_text,
    ]
    report = connected.connect.apply_events(
        {"Records": records}, data_store_name="store", dest_dir="/e"
    )
    assert report.errors == [
        "a record that is not a JSON object",
        "a record without eventName and s3",
        "a record without eventName and s3",
        "a ObjectCreated:Put record without s3.bucket and s3.object",
        "a ObjectCreated:Put record without bucket name and object key",
        "a ObjectCreated:Put record without bucket name and object key",
    ]
