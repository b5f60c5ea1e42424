"""``connect.follow`` as a webhook listener: bearer token, answers after commit, sealed token."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import filespace
from filespace import Filespace
from filespace.connect.feeds.webhook import WebhookFeed
from filespace.testing import SeaweedS3
from tests.bucket_events import Bucket, as_message
from tests.dumps import EngineDump
from tests.fsfixtures import raw_sql
from tests.test_link_files import s3_client

TOKEN = "a-webhook-token-" + "x7Yz" * 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def listening(
    fsp: Filespace, path: str = "/hook", **options: Any
) -> Iterator[tuple[int, filespace.Follower]]:
    """A webhook follower running in a thread until the block ends; its port.

    ``options`` go to ``follow`` (default: store ``store`` into ``/w``).
    """
    port = _free_port()
    connected = threading.Event()
    follower = fsp.connect.follow(
        f"http://127.0.0.1:{port}{path}",
        **{"data_store_name": "store", "dest_dir": "/w", **options},
        progress=lambda _: connected.set(),
    )
    failed: list[BaseException] = []

    def run() -> None:
        try:
            follower.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failed.append(exc)
            connected.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert connected.wait(60)
    if failed:
        raise failed[0]
    try:
        yield port, follower
    finally:
        follower.stop()
        thread.join(60)
        assert not thread.is_alive()


def post(port: int, body: bytes, auth: str | None, path: str = "/hook") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_a_post_needs_the_bearer_token_and_is_answered_after_commit(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connected.connect.set_webhook_token(TOKEN)
    changes = Bucket(s3_client(s3_server), bucket)
    body = as_message([changes.put("in/a file+", b"abc")])
    with listening(connected) as (port, follower):
        for auth in (None, "", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"):
            assert post(port, body, auth)[0] == 401
        assert post(port, body, f"Bearer {TOKEN}", path="/other")[0] == 404
        assert follower.stats.messages == 0
        with pytest.raises(FileNotFoundError):
            connected.fs.get_entry("/w/in/a file+")
        status, _ = post(port, body, f"Bearer {TOKEN}")
        # 200 only once committed: the link is there the moment the answer is.
        assert status == 200
        assert connected.connect.get_external_file("/w/in/a file+").object_id == "in/a file+"
        assert post(port, body, f"Bearer {TOKEN}")[0] == 200  # again: stale, harmless
        stats = follower.stats
    assert (stats.messages, stats.report.added, stats.report.stale) == (2, 1, 1)


def test_a_post_fetched_but_not_committed_is_refused_so_the_sender_retries() -> None:
    feed = WebhookFeed(f"http://127.0.0.1:{_free_port()}/hook", lambda: TOKEN)
    feed.connect()
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(post(feed.address[1], b"{}", f"Bearer {TOKEN}")[0])
    )
    sender.start()
    fetched = feed.fetch(10, 60)
    assert [m.body for m in fetched] == [b"{}"]
    feed.close()  # a follower that stops (or dies) before the commit: no acknowledgement
    sender.join(60)
    assert answers == [503]


def test_no_token_no_listener(connected: Filespace) -> None:
    follower = connected.connect.follow(
        f"http://127.0.0.1:{_free_port()}/", data_store_name="store", dest_dir="/w"
    )
    with pytest.raises(filespace.FeedError, match="no webhook token is set"):
        follower.run(until="drained")
    with pytest.raises(ValueError, match="16 to 256 characters"):
        connected.connect.set_webhook_token("short")


def test_the_token_is_sealed_and_resealed_on_key_rotation(connected: Filespace) -> None:
    connected.connect.set_webhook_token(TOKEN)
    dump = EngineDump(connected.engine_url, connected.engine_url, None)
    try:
        stored = json.dumps(dump(), default=repr)
    finally:
        dump.close()
    for form in (TOKEN, base64.b64encode(TOKEN.encode()).decode(), TOKEN.encode().hex()):
        assert form not in stored  # an engine reader does not learn it

    connected.rotate_key()
    with listening(connected) as (port, _):
        assert post(port, as_message([]), f"Bearer {TOKEN}")[0] == 200

    # A writer without the key can only break the sealed value, never set a token of its own.
    raw_sql(
        connected,
        "UPDATE settings SET value = ? WHERE name = 'connect_settings'",
        base64.b64encode(b"not sealed under the key").decode(),
    )
    follower = connected.connect.follow(
        f"http://127.0.0.1:{_free_port()}/", data_store_name="store", dest_dir="/w"
    )
    with pytest.raises(filespace.WrongKeyError):
        follower.run(until="drained")
