"""The ``filespace`` command: linking S3 objects and URLs, reading them, unlinking them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from filespace.testing import SeaweedS3
from tests.cli_helpers import Cli, add_store, exists, link, unused_port_endpoint, write

pytest_plugins = ["tests.cli_helpers"]

OBJECTS = {
    "data/a.csv": b"x,y\n1,2\n",
    "data/sub/b.bin": os.urandom(200_000),
    "logs/x.log": b"log line\n",
}


@pytest.fixture(scope="module")
def store(connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str) -> dict[str, Any]:
    """Store ``main`` on a bucket holding ``OBJECTS``; their ETags by key."""
    s3 = s3_server.client()
    etags = {}
    for key, body in OBJECTS.items():
        etags[key] = s3.put_object(Bucket=shared_bucket, Key=key, Body=body)["ETag"].strip('"')
    add_store(connect_cli, s3_server, "main", shared_bucket)
    return {"name": "main", "bucket": shared_bucket, "etags": etags}


def test_link_learns_size_and_checksum(connect_cli: Cli, store: dict[str, Any]) -> None:
    made = connect_cli.ok("link", "/l1/a.csv", "--store", "main", "--key", "data/a.csv", "-p")
    assert made.out == "created /l1\nlinked /l1/a.csv -> main:data/a.csv (8 B)\n"
    info = connect_cli.ok("stat", "/l1/a.csv", "--json").json()
    assert info["size"] == len(OBJECTS["data/a.csv"])
    assert info["external"]["kind"] == "s3"
    assert info["external"]["store"] == "main"
    assert info["external"]["key"] == "data/a.csv"
    assert info["external"]["checksum"] == store["etags"]["data/a.csv"]
    assert connect_cli.bytes_out("cat", "/l1/a.csv") == OBJECTS["data/a.csv"]
    text = connect_cli.ok("stat", "/l1/a.csv").out
    assert "store     main" in text
    assert "key       data/a.csv" in text


def test_link_with_size_and_checksum(connect_cli: Cli, store: dict[str, Any]) -> None:
    etag = store["etags"]["data/sub/b.bin"]
    size = str(len(OBJECTS["data/sub/b.bin"]))
    linked = connect_cli.ok(
        "link", "/b.bin", "-s", "main", "-k", "data/sub/b.bin", "--size", size,
        "--checksum", f'"{etag}"', "--json",
    ).json()  # fmt: skip
    assert linked == {
        "dry_run": False,
        "path": "/b.bin",
        "store": "main",
        "key": "data/sub/b.bin",
        "size": int(size),
        "checksum": etag,
        "created_dirs": [],
    }
    assert connect_cli.bytes_out("cat", "/b.bin") == OBJECTS["data/sub/b.bin"]
    connect_cli.usage_error("link", "/c", "--store", "main", "--key", "k", "--size", "3")


def test_link_failures_change_nothing(connect_cli: Cli, store: dict[str, Any]) -> None:
    base = ["--store", "main", "--key", "data/a.csv"]
    no_parent = connect_cli.fails("link", "/missing/dir/a.csv", *base)
    assert "/missing/dir/a.csv: parent directory does not exist" in no_parent.err
    link(connect_cli, "/taken.csv", "main", "data/a.csv")
    assert "/taken.csv: path already exists" in connect_cli.fails("link", "/taken.csv", *base).err
    gone = connect_cli.fails("link", "/new/deep/x", "--store", "main", "--key", "nope", "-p")
    assert "no object 'nope'" in gone.err
    assert not exists(connect_cli, "/new")  # the directories made for it were removed again
    planned = connect_cli.ok("link", "/dry/a.csv", *base, "-p", "--dry-run").out
    assert planned == "would create /dry\nwould link /dry/a.csv -> main:data/a.csv (8 B)\n"
    assert not exists(connect_cli, "/dry")
    assert "no object" in connect_cli.fails("link", "/d", "-s", "main", "-k", "no", "--dry-run").err
    assert "object_id" in connect_cli.fails("link", "/d", "-s", "main", "-k", "").err


def test_ls_marks_external_files(connect_cli: Cli, store: dict[str, Any]) -> None:
    link(connect_cli, "/mixed/linked.csv", "main", "data/a.csv", 8, store["etags"]["data/a.csv"])
    write(connect_cli, "/mixed/native.txt", b"native")
    rows = [line.split() for line in connect_cli.ok("ls", "-l", "/mixed").out.splitlines()]
    assert rows[0] == ["kind", "size", "modified", "name", "source"]
    assert rows[1][0:2] == ["s3", "8"]
    assert rows[1][-2:] == ["linked.csv", "main:data/a.csv"]
    assert rows[2][0] == "file"
    assert rows[2][-1] == "native.txt"
    entries = connect_cli.ok("ls", "/mixed", "--json").json()["entries"]
    assert entries[0]["external"]["key"] == "data/a.csv"
    assert entries[1]["external"] is None
    assert "[s3] main:data/a.csv" in connect_cli.ok("tree", "/mixed").out


def test_external_files_are_read_only_and_keep_their_object(
    connect_cli: Cli, s3_server: SeaweedS3, store: dict[str, Any], tmp_path: Path
) -> None:
    link(connect_cli, "/ro.log", "main", "logs/x.log", 9, store["etags"]["logs/x.log"])
    # EROFS's message (ReadOnlyFileError), the same for a real write and a dry run.
    refused = "error: /ro.log: external files are read-only\n"
    assert connect_cli.fails("put", "-", "/ro.log", stdin=b"overwrite").err == refused
    assert connect_cli.fails("put", "-", "/ro.log", "--dry-run").err == refused
    connect_cli.ok("get", "/ro.log", str(tmp_path / "x.log"))
    assert (tmp_path / "x.log").read_bytes() == OBJECTS["logs/x.log"]
    connect_cli.ok("mv", "/ro.log", "/renamed.log")
    with connect_cli.api() as fsp:
        assert fsp.connect.get_external_file("/renamed.log").object_id == "logs/x.log"
    assert connect_cli.ok("rm", "/renamed.log").out == "removed /renamed.log\n"
    assert not exists(connect_cli, "/renamed.log")
    head = s3_server.client().head_object(Bucket=store["bucket"], Key="logs/x.log")
    assert head["ContentLength"] == len(OBJECTS["logs/x.log"])


def test_link_url(connect_cli: Cli, s3_server: SeaweedS3, store: dict[str, Any]) -> None:
    connect_cli.ok("connect", "config", "--allow-private-urls")  # the S3 server is on loopback
    url = s3_server.client().generate_presigned_url(
        "get_object", Params={"Bucket": store["bucket"], "Key": "data/a.csv"}, ExpiresIn=3600
    )
    planned = connect_cli.ok("link-url", "/web/a.csv", url, "-p", "--dry-run").out
    assert planned.startswith("would create /web\nwould link /web/a.csv -> http://")
    assert not exists(connect_cli, "/web")
    made = connect_cli.ok("link-url", "/web/a.csv", url, "-p", "--json").json()
    assert (made["size"], made["created_dirs"]) == (len(OBJECTS["data/a.csv"]), ["/web"])
    assert connect_cli.bytes_out("cat", "/web/a.csv") == OBJECTS["data/a.csv"]
    row = connect_cli.ok("ls", "-l", "/web").out.splitlines()[1].split()
    assert (row[0], row[-1]) == ("http", url)
    sized = connect_cli.ok("link-url", "/web/sized", url, "--size", "8", "--json").json()
    assert sized["size"] == 8
    assert "invalid URL" in connect_cli.fails("link-url", "/web/bad", "ftp://host/x").err
    down = connect_cli.fails("link-url", "/web/down", unused_port_endpoint() + "/x")
    assert "cannot reach" in down.err
    assert "/web/a.csv: path already exists" in connect_cli.fails("link-url", "/web/a.csv", url).err


def test_unlink_one(connect_cli: Cli, store: dict[str, Any]) -> None:
    link(connect_cli, "/one.csv", "main", "data/a.csv")
    assert (
        "would unlink /one.csv (main:data/a.csv)"
        in connect_cli.ok("unlink", "/one.csv", "--dry-run").out
    )
    assert exists(connect_cli, "/one.csv")
    assert connect_cli.ok("unlink", "/one.csv").out == "unlinked /one.csv (main:data/a.csv)\n"
    assert "/one.csv: no such file" in connect_cli.fails("unlink", "/one.csv").err
    write(connect_cli, "/native.txt", b"n")
    assert "/native.txt is not an external file" in connect_cli.fails("unlink", "/native.txt").err
    assert exists(connect_cli, "/native.txt")
    assert "--all" in connect_cli.usage_error("unlink", "/native.txt", "--store", "main").err


def test_unlink_all(connect_cli: Cli, s3_server: SeaweedS3, store: dict[str, Any]) -> None:
    add_store(connect_cli, s3_server, "other", store["bucket"])
    link(connect_cli, "/all/a", "main", "a")
    link(connect_cli, "/all/deep/b", "main", "b")
    link(connect_cli, "/all/deep/o", "other", "o")
    write(connect_cli, "/all/deep/native", b"stays")
    assert "--yes" in connect_cli.fails("unlink", "--all", "/all", "--store", "main").err
    planned = connect_cli.ok("unlink", "--all", "/all", "--store", "main", "--dry-run", "--json")
    assert sorted(d["path"] for d in planned.json()["unlinked"]) == ["/all/a", "/all/deep/b"]
    assert exists(connect_cli, "/all/a")
    done = connect_cli.ok("unlink", "--all", "/all", "--store", "main", "--yes")
    assert done.out == "unlinked 2 external files under /all\n"
    assert done.err == ""  # no progress bar when piped
    assert connect_cli.ok("ls", "/all/deep").out == "native\no\n"
    connect_cli.ok("unlink", "--all", "/all", "-y")
    assert connect_cli.ok("ls", "/all/deep").out == "native\n"
    assert "not a directory" in connect_cli.fails("unlink", "--all", "/all/deep/native").err
    assert "/all/none: no such file" in connect_cli.fails("unlink", "--all", "/all/none").err


def test_files_list_and_count(
    connect_cli: Cli, s3_server: SeaweedS3, store: dict[str, Any]
) -> None:
    add_store(connect_cli, s3_server, "pages", store["bucket"])
    for name in ("p1", "p2", "p3"):
        link(connect_cli, f"/pages/{name}", "pages", name)
    assert connect_cli.ok("files", "count", "--store", "pages").out == "3\n"
    assert connect_cli.ok("files", "count", "-s", "pages", "--json").json()["count"] == 3
    first = connect_cli.ok("files", "list", "--store", "pages", "--limit", "2")
    assert first.out == "/pages/p1\n/pages/p2\n"
    assert first.err.startswith("next cursor: ")
    cursor = first.err.split()[-1]
    rest = connect_cli.ok("files", "list", "--store", "pages", "--cursor", cursor, "--json").json()
    assert (rest["file_paths"], rest["has_more"], rest["cursor"]) == (["/pages/p3"], False, "")
    whole = connect_cli.ok("files", "list", "-s", "pages", "--limit", "1", "--all")
    assert (whole.out, whole.err) == ("/pages/p1\n/pages/p2\n/pages/p3\n", "")
    assert (
        "malformed cursor" in connect_cli.fails("files", "list", "-s", "pages", "--cursor", "x").err
    )
    connect_cli.usage_error("files", "list", "-s", "pages", "--limit", "0")
