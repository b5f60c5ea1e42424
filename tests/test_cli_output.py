"""What the ``filespace`` command lets reach a terminal: names with control characters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from filespace.testing import SeaweedS3
from tests.cli_helpers import Cli, add_store, link, unused_port_endpoint

pytest_plugins = ["tests.cli_helpers"]

# Names an attacker who can write the bucket or the engine might choose: a colour
# change, a bell, a carriage return that overwrites the line, DEL, an 8-bit CSI,
# a newline that fakes another line of output, a right-to-left override.
HOSTILE = ["red\x1b[31m", "bell\x07", "cr\rback", "del\x7f", "csi\x9b2J", "nl\nfake", "rtl\u202e"]
ESCAPED = ["red\\x1b[31m", "bell\\x07", "cr\\rback", "del\\x7f", "csi\\x9b2J", "nl\\nfake"]
_MIRRORED = "esc\x1b[31m/obj\x07"
_RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]")  # every control but the line ends


def _clean(text: str) -> str:
    """``text`` if it holds no raw control character (newlines end lines)."""
    found = _RAW.findall(text)
    assert not found, f"raw control characters {found!r} in {text!r}"
    return text


@pytest.fixture(scope="module")
def hostile(connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str) -> Iterator[dict[str, Any]]:
    """Links under ``/ctl`` whose names and object keys hold control characters."""
    s3 = s3_server.client()
    add_store(connect_cli, s3_server, "ctl", shared_bucket)
    for name in HOSTILE:
        link(connect_cli, f"/ctl/{name}", "ctl", f"keys/{name}")
    s3.put_object(Bucket=shared_bucket, Key=_MIRRORED, Body=b"x")
    yield {"store": "ctl", "bucket": shared_bucket}
    # A multi-object delete (XML) cannot name this key; one DELETE by URL can.
    s3.delete_object(Bucket=shared_bucket, Key=_MIRRORED)


def test_listings_escape_control_characters(connect_cli: Cli, hostile: dict[str, Any]) -> None:
    short = _clean(connect_cli.ok("ls", "/ctl").out)
    assert set(short.splitlines()) == {*ESCAPED, "rtl\\u202e"}
    long = _clean(connect_cli.ok("ls", "-l", "/ctl").out)
    assert "red\\x1b[31m" in long and "ctl:keys/red\\x1b[31m" in long
    assert "ctl:keys/cr\\rback" in long
    tree = _clean(connect_cli.ok("tree", "/ctl").out)
    assert "bell\\x07  [s3] ctl:keys/bell\\x07" in tree
    listed = _clean(connect_cli.ok("files", "list", "--store", "ctl").out)
    assert set(listed.splitlines()) == {f"/ctl/{name}" for name in (*ESCAPED, "rtl\\u202e")}
    stat = _clean(connect_cli.ok("stat", "/ctl/nl\nfake").out)
    assert "path      /ctl/nl\\nfake" in stat
    assert "key       keys/nl\\nfake" in stat


def test_json_keeps_the_exact_names(connect_cli: Cli, hostile: dict[str, Any]) -> None:
    listing = connect_cli.ok("ls", "/ctl", "--json")
    _clean(listing.out)  # JSON escapes even DEL and C1 controls
    entries = listing.json()["entries"]
    assert {e["name"] for e in entries} == set(HOSTILE)
    assert {e["external"]["key"] for e in entries} == {f"keys/{n}" for n in HOSTILE}
    tree = json.loads(_clean(connect_cli.ok("tree", "/ctl", "--json").out))
    assert {child["name"] for child in tree["children"]} == set(HOSTILE)
    paths = connect_cli.ok("files", "list", "--store", "ctl", "--json").json()["file_paths"]
    assert set(paths) == {f"/ctl/{name}" for name in HOSTILE}


def test_errors_and_reports_escape_control_characters(
    connect_cli: Cli, hostile: dict[str, Any]
) -> None:
    missing = connect_cli.fails("stat", "/ctl/gone\x1b]0;title\x07")
    assert _clean(missing.err) == "error: /ctl/gone\\x1b]0;title\\x07: no such file or directory\n"
    taken = connect_cli.fails("link", "/ctl/red\x1b[31m", "--store", "ctl", "--key", "k")
    assert "/ctl/red\\x1b[31m: path already exists" in _clean(taken.err)
    mirrored = connect_cli.ok("mirror", "/m", "--store", "ctl", "--prefix", "esc\x1b[31m/")
    assert _clean(mirrored.out).startswith("mirrored ctl:esc\\x1b[31m/ into /m: 1 added")
    assert _clean(connect_cli.ok("ls", "/m").out) == "obj\\x07\n"
    assert connect_cli.ok("ls", "/m", "--json").json()["entries"][0]["name"] == "obj\x07"


@pytest.mark.parametrize(
    ("natural", "unlikely"), [("s", "Q"), ("secr", "QzQz"), ("secret k", "QzQzQzQz")]
)
def test_a_short_secret_is_never_given_away(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str, natural: str, unlikely: str
) -> None:
    # "natural" is text the warning itself holds: masking it where it occurs
    # would spell it out ("a s***cr***t key"). What is printed must not depend
    # on which short secret was given, only on its being short.
    args = ["store", "add", "leak", "--bucket", shared_bucket, "--region", s3_server.region]
    args += ["--endpoint", unused_port_endpoint(), "--access-key", "AKIAEXAMPLE"]
    said = {}
    for secret in (natural, unlikely):
        result = connect_cli.run(*args, "--secret-key", secret)
        assert result.code == 1, str(result)
        said[secret] = result.err
    withheld = (
        "(not shown: the secret key in use is shorter than 16 characters, "
        "too short to mask in a message without giving it away)"
    )
    assert said[natural] == said[unlikely] == f"warning: {withheld}\nerror: {withheld}\n"


def test_a_long_secret_is_masked_where_it_occurs(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    # A 40-character secret never coincides with ordinary text: the messages are shown.
    args = ["store", "add", "leak", "--bucket", shared_bucket, "--region", s3_server.region]
    args += ["--endpoint", unused_port_endpoint(), "--access-key", "AKIAEXAMPLE"]
    result = connect_cli.run(*args, "--secret-key", "S" * 40)
    assert result.code == 1, str(result)
    assert result.err.startswith("warning: a secret key given with --secret-key is visible")
    assert "S" * 40 not in result.err
    assert "not shown" not in result.err
