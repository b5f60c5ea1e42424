"""A NATS subject (MinIO's and Ceph RGW's NATS targets publish to it), via ``nats-py``.

``nats://[user:password@]host:port/SUBJECT[?durable=NAME&ack_wait=SECONDS]``.
When a JetStream stream captures the subject, a durable pull consumer
(``durable``, default ``filespace``) reads it: messages are kept until
acknowledged, so a follower that was down, or killed mid-batch, gets them
again, once the consumer's AckWait has passed (``ack_wait``, default 30 s, set
when the consumer is made; an existing consumer keeps its own). A drain
(``--once``) waits for such messages (``outstanding``). Otherwise the subject is
read with core NATS, which keeps nothing: what is published while no follower
listens, or is in flight when one dies, is lost, and only a reconcile
(``reconcile_every``) brings those changes in. Use JetStream (MinIO's
``jetstream`` option) where that matters.

``nats-py`` is asynchronous: the feed runs its own event loop, driven from the
follower's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from filespace.connect.feeds.base import FeedError, Message
from filespace.redaction import passwords_of, public_location, without_secrets

ACK_WAIT_S = 30.0
"""How long JetStream waits for an acknowledgement before delivering again (its default)."""
MAX_ACK_WAIT_S = 86400.0


class NatsFeed:
    """One subject of one NATS server."""

    drains = True

    def __init__(self, source: str) -> None:
        parts = urlsplit(source)
        subject = unquote(parts.path.lstrip("/"))
        if not subject or " " in subject:
            raise ValueError(
                f"{public_location(source)}: name the subject (nats://host:port/SUBJECT)"
            )
        options = dict(parse_qsl(parts.query))
        self.subject = subject
        self.durable = options.get("durable", "filespace")
        try:
            self.ack_wait = float(options.get("ack_wait", ACK_WAIT_S))
        except ValueError:
            self.ack_wait = -1.0
        if not 0 < self.ack_wait <= MAX_ACK_WAIT_S:
            raise ValueError(
                f"{public_location(source)}: ack_wait must be seconds > 0 and <= {MAX_ACK_WAIT_S:g}"
            )
        self._server = urlunsplit(parts._replace(path="", query="", fragment=""))
        self._public = public_location(source)
        self._secrets = passwords_of(source)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._pull: Any = None
        self._core: Any = None

    def __repr__(self) -> str:
        return f"NatsFeed({self._public!r})"

    @property
    def durable_stream(self) -> bool:
        """Whether a JetStream stream keeps the messages (known once connected)."""
        return self._pull is not None

    def _run(self, work: Any) -> Any:
        assert self._loop is not None
        return self._loop.run_until_complete(work)

    def _error(self, doing: str, exc: BaseException) -> FeedError:
        text = without_secrets(f"{type(exc).__name__}: {exc}".rstrip(": "), self._secrets)
        return FeedError(f"{doing} {self._public}: {text}")

    def connect(self) -> None:
        self.close()
        self._loop = asyncio.new_event_loop()
        try:
            self._run(self._connect())
        except Exception as exc:  # noqa: BLE001 - nats-py raises many kinds; all mean "cannot"
            self.close()
            raise self._error("cannot follow", exc) from None

    async def _connect(self) -> None:
        import nats
        from nats.js.api import ConsumerConfig
        from nats.js.errors import NotFoundError

        self._client = await nats.connect(
            self._server, connect_timeout=5, max_reconnect_attempts=0, allow_reconnect=False
        )
        js = self._client.jetstream()
        try:
            stream = await js.find_stream_name_by_subject(self.subject)
        except NotFoundError:
            stream = None
        if stream is not None:
            config = ConsumerConfig(ack_wait=self.ack_wait)
            self._pull = await js.pull_subscribe(
                self.subject, durable=self.durable, stream=stream, config=config
            )
        else:
            self._core = await self._client.subscribe(self.subject)

    def fetch(self, limit: int, wait_s: float) -> list[Message]:
        try:
            return list(self._run(self._fetch(limit, wait_s)))
        except Exception as exc:  # noqa: BLE001
            raise self._error("lost", exc) from None

    async def _fetch(self, limit: int, wait_s: float) -> list[Message]:
        import nats.errors

        found: list[Message] = []
        if self._pull is not None:
            try:
                batch = await self._pull.fetch(limit, timeout=max(wait_s, 0.05))
            except nats.errors.TimeoutError:
                return found
            return [Message(bytes(msg.data), msg) for msg in batch]
        while len(found) < limit:
            try:
                msg = await self._core.next_msg(timeout=wait_s if not found else 0.01)
            except nats.errors.TimeoutError:
                break
            found.append(Message(bytes(msg.data), None))
        return found

    def ack(self, messages: Sequence[Message]) -> None:
        if self._pull is None or not messages:
            return  # core NATS has nothing to acknowledge

        async def ack_all() -> None:
            for message in messages:
                await message.tag.ack()
            await self._client.flush()  # the acks are with the server before we go on

        try:
            self._run(ack_all())
        except Exception as exc:  # noqa: BLE001
            raise self._error("lost", exc) from None

    def outstanding(self) -> int:
        if self._pull is None:
            return 0  # core NATS keeps nothing to give back
        return int(self._consumer_info().num_ack_pending or 0)

    def queued(self) -> int | None:
        if self._pull is None:
            return None  # core NATS: what is on its way is not counted anywhere
        return int(self._consumer_info().num_pending or 0)

    def _consumer_info(self) -> Any:
        """The JetStream consumer's counts, as the server has them now."""
        try:
            return self._run(self._pull.consumer_info())
        except Exception as exc:  # noqa: BLE001
            raise self._error("lost", exc) from None

    def close(self) -> None:
        loop, client = self._loop, self._client
        self._loop = self._client = self._pull = self._core = None
        if loop is None:
            return
        try:
            if client is not None:
                loop.run_until_complete(client.close())
        except Exception:  # noqa: BLE001, S110 - closing a broken connection: nothing to do
            pass
        finally:
            loop.close()
