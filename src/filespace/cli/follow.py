"""``filespace follow``: keep a directory in step with a bucket's event notifications.

The work is ``fsp.connect.follow`` (API.md §8); this module parses, shows
progress on a terminal, stops cleanly on SIGINT/SIGTERM and prints the summary.
A first signal asks the follower to stop after the batch in hand is committed
and acknowledged (a batch not yet fetched stays with the broker); a second one
interrupts at once, leaving the batch unacknowledged, so it is delivered again.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import typer

import filespace
from filespace import Follower, FollowStats
from filespace.cli import context, output
from filespace.cli.context import fs_path
from filespace.cli.errors import MIN_MASKED_LENGTH, register_secret
from filespace.cli.params import JsonOpt, NoStripPrefixOpt, PrefixOpt, StoreOpt

SOURCE_ENV = "FILESPACE_FOLLOW_SOURCE"
_SHOWN = 20


def _counts(stats: FollowStats) -> str:
    report = stats.report
    text = (
        f"{stats.messages} messages: {report.added} added, {report.updated} updated, "
        f"{report.removed} removed, {report.unchanged} unchanged, {report.stale} stale, "
        f"{report.ignored} ignored, {stats.skipped} skipped, {stats.errors} errors"
    )
    if stats.reconciles:
        text += f"; {stats.reconciles} reconciles ({stats.reconciled} changes)"
    if stats.reconnects:
        text += f"; {stats.reconnects} reconnects"
    return text


def _doc(stats: FollowStats, source: str, store: str, prefix: str, target: str) -> dict[str, Any]:
    report = stats.report
    return {
        "source": source,
        "store": store,
        "prefix": prefix,
        "directory": target,
        "messages": stats.messages,
        "added": report.added,
        "updated": report.updated,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "stale": report.stale,
        "ignored": report.ignored,
        "skipped": stats.skipped,
        "errors": stats.errors,
        "reconciles": stats.reconciles,
        "reconciled": stats.reconciled,
        "reconnects": stats.reconnects,
        "last_problem": stats.last_problem,
        "skipped_keys": [{"key": s.object_id, "reason": s.reason} for s in report.skipped],
        "error_messages": list(report.errors),
    }


class _Watch:
    """The progress callback: a bar on a terminal, notes on stderr for a daemon's log."""

    def __init__(self, bar: output.Bar, label: str, *, once: bool) -> None:
        self._bar = bar
        self._label = label
        self._once = once
        self._started = False
        self._problem = ""
        self._reconnects = 0

    def __call__(self, stats: FollowStats) -> None:
        if not self._started:
            self._started = True
            if not self._once and not output.is_terminal():
                output.note(f"{self._label} (SIGINT or SIGTERM stops)")
        if stats.reconnects > self._reconnects:
            self._reconnects = stats.reconnects
            self._problem = ""
            output.note(f"{self._label}: connected again")
        elif stats.last_problem and stats.last_problem != self._problem:
            self._problem = stats.last_problem
            output.warn(f"{stats.last_problem}; retrying")
        self._bar.update(description=f"{self._label}: {_counts(stats)}")


@contextmanager
def _stopped_by_signals(follower: Follower) -> Iterator[list[int]]:
    """SIGINT and SIGTERM stop ``follower`` cleanly; a second one interrupts at once."""
    caught: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum: int, frame: FrameType | None) -> None:
        if caught:
            raise KeyboardInterrupt  # the batch in hand stays unacknowledged
        caught.append(signum)
        follower.stop()

    for sig in previous:
        signal.signal(sig, stop)
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def follow(
    ctx: typer.Context,
    directory: Annotated[str, typer.Argument(help="The directory to keep in step.")],
    store: StoreOpt,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            metavar="URL",
            envvar=SOURCE_ENV,
            show_envvar=True,
            help="Where the events come from: amqp://, nats://, sqs:// or http:// (a webhook "
            "listener); see docs/following.md. A password in it is visible to other users "
            f"of the machine: prefer {SOURCE_ENV}.",
        ),
    ],
    prefix: PrefixOpt = "",
    no_strip_prefix: NoStripPrefixOpt = False,
    reconcile_every: Annotated[
        float | None,
        typer.Option(
            "--reconcile-every",
            metavar="SECONDS",
            min=0.001,
            help="Also mirror the prefix this often, catching events never delivered.",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Apply what is queued now, then exit.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Apply a bucket's event notifications to DIR as they arrive (mirror's rules)."""
    target = fs_path(directory)
    password = _password(source)
    # The library's messages never carry it; this masks it in whatever else is printed
    # (a short one is not registered: that would withhold every line, see errors.redact).
    if password and len(password) >= MIN_MASKED_LENGTH:
        register_secret(password)
    shown = filespace.public_location(source)
    given = ctx.get_parameter_source("source")
    if password and getattr(given, "name", "") == "COMMANDLINE":  # not from the environment
        output.warn(f"a password in --source is visible to other users; set {SOURCE_ENV}")
    with context.opened(ctx) as fsp:
        label = f"following {shown} into {target}"
        with output.progress(label) as bar:
            watch = _Watch(bar, label, once=once)
            follower = fsp.connect.follow(
                source,
                data_store_name=store,
                prefix=prefix,
                dest_dir=target,
                strip_prefix=not no_strip_prefix,
                reconcile_every=reconcile_every,
                progress=watch,
            )
            with _stopped_by_signals(follower):
                stats = follower.run(until="drained" if once else None)
    if context.wants_json(ctx, json_):
        output.emit_json(_doc(stats, shown, store, prefix, target))
        return
    output.say(f"followed {shown} into {target}: {_counts(stats)}")
    for skipped in stats.report.skipped[:_SHOWN]:
        output.say(f"  skipped {skipped.object_id!r}: {skipped.reason}")
    for error in stats.report.errors[:_SHOWN]:
        output.say(f"  error: {error}")
    more = stats.skipped + stats.errors - min(stats.skipped, _SHOWN) - min(stats.errors, _SHOWN)
    if more > 0:
        output.say(f"  ... and {more} more (--json lists the last 100)")
    sys.stdout.flush()


def _password(source: str) -> str:
    """The password in a source URL's user part ("" if none, or not a URL)."""
    try:
        found = urlsplit(source).password
    except ValueError:
        return ""
    return unquote(found) if found else ""


def register(app: typer.Typer) -> None:
    """Add ``follow`` to ``app``."""
    app.command("follow")(follow)
