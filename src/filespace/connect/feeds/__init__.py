"""Where a follower's event documents come from: queues and a webhook listener, one module each.

Every feed is a ``Feed``: ``fetch`` hands out what has arrived (waiting a
little for the first message), ``ack`` confirms messages once the change they
carry is committed, ``close`` lets go. A message fetched and never acknowledged
comes back (the broker redelivers it, the webhook sender is answered with an
error and sends it again): that is what makes following at-least-once.
Broker clients (``pika``, ``nats-py``, ``boto3``) are imported when a feed of
theirs is opened, never by ``import filespace``.
"""

from __future__ import annotations

from collections.abc import Callable

from filespace.connect.feeds.base import Feed, FeedError, Message
from filespace.redaction import public_location

__all__ = ["Feed", "FeedError", "Message", "check_source", "open_feed"]

SCHEMES = ("amqp", "amqps", "nats", "tls", "sqs", "http")


def check_source(source: object) -> str:
    """``source`` if it is a feed URL this build knows; ``ValueError`` (no password) if not."""
    if not isinstance(source, str):
        raise ValueError(f"source must be a URL string, not {type(source).__name__}")
    scheme = source.partition("://")[0].lower()
    if "://" not in source or scheme not in SCHEMES:
        raise ValueError(
            f"source {public_location(source)!r} is not amqp://, nats://, sqs:// or http:// "
            "(a webhook listener)"
        )
    return source


def open_feed(source: str, token: Callable[[], str | None]) -> Feed:
    """The feed for ``source`` (checked by ``check_source``), not yet connected.

    ``token`` gives the webhook's bearer token (read when a listener starts).
    """
    scheme = source.partition("://")[0].lower()
    if scheme in ("amqp", "amqps"):
        from filespace.connect.feeds.amqp import AmqpFeed

        return AmqpFeed(source)
    if scheme in ("nats", "tls"):
        from filespace.connect.feeds.nats import NatsFeed

        return NatsFeed(source)
    if scheme == "sqs":
        from filespace.connect.feeds.sqs import SqsFeed

        return SqsFeed(source)
    from filespace.connect.feeds.webhook import WebhookFeed

    return WebhookFeed(source, token)
