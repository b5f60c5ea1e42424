"""An Amazon SQS queue (AWS S3 event notifications go there), via ``boto3``.

``sqs://`` followed by the queue URL, with or without its ``https://``
(``sqs://sqs.eu-west-1.amazonaws.com/123456789012/bucket-events``). Credentials
and region come from boto3's usual chain (environment, config files, instance
role); the region is read from an ``sqs.REGION.amazonaws.com`` host when there
is one. Messages are long-polled, ten at a time (SQS's most), and deleted once
committed; one not deleted comes back after the queue's visibility timeout.

Not tested against a real SQS: no SQS-compatible server installs on the
machines the tests run on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from filespace.connect.feeds.base import FeedError, Message
from filespace.redaction import public_location

_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
MAX_BATCH = 10
"""SQS's limit of messages per receive and per delete."""


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

    def __repr__(self) -> str:
        return f"SqsFeed({self._public!r})"

    def _error(self, doing: str, exc: BaseException) -> FeedError:
        return FeedError(f"{doing} {self._public}: {type(exc).__name__}: {exc}")

    def connect(self) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client = boto3.client(
                "sqs", region_name=self._region, endpoint_url=self._endpoint
            )
            self._client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )
        except (BotoCoreError, ClientError) as exc:
            self._client = None
            raise self._error("cannot follow", exc) from None

    def fetch(self, limit: int, wait_s: float) -> list[Message]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[Message] = []
        wait = min(20, math.ceil(wait_s))  # whole seconds; 20 is SQS's longest poll
        try:
            while len(found) < limit:
                answer = self._client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(MAX_BATCH, limit - len(found)),
                    WaitTimeSeconds=0 if found else wait,
                )
                messages = answer.get("Messages", [])
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
        return 0  # in flight elsewhere is not told apart from other consumers' work

    def queued(self) -> int | None:
        return None  # SQS's counts are approximate: an empty receive decides

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
