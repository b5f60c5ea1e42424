"""What every feed is and hands out (``Feed``, ``Message``), and how it fails (``FeedError``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from filespace.errors import FeedError

__all__ = ["Feed", "FeedError", "Message"]


class Message(NamedTuple):
    """One message: its body (an event document) and what acknowledging it needs."""

    body: bytes
    tag: Any


class Feed(Protocol):
    """A source of event documents."""

    drains: bool
    """Whether an empty ``fetch`` means nothing is queued (a webhook never knows)."""

    def connect(self) -> None:
        """Connect (again); ``FeedError`` if that fails."""

    def fetch(self, limit: int, wait_s: float) -> list[Message]:
        """Up to ``limit`` messages, waiting at most ``wait_s`` for the first one."""

    def ack(self, messages: Sequence[Message]) -> None:
        """Confirm ``messages``: their changes are committed."""

    def outstanding(self) -> int:
        """Messages delivered to a consumer that went away and not yet given back (0: none).

        A drain waits for them: a broker that hands them back only after a
        timeout (JetStream's AckWait) would otherwise end a drain without them.
        """

    def queued(self) -> int | None:
        """Messages waiting for this consumer, on the broker or received and not yet fetched.

        ``None`` where the feed cannot tell. A drain ends as soon as this is 0
        (and nothing is ``outstanding``) instead of waiting for an empty fetch.
        """

    def close(self) -> None:
        """Let go of the connection; what is unacknowledged comes back. Idempotent."""
