"""``connect.apply_events``: S3 event notifications applied as ``mirror`` would, on real S3."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import filespace
from filespace import Filespace, SkippedKey, SyncReport
from filespace.connect import events as notifications
from filespace.testing import SeaweedS3
from tests.bucket_events import Bucket, document, record
from tests.test_link_files import s3_client
from tests.test_mirror import bucket_links, links_under


def counts(report: SyncReport) -> dict[str, int]:
    return {
        name: value
        for name in ("added", "updated", "removed", "unchanged", "ignored", "stale")
        if (value := getattr(report, name))
    }


def apply(fsp: Filespace, events: Any, dest: str = "/f", prefix: str = "") -> SyncReport:
    return fsp.connect.apply_events(events, data_store_name="store", prefix=prefix, dest_dir=dest)


KEYS = ["plain.txt", "with space/a b.txt", "plus+sign/c+d", "données/é→ü.bin", "deep/x/y/z"]


def test_creates_overwrites_and_deletes(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_client(s3_server)
    changes = Bucket(s3, bucket)
    made = [changes.put(key, f"one {key}".encode()) for key in KEYS]
    assert made[1]["s3"]["object"]["key"] == "with+space/a+b.txt"
    assert made[2]["s3"]["object"]["key"] == "plus%2Bsign/c%2Bd"
    before = connected.fs.get_statistics()

    report = apply(connected, document(*made))
    assert counts(report) == {"added": 5} and report.skipped == [] and report.errors == []
    assert links_under(connected, "/f") == bucket_links(s3, bucket, "", strip=0)
    assert connected.fs.read_file("/f/plus+sign/c+d") == b"one plus+sign/c+d"
    assert connected.fs.read_file("/f/données/é→ü.bin") == "one données/é→ü.bin".encode()
    stats = connected.fs.get_statistics()
    assert stats.external_files_count - before.external_files_count == 5

    rewrite = changes.put("plain.txt", b"two, longer")
    gone = changes.delete("with space/a b.txt")
    again = apply(connected, json.dumps(document(rewrite, gone)))  # JSON text too
    assert counts(again) == {"updated": 1, "removed": 1}
    assert links_under(connected, "/f") == bucket_links(s3, bucket, "", strip=0)
    assert connected.fs.read_file("/f/plain.txt") == b"two, longer"
    assert connected.connect.count_external_files("store") == 4

    # Delivered again, in any order: nothing changes.
    replay = list(changes.records)
    random.Random(7).shuffle(replay)
    stale = apply(connected, [json.dumps(document(one)).encode() for one in replay])
    assert counts(stale) == {"stale": 7}
    assert links_under(connected, "/f") == bucket_links(s3, bucket, "", strip=0)


def test_a_delete_delivered_first_refuses_the_older_create(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    create = changes.put("k", b"x")
    remove = changes.delete("k")
    assert counts(apply(connected, document(remove))) == {"unchanged": 1}
    assert counts(apply(connected, document(create))) == {"stale": 1}
    assert links_under(connected, "/f") == {}
    # The same key created again later is applied, and replaces the tombstone.
    later = changes.put("k", b"again")
    assert counts(apply(connected, document(later, create, remove))) == {"added": 1, "stale": 2}
    assert connected.fs.read_file("/f/k") == b"again"
    assert counts(apply(connected, document(remove))) == {"stale": 1}


def test_within_one_call_the_latest_event_of_a_key_wins(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    first = changes.put("k", b"1")
    second = changes.put("k", b"22")
    report = apply(connected, document(second, first, second))
    assert counts(report) == {"added": 1, "stale": 2}
    assert connected.fs.read_file("/f/k") == b"22"


def test_sequencers_compare_by_value_not_text(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_client(s3_server)
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["ETag"].strip('"')
    newer = record(bucket, "k", 0, size=1, etag=etag)
    newer["s3"]["object"]["sequencer"] = "0A0"  # 160, sorts before "9F" as text
    older = record(bucket, "k", 0)
    older["s3"]["object"]["sequencer"] = "9f"  # 159: a removal older than the creation
    assert counts(apply(connected, document(newer))) == {"added": 1}
    assert counts(apply(connected, document(older))) == {"stale": 1}
    assert links_under(connected, "/f") == bucket_links(s3, bucket, "", strip=0)


def test_ignored_skipped_and_errors(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    inside = changes.put("in/ok", b"1")
    outside = changes.put("out/no", b"2")
    # Keys SeaweedFS refuses but other servers keep: records only.
    dotdot = record(bucket, "in/../x", 3, size=1, etag="abc")
    empty = record(bucket, "in/a//b", 4, size=1, etag="abc")
    marker = changes.put("in/dir/", b"")
    other = record("another-bucket", "in/x", 5, size=1, etag="abc")
    accessed = record(bucket, "in/ok", 6, size=1, etag="abc", name="s3:ObjectAccessed:Get")
    no_size = record(bucket, "in/y", 7)
    no_size["eventName"] = "ObjectCreated:Put"
    bad_hex = record(bucket, "in/z", 8)
    bad_hex["s3"]["object"]["sequencer"] = "xyz"
    bad_utf8 = record(bucket, "in/w", 9)
    bad_utf8["s3"]["object"]["key"] = "in/%FF"
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}
    report = connected.connect.apply_events(
        [
            document(inside, outside, dotdot, empty, marker, other, accessed),
            document(no_size, bad_hex, bad_utf8),
            test_event,
            b"not json",
            "[1, 2]",
        ],
        data_store_name="store",
        prefix="in/",
        dest_dir="/f",
    )
    assert counts(report) == {"added": 1, "ignored": 5}
    assert report.skipped == [
        SkippedKey("in/../x", "'.' or '..' name"),
        SkippedKey("in/a//b", "empty name"),
        SkippedKey("in/%FF", "key is not URL-encoded UTF-8"),
    ]
    assert [error.split(":")[0] for error in report.errors] == [
        "a ObjectCreated",
        "a ObjectRemoved",
        "a document that is not JSON",
        "a document that is not a JSON object (list)",
    ]
    assert report.records == 13
    etag = inside["s3"]["object"]["eTag"]
    assert links_under(connected, "/f") == {"ok": ("store", "in/ok", 1, etag)}


def test_envelopes_of_sns_and_functions_are_opened(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    a, b, c = (changes.put(key, b"x") for key in ("a", "b", "c"))
    sns = {"Type": "Notification", "Message": json.dumps(document(a))}
    lambda_sqs = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(document(b))}]}
    sns_record = {"EventSource": "aws:sns", "Sns": {"Message": json.dumps(document(c))}}
    lambda_sns = {"Records": [sns_record]}
    report = apply(connected, [sns, lambda_sqs, lambda_sns])
    assert counts(report) == {"added": 3}
    assert sorted(links_under(connected, "/f")) == ["a", "b", "c"]


def test_things_in_the_way_follow_mirrors_rules(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    connected.fs.create_dir("/f")
    connected.fs.write_file("/f/native", b"mine")
    native = changes.put("native", b"object")
    file_first = changes.put("a/b", b"file")
    below = changes.put("a/b/c", b"below")
    first = apply(connected, document(native, file_first))
    assert counts(first) == {"added": 1}
    assert first.skipped == [SkippedKey("native", "native file in the way")]
    report = apply(connected, document(below))
    assert counts(report) == {"added": 1, "removed": 1}  # the directory wins, as in mirror
    assert connected.fs.read_file("/f/native") == b"mine"
    assert sorted(links_under(connected, "/f")) == ["a/b/c"]


def test_bad_input_changes_nothing(connected: Filespace) -> None:
    with pytest.raises(TypeError, match="events must be"):
        apply(connected, 42)
    with pytest.raises(ValueError, match="prefix"):
        apply(connected, [], prefix="a\x00")
    with pytest.raises(filespace.DataStoreNotFoundError):
        connected.connect.apply_events([], data_store_name="nope", dest_dir="/f")
    assert not connected.fs.exists("/f")
    connected.fs.write_file("/file", b"x")
    with pytest.raises(NotADirectoryError):
        apply(connected, [], dest="/file")


# -- convergence --------------------------------------------------------------------------
NAMES = ["a", "b c", "d+e", "é", "x/y", "x/z", "deep/p/q"]
"""Keys of the histories: spaces, ``+``, unicode, shared directories; none a prefix of another."""


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[int], list[int]]:
    """Changes (key index, body length or -1 to delete), a delivery order, and call splits."""
    steps = draw(
        st.lists(st.tuples(st.integers(0, len(NAMES) - 1), st.integers(-1, 3)), max_size=14)
    )
    order = draw(st.permutations(range(len(steps))))
    again = draw(st.lists(st.integers(0, max(len(steps) - 1, 0)), max_size=6)) if steps else []
    delivered = list(order) + again
    delivered = draw(st.permutations(delivered))
    cuts = draw(st.lists(st.integers(0, len(delivered)), max_size=3))
    return steps, delivered, sorted(cuts)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_any_delivery_order_converges_to_mirror(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, history: Any
) -> None:
    steps, delivered, cuts = history
    s3 = s3_client(s3_server)
    prefix = f"{uuid.uuid4().hex[:8]}/"
    changes = Bucket(s3, bucket)
    for index, length in steps:
        key = prefix + NAMES[index]
        if length < 0:
            changes.delete(key)
        else:
            changes.put(key, bytes([65 + index]) * length + b"!")
    messages = [changes.records[at] for at in delivered]
    dest = f"/followed/{prefix}"
    total = SyncReport()
    for start, end in zip([0, *cuts], [*cuts, len(messages)], strict=True):
        total.add(apply(connected, document(*messages[start:end]), dest=dest, prefix=prefix))
    assert total.records == len(messages) and not total.skipped and not total.errors
    wanted = bucket_links(s3, bucket, prefix, strip=len(prefix))
    assert links_under(connected, dest.rstrip("/")) == wanted
    mirrored = f"/mirrored/{prefix}"
    connected.connect.mirror("store", prefix, mirrored)
    assert links_under(connected, mirrored.rstrip("/")) == wanted
    again = connected.connect.mirror("store", prefix, dest)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert total.added + total.updated + total.removed + total.unchanged <= len(set(delivered))


def test_sequencer_rules() -> None:
    from filespace.meta.events import later

    read = notifications.read_record(record("b", "k", 0x00FF, size=1, etag="e"))
    assert isinstance(read, notifications.Event) and read.sequencer == "ff"
    assert later("100", "ff") and not later("ff", "ff") and not later("fe", "ff")


def test_mirror_onto_another_key_voids_the_sequencer(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    x = changes.put("x/k", b"x")
    assert counts(apply(connected, document(x), dest="/f/x", prefix="x/")) == {"added": 1}
    y = record(bucket, "y/k", 1, size=1, etag=x["s3"]["object"]["eTag"])  # older than x's
    changes.put("y/k", b"x")
    connected.connect.mirror("store", "y/", "/f/x")  # now /f/x/k links y/k
    assert counts(apply(connected, document(y), dest="/f/x", prefix="y/")) == {"unchanged": 1}


def test_an_old_schema_is_migrated(
    engine_name: str, tmp_path: Any, s3_server: SeaweedS3, bucket: str
) -> None:
    from tests.fsfixtures import new_location, raw_sql, store_config

    with new_location(engine_name, tmp_path) as (location, options):
        with filespace.create(location, name="old", **options) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("store", store_config(s3_server, bucket))
            fsp.connect.link_file("/kept", "store", "kept", 1, "abc")
            raw_sql(fsp, "DROP TABLE event_tombstones")
            raw_sql(fsp, "ALTER TABLE external_links DROP COLUMN sequencer")
            raw_sql(fsp, "UPDATE settings SET value = '1' WHERE name = 'schema_version'")
        with filespace.open(location) as fsp:
            changes = Bucket(s3_client(s3_server), bucket)
            gone = changes.delete("k")
            assert counts(apply(fsp, document(gone))) == {"unchanged": 1}
            assert fsp.connect.get_external_file("/kept").object_id == "kept"
            assert fsp._engine.settings()["schema_version"] == "2"


REMOVALS = [
    "ObjectRemoved:Delete",
    "ObjectRemoved:DeleteMarkerCreated",
    "LifecycleExpiration:Delete",
    "LifecycleExpiration:DeleteMarkerCreated",
    "ObjectLifecycle:Expiration:Current",  # Ceph RGW
]
NO_CHANGE = [
    "ObjectRestore:Post",
    "ObjectRestore:Completed",
    "ObjectRestore:Delete",  # a restored copy expired; the archived object stays
    "ObjectTagging:Put",
    "ObjectTagging:Delete",
    "ObjectAcl:Put",
    "Replication:OperationFailedReplication",
    "Replication:OperationMissedThreshold",
    "Replication:OperationReplicatedAfterThreshold",
    "Replication:OperationNotTracked",
    "IntelligentTiering",
    "LifecycleTransition",
    "ReducedRedundancyLostObject",
    "ObjectLifecycle:Expiration:NonCurrent",  # Ceph RGW: an older version, not the object
    "ObjectLifecycle:Expiration:DeleteMarker",
    "ObjectLifecycle:Transition:Current",
]


@pytest.mark.parametrize("prefix", ["", "s3:"])
def test_every_removal_kind_removes(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, prefix: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket)
    made = [changes.put(f"k/{at}", b"x") for at in range(len(REMOVALS))]
    assert counts(apply(connected, document(*made))) == {"added": len(REMOVALS)}
    gone = [
        {**changes.delete(f"k/{at}"), "eventName": prefix + name}
        for at, name in enumerate(REMOVALS)
    ]
    assert counts(apply(connected, document(*gone))) == {"removed": len(REMOVALS)}
    assert links_under(connected, "/f") == {}


@pytest.mark.parametrize("prefix", ["", "s3:"])
def test_kinds_that_change_no_object_are_ignored(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, prefix: str
) -> None:
    changes = Bucket(s3_client(s3_server), bucket, start=1000)
    made = [changes.put(f"k/{at}", b"x") for at in range(len(NO_CHANGE))]
    assert counts(apply(connected, document(*made))) == {"added": len(NO_CHANGE)}
    linked = links_under(connected, "/f")
    # Later than anything else, with another size and ETag: applied, they would show.
    later = [
        record(bucket, f"k/{at}", 9000 + at, size=7, etag="f" * 32, name=prefix + name)
        for at, name in enumerate(NO_CHANGE)
    ]
    assert counts(apply(connected, document(*later))) == {"ignored": len(NO_CHANGE)}
    assert links_under(connected, "/f") == linked
    # Nor do they count as the last event of their key: an older removal still applies.
    gone = [changes.delete(f"k/{at}") for at in range(len(NO_CHANGE))]
    assert counts(apply(connected, document(*gone))) == {"removed": len(NO_CHANGE)}
