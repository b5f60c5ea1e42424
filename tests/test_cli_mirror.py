"""The ``filespace mirror`` command against a real S3 server."""

from __future__ import annotations

from filespace.testing import SeaweedS3
from tests.cli_helpers import Cli, add_store, exists, write

pytest_plugins = ["tests.cli_helpers"]


def _report(cli: Cli, *args: str) -> dict[str, object]:
    doc = cli.ok("mirror", *args, "--json").json()
    assert isinstance(doc, dict)
    return {k: doc[k] for k in ("added", "updated", "removed", "unchanged", "dry_run")}


def test_mirror_follows_the_bucket(connect_cli: Cli, s3_server: SeaweedS3, bucket: str) -> None:
    s3 = s3_server.client()
    for key, body in {"m/a.csv": b"a", "m/sub/b.csv": b"bb", "m/taken": b"x", "o/c": b"c"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    add_store(connect_cli, s3_server, "mir", bucket)
    write(connect_cli, "/mirror/taken", b"native")
    args = ["/mirror", "--store", "mir", "--prefix", "m/"]

    planned = connect_cli.ok("mirror", *args, "--dry-run", "--json").json()
    assert (planned["dry_run"], planned["added"]) == (True, 2)
    assert [s["key"] for s in planned["skipped"]] == ["m/taken"]
    assert not exists(connect_cli, "/mirror/a.csv")

    first = connect_cli.ok("mirror", *args)
    assert first.out.splitlines()[0] == (
        "mirrored mir:m/ into /mirror: 2 added, 0 updated, 0 removed, 0 unchanged, 1 skipped"
    )
    assert "skipped 'm/taken'" in first.out
    assert first.err == ""  # no progress bar when piped
    assert connect_cli.bytes_out("cat", "/mirror/taken") == b"native"
    rows = [line.split() for line in connect_cli.ok("ls", "-l", "/mirror").out.splitlines()]
    assert [(r[0], r[-1]) for r in rows[1:]] == [
        ("s3", "mir:m/a.csv"),
        ("dir", "sub"),
        ("file", "taken"),
    ]
    assert connect_cli.bytes_out("cat", "/mirror/sub/b.csv") == b"bb"

    s3.put_object(Bucket=bucket, Key="m/a.csv", Body=b"changed")
    s3.delete_object(Bucket=bucket, Key="m/sub/b.csv")
    s3.put_object(Bucket=bucket, Key="m/new", Body=b"new")
    assert _report(connect_cli, *args) == {
        "added": 1, "updated": 1, "removed": 1, "unchanged": 0, "dry_run": False,
    }  # fmt: skip
    assert connect_cli.bytes_out("cat", "/mirror/a.csv") == b"changed"
    with connect_cli.api() as fsp:
        assert fsp.fs.read_file("/mirror/taken") == b"native"  # never touched
    assert not exists(connect_cli, "/mirror/sub/b.csv")

    s3.delete_object(Bucket=bucket, Key="m/new")
    assert _report(connect_cli, *args, "--no-delete")["removed"] == 0
    assert exists(connect_cli, "/mirror/new")
    assert _report(connect_cli, *args) == {
        "added": 0, "updated": 0, "removed": 1, "unchanged": 1, "dry_run": False,
    }  # fmt: skip

    kept = connect_cli.ok("mirror", "/full", "-s", "mir", "--prefix", "m/", "--no-strip-prefix")
    assert "2 added" in kept.out
    with connect_cli.api() as fsp:
        assert fsp.connect.get_external_file("/full/m/a.csv").object_id == "m/a.csv"


def test_mirror_errors(connect_cli: Cli, s3_server: SeaweedS3, bucket: str) -> None:
    assert "no data store named 'nope'" in connect_cli.fails("mirror", "/x", "-s", "nope").err
    connect_cli.usage_error("mirror", "/x")
    add_store(connect_cli, s3_server, "mir-file", bucket)
    write(connect_cli, "/a-file", b"f")
    assert "/a-file" in connect_cli.fails("mirror", "/a-file", "-s", "mir-file").err


def test_mirror_progress_on_a_terminal(connect_cli: Cli, s3_server: SeaweedS3, bucket: str) -> None:
    s3_server.client().put_object(Bucket=bucket, Key="t/one", Body=b"1")
    add_store(connect_cli, s3_server, "mir-tty", bucket)
    code, text = connect_cli.on_terminal("mirror", "/tty", "-s", "mir-tty")
    assert code == 0, text
    assert "mirroring mir-tty:* into /tty" in text  # the progress bar's label
    assert "1 added" in text
