"""``filespace follow`` through real brokers (RabbitMQ, NATS JetStream) and a real SeaweedFS."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from filespace.testing import SeaweedS3
from tests import leakguard
from tests.brokers import AmqpQueue, NatsStream, amqp_queue, nats_stream  # noqa: F401
from tests.bucket_events import Bucket, as_message
from tests.cli_helpers import FILESPACE, Cli, add_store, all_secrets, new_cli
from tests.fsfixtures import new_location
from tests.test_follow import history, messages
from tests.test_link_files import s3_client
from tests.test_mirror import bucket_links, links_under
from tests.waiting import until

pytest_plugins = ["tests.cli_helpers"]

_WAIT_S = 120


@pytest.fixture
def follow_cli(
    engine_name: str, tmp_path: Path, s3_server: SeaweedS3, bucket: str
) -> Iterator[Cli]:
    """A filespace on each engine with Connect on and data store ``store`` on ``bucket``."""
    cli = new_cli(tmp_path / "home", all_secrets(s3_server))
    with new_location(engine_name, tmp_path) as (location, options):
        data = ["--data", options["data"]] if "data" in options else []
        cli.ok("init", location, "--name", "followed", *data)
        cli.location = location  # type: ignore[assignment] # an engine URL is a location too
        cli.ok("connect", "enable")
        add_store(cli, s3_server, "store", bucket)
        yield cli


@pytest.fixture
def sqlite_cli(tmp_path: Path, s3_server: SeaweedS3, bucket: str) -> Cli:
    """An embedded filespace with Connect on and data store ``store`` on ``bucket``."""
    cli = new_cli(tmp_path / "home", all_secrets(s3_server))
    cli.ok("init", str(cli.location), "--name", "followed")
    cli.ok("connect", "enable")
    add_store(cli, s3_server, "store", bucket)
    return cli


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> AmqpQueue:
    """A fresh RabbitMQ queue (``amqp_queue``)."""
    found: AmqpQueue = request.getfixturevalue("amqp_queue")
    return found


def _feed(request: pytest.FixtureRequest, broker: str) -> AmqpQueue | NatsStream:
    return request.getfixturevalue("amqp_queue" if broker == "amqp" else "nats_stream")


def _in_step(cli: Cli, s3_server: SeaweedS3, bucket: str) -> None:
    """The tree under /f holds exactly the bucket's objects, as mirror would make it."""
    objects = bucket_links(s3_client(s3_server), bucket, "", strip=0)
    with cli.api() as fsp:
        assert links_under(fsp, "/f") == objects
        assert fsp.connect.count_external_files("store") == len(objects)
        planned = fsp.connect.mirror("store", "", "/f", dry_run=True)
    assert (planned.added, planned.updated, planned.removed) == (0, 0, 0)
    assert planned.unchanged == len(objects)


@pytest.mark.parametrize("broker", ["amqp", "nats"])
def test_follow_once_drains_the_queue(
    sqlite_cli: Cli,
    s3_server: SeaweedS3,
    bucket: str,
    broker: str,
    request: pytest.FixtureRequest,
) -> None:
    feed = _feed(request, broker)
    changes = history(s3_server, bucket)
    bodies = messages(changes)
    feed.publish(*bodies)
    env = {"FILESPACE_FOLLOW_SOURCE": feed.source}
    doc = sqlite_cli.ok("follow", "/f", "--store", "store", "--once", "--json", env=env).json()
    assert doc["messages"] == len(bodies)
    assert doc["source"] == feed.source.replace("guest:guest@", "guest@")
    assert doc["added"] - doc["removed"] == 24  # the keys left in the bucket
    assert (doc["skipped"], doc["errors"]) == (0, 0)
    records = sum(doc[k] for k in ("added", "updated", "removed", "unchanged", "stale", "ignored"))
    assert records == len(changes.records) == 44
    assert doc["skipped_keys"] == doc["error_messages"] == []
    _in_step(sqlite_cli, s3_server, bucket)

    again = sqlite_cli.ok("follow", "/f", "-s", "store", "--source", feed.source, "--once")
    assert again.out == f"followed {doc['source']} into /f: 0 messages: 0 added, 0 updated, " + (
        "0 removed, 0 unchanged, 0 stale, 0 ignored, 0 skipped, 0 errors\n"
    )
    if broker == "amqp":  # guest:guest on the command line
        assert again.err == (
            "warning: a password in --source is visible to other users; "
            "set FILESPACE_FOLLOW_SOURCE\n"
        )
        assert "guest:guest" not in again.out + again.err
    else:
        assert again.err == ""


