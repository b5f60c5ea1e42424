"""``connect.apply_events``: S3 event notifications applied to a directory the way ``mirror`` would.

A document is the JSON S3 sends (``{"Records": [...]}``; MinIO and Ceph RGW send
the same records), as a dict or as JSON text; the envelopes it arrives in are
opened too: an SNS notification (``{"Type": "Notification", "Message": ...}``)
and the records a function receives from SQS (``"body"``) or SNS (``"Sns"``).
Each record is read into an ``Event`` (``parse_records``); its key is
URL-decoded (``+`` is a space) and mapped to a path by ``mirror``'s rules. The
events are applied in batches of up to ``BATCH_SIZE`` keys, each one engine
transaction (``Engine.apply_events``), which orders them per key by sequencer:
of several events for one key in a batch only the latest is sent, the others
are stale.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from filespace import paths
from filespace.connect import mirror as mirroring
from filespace.connect import validation as check
from filespace.connect.models import SkippedKey, SyncReport
from filespace.meta.engine import Engine
from filespace.meta.errors import engine_errors
from filespace.meta.records import EventRow, StoreRecord
from filespace.resolver import Resolver

BATCH_SIZE = 2000
"""Keys per transaction."""

MAX_SEQUENCER = 64
"""Hex digits a sequencer may have (S3's have 16 to 18)."""

_HEX = re.compile(r"[0-9A-Fa-f]{1,64}")
_EXPIRATIONS = frozenset(
    {
        "LifecycleExpiration:Delete",
        "LifecycleExpiration:DeleteMarkerCreated",
        "ObjectLifecycle:Expiration:Current",  # Ceph RGW's
    }
)
"""Lifecycle event names (less any ``s3:``) saying the current object is gone. Every
``ObjectRemoved:*`` says so too; every other kind but ``ObjectCreated:*`` changes no
object's key, size or ETag (restores, tagging, ACLs, replication, tiering, transitions,
Ceph's non-current expirations) and is ignored."""


class Event(NamedTuple):
    """One record of an event document, read (a tuple: thousands are made per batch)."""

    bucket: str
    key: str
    removed: bool
    size: int
    etag: str
    sequencer: str
    """Normalized: lowercase hex without leading zeros; ``""`` if the record had none."""
    problem: str = ""
    """Why the key cannot be used (then ``key`` is the key as sent)."""


Outcome = Event | str | None
"""An event, what is wrong with a record (``str``), or ``None``: a record to ignore."""


def documents(events: object) -> Iterator[Any]:
    """The documents of ``events``: one document (dict, str, bytes) or an iterable of them.

    ``TypeError`` at once (before anything is applied) for anything else.
    """
    if isinstance(events, dict | str | bytes | bytearray | memoryview):
        return iter([events])
    if not isinstance(events, Iterable):
        raise TypeError(
            f"events must be an event document or an iterable of them, not {type(events).__name__}"
        )
    return iter(events)


def parse_records(document: object) -> Iterator[Outcome]:
    """Every record of one document (envelopes opened), read."""
    if isinstance(document, bytes | bytearray | memoryview):
        try:
            document = bytes(document).decode()
        except UnicodeDecodeError:
            yield "a document that is not UTF-8 text"
            return
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:  # RecursionError is a RuntimeError: deep nesting
            yield f"a document that is not JSON: {exc}"[:200]
            return
        except RecursionError:
            yield "a document nested too deeply"
            return
    if not isinstance(document, dict):
        yield f"a document that is not a JSON object ({type(document).__name__})"
        return
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        yield from parse_records(document["Message"])  # SNS, as SNS -> SQS delivers it
        return
    records = document.get("Records")
    if records is None:
        # A test message (AWS's s3:TestEvent, MinIO's and Ceph's checks): no change.
        yield None
        return
    if not isinstance(records, list):
        yield "Records is not a list"
        return
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("body"), str):
            yield from parse_records(record["body"])  # a function's SQS batch
        elif isinstance(record, dict) and isinstance(record.get("Sns"), dict):
            yield from parse_records(record["Sns"].get("Message"))  # a function's SNS batch
        else:
            yield read_record(record)


