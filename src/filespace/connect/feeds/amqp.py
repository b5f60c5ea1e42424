"""An AMQP 0-9-1 queue (RabbitMQ; MinIO's and Ceph RGW's AMQP targets publish to it), via ``pika``.

``amqp://user:password@host:port/vhost?queue=NAME``: the queue must exist
(bound to the exchange the bucket publishes to). Messages are taken with a
prefetch window and acknowledged together (``multiple``) once committed;
closing the channel hands back whatever was not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from filespace.connect.feeds.base import FeedError, Message
from filespace.redaction import passwords_of, public_location, without_secrets

PREFETCH = 2000
"""Messages the broker may send ahead of acknowledgements (room for a whole fetch, and the
next one arriving while the first is applied)."""

IDLE_S = 0.05
"""A pause this long between messages ends a fetch."""

GATHER_S = 0.1
"""A fetch ends this long after its first message, even while messages keep coming:
a steady stream is applied in batches every tenth of a second, not once one is full."""


class AmqpFeed:
    """One queue of one broker."""

    drains = True

    def __init__(self, source: str) -> None:
        parts = urlsplit(source)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        queue = options.pop("queue", "")
        if not queue:
            raise ValueError(f"{public_location(source)}: name the queue (?queue=NAME)")
        self.queue = queue
        self._url = urlunsplit(parts._replace(query=urlencode(options), fragment=""))
        self._public = public_location(source)
        self._secrets = passwords_of(source)
        self._connection: Any = None
        self._channel: Any = None
        self._stream: Any = None

    def __repr__(self) -> str:
        return f"AmqpFeed({self._public!r})"

    def _error(self, doing: str, exc: BaseException) -> FeedError:
        text = without_secrets(f"{type(exc).__name__}: {exc}".rstrip(": "), self._secrets)
        return FeedError(f"{doing} {self._public}: {text}")

    def connect(self) -> None:
        import pika
        import pika.exceptions

        self.close()
        try:
            parameters = pika.URLParameters(self._url)
            parameters.connection_attempts = 1
            parameters.socket_timeout = 10
            self._connection = pika.BlockingConnection(parameters)
            self._channel = self._connection.channel()
            self._channel.queue_declare(self.queue, passive=True)  # it must exist
            self._channel.basic_qos(prefetch_count=PREFETCH)
        except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
            self.close()
            raise self._error("cannot follow", exc) from None
        self._stream = self._channel.consume(self.queue, inactivity_timeout=IDLE_S)

    def fetch(self, limit: int, wait_s: float) -> list[Message]:
        import pika.exceptions

        found: list[Message] = []
        deadline = time.monotonic() + wait_s
        try:
            while len(found) < limit:
                method, _, body = next(self._stream)
                if method is None:  # nothing for IDLE_S: done, unless still waiting for a first
                    if found or time.monotonic() >= deadline:
                        break
                    continue
                found.append(Message(bytes(body), method.delivery_tag))
                if len(found) == 1:
                    deadline = time.monotonic() + GATHER_S
                elif time.monotonic() >= deadline:
                    break
        except (pika.exceptions.AMQPError, OSError, StopIteration) as exc:
            raise self._error("lost", exc) from None
        return found

    def ack(self, messages: Sequence[Message]) -> None:
        import pika.exceptions

        if not messages:
            return
        try:
            self._channel.basic_ack(max(m.tag for m in messages), multiple=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise self._error("lost", exc) from None

    def outstanding(self) -> int:
        return 0  # RabbitMQ requeues at once when a connection closes

    def queued(self) -> int | None:
        import pika.exceptions

        try:
            self._connection.process_data_events(time_limit=0)  # take in what has arrived
            received = self._channel.get_waiting_message_count()
            declared = self._channel.queue_declare(self.queue, passive=True)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise self._error("lost", exc) from None
        return int(received) + int(declared.method.message_count)

    def close(self) -> None:
        connection, self._connection, self._channel, self._stream = (
            self._connection,
            None,
            None,
            None,
        )
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # a broken connection: nothing to close
                connection.close()