def test_follow_summary_lists_skipped_keys_and_errors(
    sqlite_cli: Cli, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    changes.put("good", b"g")
    changes.put("bad//key", b"b")
    queue.publish(as_message(changes.records), b"not json")
    env = {"FILESPACE_FOLLOW_SOURCE": queue.source}
    result = sqlite_cli.ok("follow", "/f", "-s", "store", "--once", env=env)
    lines = result.out.splitlines()
    assert lines[0].endswith(": 2 messages: 1 added, 0 updated, 0 removed, 0 unchanged, "
                             "0 stale, 0 ignored, 1 skipped, 1 errors")  # fmt: skip
    assert lines[1].startswith("  skipped 'bad//key': ")
    assert lines[2].startswith("  error: a document that is not JSON")


def test_an_unreachable_broker_is_one_error_line(sqlite_cli: Cli) -> None:
    password = "an-amqp-password-" + os.urandom(8).hex()
    leakguard.remember(password)
    source = f"amqp://follower:{password}@127.0.0.1:1/%2F?queue=q"
    failed = sqlite_cli.fails(
        "follow", "/f", "-s", "store", "--once", env={"FILESPACE_FOLLOW_SOURCE": source}
    )
    assert failed.err.startswith("error: cannot follow amqp://follower@127.0.0.1:1/%2F?queue=q: ")
    assert password not in failed.out + failed.err
    # On the command line: the warning, then the same one error line, never the password.
    shown = sqlite_cli.run("follow", "/f", "-s", "store", "--source", source)
    assert shown.code == 1
    warning, error = shown.err.splitlines()
    assert warning.startswith("warning: a password in --source")
    assert error == failed.err.strip()
    assert password not in shown.out + shown.err


class Running:
    """``filespace follow`` running on a pseudo-terminal; its output is read as it comes."""

    def __init__(self, cli: Cli, *args: str, env: dict[str, str]) -> None:
        assert FILESPACE
        master, slave = pty.openpty()
        self._master = master
        self.proc = subprocess.Popen(
            [FILESPACE, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**cli.env, **env, "COLUMNS": "1000"},
            cwd=cli.home,
        )
        os.close(slave)
        self._text = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            with self._changed:
                self._text += chunk.decode(errors="replace")
                self._changed.notify_all()
                if not chunk:
                    self._text += "\0"  # the end
                    return

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first match of ``pattern`` in the output, once it is printed."""
        deadline = time.monotonic() + _WAIT_S
        with self._changed:
            while True:
                found = re.search(pattern, self._text)
                if found or self._text.endswith("\0"):
                    break
                assert self._changed.wait(deadline - time.monotonic()), self._text
        assert found, f"{pattern!r} never printed:\n{self._text}"
        return found

    def finish(self) -> tuple[int, str]:
        """The exit code and everything printed."""
        code = self.proc.wait(timeout=_WAIT_S)
        self._reader.join(_WAIT_S)
        os.close(self._master)
        assert not leakguard.found_in(self._text), "a known secret on the terminal"
        return code, self._text.rstrip("\0")


def _applied(run: Running) -> int:
    """Wait until the progress shows messages applied; how many it shows."""
    return int(run.wait_for(r": ([1-9]\d*) messages:").group(1))


def _many_changes(s3_server: SeaweedS3, bucket: str, count: int) -> list[bytes]:
    """``count`` real puts (some overwritten, some deleted), one record per message, each
    message sent ten times (a long stream, to be killed in the middle of), shuffled."""
    changes = Bucket(s3_client(s3_server), bucket)
    for index in range(count):
        changes.put(f"k/{index % 7}/o {index}", b"v" * (index % 5))
    for index in range(0, count, 9):
        changes.put(f"k/{index % 7}/o {index}", b"again")
    for index in range(0, count, 11):
        changes.delete(f"k/{index % 7}/o {index}")
    bodies = [as_message([one]) for one in changes.records] * 10
    random.Random(7).shuffle(bodies)
    return bodies


@pytest.mark.parametrize("broker", ["amqp", "nats"])
def test_sigkill_mid_stream_then_run_again(
    follow_cli: Cli,
    s3_server: SeaweedS3,
    bucket: str,
    broker: str,
    request: pytest.FixtureRequest,
) -> None:
    feed = _feed(request, broker)
    bodies = _many_changes(s3_server, bucket, 400)
    feed.publish(*bodies)
    # JetStream delivers what the killed run held again after AckWait: 3 s, not 30.
    source = feed.source + ("?ack_wait=3" if broker == "nats" else "")
    env = {"FILESPACE_FOLLOW_SOURCE": source}
    run = Running(follow_cli, "follow", "/f", "-s", "store", env=env)
    _applied(run)
    run.proc.kill()
    code, _ = run.finish()
    assert code == -signal.SIGKILL
    if isinstance(feed, AmqpQueue):  # the broker takes back what the dead consumer held
        until(lambda: feed.consumers() == 0, "RabbitMQ to drop the killed consumer")
    left = feed.depth()
    assert 0 < left < len(bodies), "killed after the stream had ended"

    doc = follow_cli.ok("follow", "/f", "-s", "store", "--once", "--json", env=env).json()
    assert doc["messages"] == left  # what the killed run had not acknowledged, exactly
    assert feed.depth() == 0
    assert doc["skipped"] == doc["errors"] == 0
    _in_step(follow_cli, s3_server, bucket)
    after = follow_cli.ok("follow", "/f", "-s", "store", "--once", "--json", env=env).json()
    assert after["messages"] == 0


def test_sigterm_stops_cleanly_with_the_summary(
    sqlite_cli: Cli, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    bodies = _many_changes(s3_server, bucket, 200)
    queue.publish(*bodies)
    env = {"FILESPACE_FOLLOW_SOURCE": queue.source}
    run = Running(sqlite_cli, "follow", "/f", "-s", "store", env=env)
    _applied(run)
    run.proc.send_signal(signal.SIGTERM)
    code, text = run.finish()
    assert code == 0, text
    summary = re.search(r"followed \S+ into /f: (\d+) messages: ", text)
    assert summary, text
    # The batches applied were acknowledged, the rest stay queued: none lost, none twice.
    assert int(summary.group(1)) + queue.depth() == len(bodies)
    sqlite_cli.ok("follow", "/f", "-s", "store", "--once", env=env)
    _in_step(sqlite_cli, s3_server, bucket)


def test_a_running_follow_says_it_started_and_stops_on_sigint(
    sqlite_cli: Cli, s3_server: SeaweedS3, bucket: str, queue: AmqpQueue
) -> None:
    env = {"FILESPACE_FOLLOW_SOURCE": queue.source}
    proc = subprocess.Popen(
        [FILESPACE or "filespace", "follow", "/f", "-s", "store", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**sqlite_cli.env, **env},
        cwd=sqlite_cli.home,
    )
    assert proc.stderr is not None
    started = proc.stderr.readline().decode()
    assert started == (
        f"following {queue.source.replace('guest:guest@', 'guest@')} into /f "
        "(SIGINT or SIGTERM stops)\n"
    )
    changes = Bucket(s3_client(s3_server), bucket)
    changes.put("one", b"1")
    queue.publish(as_message(changes.records))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=_WAIT_S)
    assert proc.returncode == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["messages"] + queue.depth() == 1
