"""The brokers of the follow tests: RabbitMQ and NATS on this machine, or a skip saying why.

``FILESPACE_TEST_AMQP`` (default ``amqp://guest:guest@127.0.0.1:5672/%2F``) and
``FILESPACE_TEST_NATS`` (default ``nats://127.0.0.1:4222``) name them. Each test
gets its own queue or JetStream stream, removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from tests import requirements

AMQP = os.environ.get("FILESPACE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
NATS = os.environ.get("FILESPACE_TEST_NATS", "nats://127.0.0.1:4222")


class AmqpQueue:
    """A fresh durable queue; ``publish`` puts message bodies on it."""

    def __init__(self) -> None:
        import pika

        try:
            self._connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        except Exception as exc:  # noqa: BLE001 - any failure to connect means: no broker here
            requirements.skip(
                "rabbitmq", f"no RabbitMQ at {AMQP.split('@')[-1]} ({type(exc).__name__}): start it"
            )
        self.name = f"fs-{uuid.uuid4().hex[:10]}"
        self._channel = self._connection.channel()
        self._channel.queue_declare(self.name, durable=True)
        self.source = f"{AMQP}?queue={self.name}"

    def publish(self, *bodies: bytes) -> None:
        for body in bodies:
            self._channel.basic_publish("", self.name, body)

    def depth(self) -> int:
        return int(self._channel.queue_declare(self.name, passive=True).method.message_count)

    def consumers(self) -> int:
        """Consumers the broker still counts: once a killed one is gone, what it held is back."""
        return int(self._channel.queue_declare(self.name, passive=True).method.consumer_count)

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
            requirements.skip(
                "nats", f"no NATS JetStream at {NATS} ({type(exc).__name__}: {exc}): start it"
            )

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


class Cuttable:
    """A loopback TCP relay to a broker whose connections the test can cut (``cut``).

    A cut closes both sides of every connection relayed so far, as a broker
    restart or a network failure would; new connections are relayed as before.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
                self.connections += 1
            for one, other in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(one, other), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            doomed, self._open = self._open, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
