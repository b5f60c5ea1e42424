"""The SQS server of the follow tests: moto's standalone server, as a separate process.

No SQS server that is a product of its own (ElasticMQ, LocalStack's) installs
here from the package registries; moto does (PyPI, the ``dev`` extra), and its
``moto.server`` serves the SQS API over HTTP the way AWS does: queue URLs,
receipt handles, long polling, visibility timeouts. With its authentication
turned on (``/moto-api/reset-auth``) it checks every request's SigV4 signature
against the IAM users made at start and their policies, so the follower talks
to it with boto3 exactly as to AWS: an endpoint URL, credentials from the
environment, signed requests.

Its limits (what AWS does and it does not): one process, state in memory;
queue attributes are exact where AWS's ``Approximate*`` counts lag; no
S3 → SQS delivery of its own (the tests send the documents S3 sends).

Identities: ``admin`` (every SQS action: the tests make queues and send), and
``follower`` (only what docs/following.md says a follower needs:
``sqs:ReceiveMessage``, ``sqs:DeleteMessage``, ``sqs:GetQueueAttributes``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import pytest

from tests import leakguard
from tests.waiting import until

REGION = "us-east-1"
FOLLOWER_ACTIONS = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:DeleteMessageBatch",  # moto's name for it; AWS authorizes it as sqs:DeleteMessage
]


class Identity(NamedTuple):
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The environment that makes boto3 sign as this identity."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class SqsServer:
    """``python -m moto.server`` on a free loopback port, SigV4 and IAM checked."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log_path = workdir / "moto.log"
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin = self.follower = Identity("", "")

    def start(self) -> None:
        self._log = open(self._log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        until(lambda: self._alive() and _answers(self.port), "moto's server to listen")
        self.admin = self._identity("admin", ["sqs:*"])
        self.follower = self._identity("follower", FOLLOWER_ACTIONS)
        request = urllib.request.Request(  # noqa: S310 - http, loopback
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - http, loopback
            assert answer.status == 200
        leakguard.remember(self.admin.secret_key, self.follower.secret_key)

    def _alive(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            pytest.fail(f"moto's server exited:\n{self._log_path.read_text(errors='replace')}")
        return True

    def _identity(self, name: str, actions: list[str]) -> Identity:
        """An IAM user allowed ``actions``, with a new access key (made while auth is off)."""
        iam = self._client("iam", Identity("setup", secrets.token_hex(20)))
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Identity(key["AccessKeyId"], key["SecretAccessKey"])

    def _client(self, service: str, who: Identity) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=who.access_key or "setup",
            aws_secret_access_key=who.secret_key,
        )

    def client(self, who: Identity | None = None) -> Any:
        """An SQS client signing as ``who`` (the admin by default)."""
        return self._client("sqs", who or self.admin)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()


class SqsQueue:
    """A fresh queue; ``publish`` sends message bodies as S3 would (the admin signs)."""

    def __init__(self, server: SqsServer, visibility_s: int) -> None:
        self._sqs = server.client()
        self.name = f"fs-{uuid.uuid4().hex[:10]}"
        self.url = self._sqs.create_queue(
            QueueName=self.name, Attributes={"VisibilityTimeout": str(visibility_s)}
        )["QueueUrl"]
        self.source = f"sqs://{self.url}"

    def set_visibility(self, seconds: int) -> None:
        self._sqs.set_queue_attributes(
            QueueUrl=self.url, Attributes={"VisibilityTimeout": str(seconds)}
        )

    def publish(self, *bodies: bytes) -> None:
        for at in range(0, len(bodies), 10):
            batch = bodies[at : at + 10]
            entries = [{"Id": str(i), "MessageBody": b.decode()} for i, b in enumerate(batch)]
            answer = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            assert not answer.get("Failed"), answer["Failed"]

    def counts(self) -> tuple[int, int]:
        """Messages (waiting, in flight: received and not deleted)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        return int(found["Attributes"][names[0]]), int(found["Attributes"][names[1]])

    def depth(self) -> int:
        """Messages not yet deleted (waiting or in flight)."""
        return sum(self.counts())

    def close(self) -> None:
        self._sqs.delete_queue(QueueUrl=self.url)
        self._sqs.close()


@pytest.fixture(scope="session")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsServer]:
    server = SqsServer(tmp_path_factory.mktemp("moto"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def sqs_queue(sqs_server: SqsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqsQueue]:
    """A fresh queue (visibility timeout 1 s); boto3 in this process signs as the follower."""
    for name, value in sqs_server.follower.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    queue = SqsQueue(sqs_server, visibility_s=1)
    yield queue
    queue.close()
