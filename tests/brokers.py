"""The brokers of the follow tests: RabbitMQ and NATS on this machine, or a skip saying why.

``FILESPACE_TEST_AMQP`` (default ``amqp://guest:guest@127.0.0.1:5672/%2F``) and
``FILESPACE_TEST_NATS`` (default ``nats://127.0.0.1:4222``) name them. Each test
gets its own queue or JetStream stream, removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

AMQP = os.environ.get("FILESPACE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
NATS = os.environ.get("FILESPACE_TEST_NATS", "nats://127.0.0.1:4222")


class AmqpQueue:
    """A fresh durable queue; ``publish`` puts message bodies on it."""

    def __init__(self) -> None:
        import pika

        try:
            self._connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        except Exception as exc:  # noqa: BLE001 - any failure to connect means: no broker here
            pytest.skip(f"no RabbitMQ at {AMQP.split('@')[-1]} ({type(exc).__name__}): start it")
        self.name = f"fs-{uuid.uuid4().hex[:10]}"
        self._channel = self._connection.channel()
        self._channel.queue_declare(self.name, durable=True)
        self.source = f"{AMQP}?queue={self.name}"

    def publish(self, *bodies: bytes) -> None:
        for body in bodies:
            self._channel.basic_publish("", self.name, body)

    def depth(self) -> int:
        return int(self._channel.queue_declare(self.name, passive=True).method.message_count)

    def close(self) -> None:
        self._channel.queue_delete(self.name)
        self._connection.close()


class NatsStream:
    """A fresh JetStream stream on a fresh subject; ``publish`` puts message bodies on it."""

    def __init__(self) -> None:
        self.subject = f"fs.{uuid.uuid4().hex[:10]}"
        self.stream = self.subject.replace(".", "-")
        self.source = f"{NATS}/{self.subject}"
        try:
            asyncio.run(self._add())
        except Exception as exc:  # noqa: BLE001 - any failure to connect means: no broker here
            pytest.skip(f"no NATS JetStream at {NATS} ({type(exc).__name__}: {exc}): start it")

    async def _add(self) -> None:
        import nats

        client = await nats.connect(NATS, connect_timeout=3, max_reconnect_attempts=0)
        await client.jetstream().add_stream(name=self.stream, subjects=[self.subject])
        await client.close()

    def publish(self, *bodies: bytes) -> None:
        async def send() -> None:
            import nats

            client = await nats.connect(NATS)
            js = client.jetstream()
            for body in bodies:
                await js.publish(self.subject, body)
            await client.close()

        asyncio.run(send())

    def depth(self, durable: str = "filespace") -> int:
        """Messages the follower's consumer has not had acknowledged (waiting or in flight)."""

        async def ask() -> int:
            import nats

            client = await nats.connect(NATS)
            info = await client.jetstream().consumer_info(self.stream, durable)
            await client.close()
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

        return asyncio.run(ask())

    def close(self) -> None:
        async def delete() -> None:
            import nats

            client = await nats.connect(NATS)
            await client.jetstream().delete_stream(self.stream)
            await client.close()

        asyncio.run(delete())


@pytest.fixture
def amqp_queue() -> Iterator[AmqpQueue]:
    queue = AmqpQueue()
    yield queue
    queue.close()


@pytest.fixture
def nats_stream() -> Iterator[NatsStream]:
    stream = NatsStream()
    yield stream
    stream.close()
