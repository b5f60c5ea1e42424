"""An Amazon SQS queue (AWS S3 event notifications go there), via ``boto3``.

``sqs://`` followed by the queue URL, with or without its ``https://``
(``sqs://sqs.eu-west-1.amazonaws.com/123456789012/bucket-events``; another
SQS-compatible server: ``sqs://http://HOST:PORT/ACCOUNT/QUEUE``). Credentials
and region come from boto3's usual chain (environment, config files, instance
role); the region is read from an ``sqs.REGION.amazonaws.com`` host when there
is one. Messages are long-polled, ten at a time (SQS's most), and deleted once
committed; one not deleted comes back after the queue's visibility timeout.

A drain (``--once``) ends on an empty receive only when the queue also says
none are waiting (``ApproximateNumberOfMessages``) and none are in flight
(``ApproximateNumberOfMessagesNotVisible``: received and not deleted, say by a
killed run). It waits for in-flight ones at most one visibility timeout: by
then what a consumer that died held is visible again, and what is still in
flight belongs to a live consumer.

The tests run it against moto's standalone server (``tests/sqsserver.py``),
over HTTP with SigV4 checked, not against AWS itself.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any

from filespace.connect.feeds.base import FeedError, Message
from filespace.redaction import public_location

_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
MAX_BATCH = 10
"""SQS's limit of messages per receive and per delete."""

GATHER_S = 0.5
"""A fetch stops receiving this long after its first message: a batch is applied (and its
messages deleted) well within the shortest sensible visibility timeout."""

LONGEST_POLL_S = 20
"""SQS's longest long poll."""

_SLACK_S = 1.0
"""Added to the visibility timeout before in-flight messages stop holding a drain."""


class SqsFeed:
    """One SQS queue."""

    drains = True

    def __init__(self, source: str) -> None:
        rest = source.partition("://")[2]
        url = rest if rest.startswith(("https://", "http://")) else f"https://{rest}"
        host = url.partition("://")[2].partition("/")[0]
        if not host or not url.partition("://")[2].partition("/")[2]:
            raise ValueError(f"{public_location(source)}: not an SQS queue URL")
        found = _REGION.search(host)
        self.queue_url = url
        self._region = found.group(1) if found else None
        self._endpoint = None if found else url.partition(host)[0] + host
        self._public = public_location(source)
        self._client: Any = None
        self._visibility_s = 30.0
        self._held_since: float | None = None

    def __repr__(self) -> str:
        return f"SqsFeed({self._public!r})"

    def _error(self, doing: str, exc: BaseException) -> FeedError:
        return FeedError(f"{doing} {self._public}: {type(exc).__name__}: {exc}")

    def connect(self) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        self.close()
        config = Config(
            connect_timeout=5,
            read_timeout=LONGEST_POLL_S + 10,
            retries={"mode": "standard", "max_attempts": 3},
        )
        try:
            self._client = boto3.session.Session().client(
                "sqs", region_name=self._region, endpoint_url=self._endpoint, config=config
            )
            answer = self._client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )
            self._visibility_s = float(answer["Attributes"]["VisibilityTimeout"])
        except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
            self.close()
            raise self._error("cannot follow", exc) from None

    def fetch(self, limit: int, wait_s: float) -> list[Message]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[Message] = []
        wait = min(LONGEST_POLL_S, math.ceil(wait_s))  # whole seconds
        deadline = math.inf
        try:
            while len(found) < limit and time.monotonic() < deadline:
                answer = self._client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(MAX_BATCH, limit - len(found)),
                    WaitTimeSeconds=0 if found else wait,
                )
                messages = answer.get("Messages", [])
                if messages and not found:
                    deadline = time.monotonic() + GATHER_S
                found.extend(Message(m["Body"].encode(), m["ReceiptHandle"]) for m in messages)
                if len(messages) < MAX_BATCH:
                    break
        except (BotoCoreError, ClientError) as exc:
            raise self._error("lost", exc) from None
        return found

    def ack(self, messages: Sequence[Message]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for start in range(0, len(messages), MAX_BATCH):
                batch = messages[start : start + MAX_BATCH]
                # One that fails to delete comes back and is applied again: harmless.
                self._client.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(at), "ReceiptHandle": m.tag} for at, m in enumerate(batch)],
                )
        except (BotoCoreError, ClientError) as exc:
            raise self._error("lost", exc) from None

    def outstanding(self) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            found = self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
            waiting, held = (int(found["Attributes"][name]) for name in names)
        except (BotoCoreError, ClientError, KeyError, ValueError) as exc:
            raise self._error("lost", exc) from None
        now = time.monotonic()
        if held <= 0:
            self._held_since = None
        elif self._held_since is None:
            self._held_since = now
        elif now - self._held_since > self._visibility_s + _SLACK_S:
            held = 0  # still in flight after a visibility timeout: a live consumer's
        # Waiting ones too: some came back between the empty fetch and this question.
        return max(waiting, 0) + held

    def queued(self) -> int | None:
        return None  # SQS's counts are approximate: an empty receive decides

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