def read_record(record: object) -> Outcome:
    """One S3 event record as an ``Event``; ``None`` for an event that changes no object."""
    if not isinstance(record, dict):
        return "a record that is not a JSON object"
    name = record.get("eventName")
    s3 = record.get("s3")
    if not isinstance(name, str) or not isinstance(s3, dict):
        return "a record without eventName and s3"
    name = name.removeprefix("s3:")
    removed = name.startswith("ObjectRemoved:") or name in _EXPIRATIONS
    if not removed and not name.startswith("ObjectCreated:"):
        return None
    bucket, item = s3.get("bucket"), s3.get("object")
    if not isinstance(bucket, dict) or not isinstance(item, dict):
        return f"a {name} record without s3.bucket and s3.object"
    bucket_name, raw_key = bucket.get("name"), item.get("key")
    if not isinstance(bucket_name, str) or not isinstance(raw_key, str) or not raw_key:
        return f"a {name} record without bucket name and object key"
    sequencer = item.get("sequencer", "")
    if not isinstance(sequencer, str) or (sequencer and not _HEX.fullmatch(sequencer)):
        return f"a {name} record whose sequencer is not hex of at most {MAX_SEQUENCER} digits"
    sequencer = sequencer.lower().lstrip("0") or ("0" if sequencer else "")
    problem = ""
    try:
        key = check.object_key(unquote_plus(raw_key, errors="strict"))
    except UnicodeDecodeError:
        key, problem = raw_key, "key is not URL-encoded UTF-8"
    except ValueError as exc:
        key, problem = raw_key, str(exc)
    size, etag = 0, ""
    if not removed:
        size_found, etag_found = item.get("size"), item.get("eTag", item.get("etag"))
        if isinstance(size_found, str) and size_found.isdigit():
            size_found = int(size_found)  # Ceph RGW sends the size as text
        if isinstance(size_found, bool) or not isinstance(size_found, int) or size_found < 0:
            return f"a {name} record without a size"
        if not isinstance(etag_found, str) or not etag_found.strip('"'):
            return f"a {name} record without an eTag"
        size, etag = size_found, etag_found.strip('"')
    return Event(bucket_name, key, removed, size, etag, sequencer, problem)


class Applier:
    """Applies events of one store to one directory, batch by batch."""

    def __init__(
        self,
        engine: Engine,
        resolver: Resolver,
        store: StoreRecord,
        prefix: str,
        dest_dir: str,
        *,
        strip_prefix: bool,
    ) -> None:
        mirroring.check_prefix(prefix)
        if not isinstance(strip_prefix, bool):
            raise ValueError("strip_prefix must be a bool")
        self._engine = engine
        self._store = store
        self._prefix = prefix
        self._dest = paths.normalize(dest_dir)
        self._strip = mirroring.strip_length(prefix) if strip_prefix else 0
        self._room = mirroring.room_below(self._dest)
        base_id = mirroring.destination(engine, resolver, self._dest, dry_run=False)
        assert base_id is not None  # made if missing (not a dry run)
        self._base_id = base_id

    def apply(self, outcomes: Iterable[Outcome]) -> SyncReport:
        """Apply read records; committed batch by batch (a failure keeps the batches before)."""
        report = SyncReport()
        latest: dict[str, Event] = {}
        for outcome in outcomes:
            if outcome is None:
                report.ignored += 1
            elif isinstance(outcome, str):
                report.errors.append(outcome)
            elif outcome.bucket != self._store.bucket or not outcome.key.startswith(self._prefix):
                report.ignored += 1
            else:
                held = latest.get(outcome.key)
                if held is None and len(latest) >= BATCH_SIZE:
                    self._flush(latest, report)
                if held is not None:
                    report.stale += 1  # one of the two is superseded
                    if _order(outcome) <= _order(held):
                        continue
                latest[outcome.key] = outcome
        self._flush(latest, report)
        return report

    def _flush(self, latest: dict[str, Event], report: SyncReport) -> None:
        rows: list[EventRow] = []
        for event in latest.values():
            row = self._row(event, report)
            if row is not None:
                rows.append(row)
        latest.clear()
        if not rows:
            return
        with engine_errors(path=self._dest, store=self._store.name):
            counts = self._engine.apply_events(self._store.id, self._base_id, rows, time.time_ns())
        report.added += counts.added
        report.updated += counts.updated
        report.removed += counts.removed
        report.unchanged += counts.unchanged
        report.stale += counts.stale
        report.skipped.extend(SkippedKey(rows[i].object_key, why) for i, why in counts.skipped)

    def _row(self, event: Event, report: SyncReport) -> EventRow | None:
        """The engine row of an event, or ``None`` (counted) if it has no path."""
        if event.problem:
            report.skipped.append(SkippedKey(event.key, event.problem))
            return None
        rel, reason = mirroring.relative_path(
            event.key, 0 if event.removed else event.size, self._strip, self._room
        )
        if rel is None:
            if reason and not event.removed:
                report.skipped.append(SkippedKey(event.key, reason))
            else:
                report.ignored += 1  # a directory marker; or nothing could be linked there
            return None
        etag = event.etag
        if not event.removed:
            try:
                etag = check.checksum(etag)
            except ValueError as exc:
                report.errors.append(f"{event.key!r}: {exc}"[:300])
                return None
        directory, _, name = rel.rpartition("/")
        return EventRow(
            directory, name, event.key, event.size, etag, event.sequencer, event.removed
        )


def _order(event: Event) -> tuple[int, str]:
    return len(event.sequencer), event.sequencer
