"""A follower left running: reconciles on a schedule, and reconnects when its broker drops it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

import filespace
from filespace import Filespace
from filespace.testing import SeaweedS3
from tests.brokers import AMQP, NATS, AmqpQueue, Cuttable, NatsStream, amqp_queue, nats_stream  # noqa: F401
from tests.bucket_events import Bucket, as_message
from tests.test_link_files import s3_client
from tests.test_mirror import bucket_links, links_under

_WAIT_S = 60


class Watched:
    """A follower running in a thread; the test waits on what its progress reports."""

    def __init__(self, fsp: Filespace, source: str, **options: object) -> None:
        self._changed = threading.Condition()
        self._last: filespace.FollowStats | None = None
        self.follower = fsp.connect.follow(
            source, data_store_name="store", dest_dir="/f", progress=self._seen, **options
        )
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.follower.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._failed.append(exc)
        with self._changed:
            self._changed.notify_all()

    def _seen(self, stats: filespace.FollowStats) -> None:
        with self._changed:
            self._last = stats
            self._changed.notify_all()

    def wait(self, done: Callable[[filespace.FollowStats], bool]) -> filespace.FollowStats:
        """The stats once ``done`` holds for them (reported by the follower's progress)."""
        deadline = time.monotonic() + _WAIT_S
        with self._changed:
            while self._last is None or not done(self._last):
                assert not self._failed, self._failed
                assert self._changed.wait(deadline - time.monotonic()), self._last
            return self._last

    def stop(self) -> filespace.FollowStats:
        self.follower.stop()
        self._thread.join(_WAIT_S)
        assert not self._thread.is_alive() and not self._failed, self._failed
        return self.follower.stats


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> AmqpQueue:
    """A fresh RabbitMQ queue (``amqp_queue``)."""
    found: AmqpQueue = request.getfixturevalue("amqp_queue")
    return found


def test_a_drain_reconciles_at_the_end(
    connected: Filespace, bucket: str, s3_server: SeaweedS3, queue: AmqpQueue
) -> None:
    s3_client(s3_server).put_object(Bucket=bucket, Key="quiet/one", Body=b"no event")
    follower = connected.connect.follow(
        queue.source, data_store_name="store", dest_dir="/f", reconcile_every=3600
    )
    stats = follower.run(until="drained")
    assert (stats.messages, stats.reconciles, stats.reconciled) == (0, 1, 1)
    assert connected.connect.get_external_file("/f/quiet/one").object_id == "quiet/one"


def test_a_running_follower_reconciles_on_schedule(
    connected: Filespace, bucket: str, s3_server: SeaweedS3, queue: AmqpQueue
) -> None:
    s3 = s3_client(s3_server)
    s3.put_object(Bucket=bucket, Key="before", Body=b"b")
    watched = Watched(connected, queue.source, reconcile_every=0.2)
    watched.wait(lambda s: s.reconciled >= 1)  # the reconcile at start
    s3.put_object(Bucket=bucket, Key="while/running", Body=b"w")  # no event sent
    watched.wait(lambda s: s.reconciled >= 2)
    stats = watched.stop()
    assert stats.messages == 0 and stats.reconciles >= 2
    assert links_under(connected, "/f") == bucket_links(s3, bucket, "", strip=0)


@pytest.mark.parametrize("broker", ["amqp", "nats"])
def test_a_dropped_connection_is_made_again(
    connected: Filespace,
    bucket: str,
    s3_server: SeaweedS3,
    broker: str,
    request: pytest.FixtureRequest,
) -> None:
    feed: AmqpQueue | NatsStream = request.getfixturevalue(
        "amqp_queue" if broker == "amqp" else "nats_stream"
    )
    broker_url = urlsplit(AMQP if broker == "amqp" else NATS)
    relay = Cuttable((broker_url.hostname or "127.0.0.1", broker_url.port or 0))
    if isinstance(feed, AmqpQueue):
        source = f"amqp://guest:guest@127.0.0.1:{relay.port}/%2F?queue={feed.name}"
    else:
        source = f"nats://127.0.0.1:{relay.port}/{feed.subject}?ack_wait=3"
    changes = Bucket(s3_client(s3_server), bucket)
    try:
        watched = Watched(connected, source)
        for index in range(5):
            feed.publish(as_message([changes.put(f"first/{index}", b"1")]))
        watched.wait(lambda s: s.report.added >= 5)
        relay.cut()  # as a broker restart would
        for index in range(5):
            feed.publish(as_message([changes.put(f"after/{index}", b"2")]))
        stats = watched.wait(lambda s: s.reconnects >= 1 and s.report.added >= 10)
        assert stats.last_problem.startswith("lost ") and "guest:guest" not in stats.last_problem
        watched.stop()
    finally:
        relay.close()
    assert relay.connections >= 2
    assert links_under(connected, "/f") == bucket_links(s3_client(s3_server), bucket, "", strip=0)
