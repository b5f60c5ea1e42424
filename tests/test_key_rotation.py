"""Rotating the filespace key: every secret resealed at once, the old key done with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import IntegrityError, WrongKeyError, keys
from filespace.testing import SeaweedS3
from tests.cli_helpers import new_cli
from tests.fsfixtures import location_of, raw_sql, store_config


@pytest.fixture
def populated(
    connected: filespace.Filespace, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> filespace.Filespace:
    """Two stores, a linked file and a sealed Connect setting."""
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"payload")
    connected.connect.add_data_store("second", store_config(s3_server, bucket))
    connected.connect.link_file("/k", "store", "k")
    connected.connect.configure(allow_private_urls=True)
    return connected


def test_rotation_reseals_everything_and_retires_the_old_key(
    populated: filespace.Filespace, s3_server: SeaweedS3
) -> None:
    old = keys.key_file(populated.id).read_text().strip()
    new = populated.rotate_key()
    assert new != old and keys.parse_key(new)
    assert keys.key_file(populated.id).read_text().strip() == new
    # The open filespace goes on with the new key.
    assert populated.connect.get_data_store("second").secret_key == s3_server.admin.secret_key  # type: ignore[union-attr]
    with filespace.open(location_of(populated)) as client:  # the key file
        assert client.fs.read_file("/k") == b"payload"
        assert client.connect.get_settings().allow_private_urls is True
        for name in ("store", "second"):
            info = client.connect.get_data_store(name)
            assert info is not None and info.secret_key == s3_server.admin.secret_key
            assert info.key_id == keys.key_id(keys.parse_key(new), populated.id)
    with pytest.raises(WrongKeyError, match="does not match"):
        filespace.open(location_of(populated), key=old)


def test_a_given_key_is_used(populated: filespace.Filespace) -> None:
    chosen = filespace.generate_key()
    assert populated.rotate_key(chosen, save_key_file=False) == chosen
    with filespace.open(location_of(populated), key=chosen) as client:
        assert client.fs.read_file("/k") == b"payload"
    with pytest.raises(ValueError, match="is the current one"):
        populated.rotate_key(chosen)
    with pytest.raises(ValueError, match="64 hex digits"):
        populated.rotate_key("not a key")


def test_a_client_still_on_the_old_key_is_refused(populated: filespace.Filespace) -> None:
    with filespace.open(location_of(populated)) as stale:
        assert stale.connect.get_settings().allow_private_urls is True
        populated.rotate_key()
        with pytest.raises(WrongKeyError, match="rotated since it was opened"):
            stale.connect.add_data_store(
                "third", filespace.S3DataStoreConfig("AKIA0123", "secret0123", "bkt", "us-east-1")
            )
        with pytest.raises(WrongKeyError, match="rotated since it was opened"):
            stale.connect.get_data_store("store")
    assert populated.connect.get_data_store("third") is None


def test_a_tampered_store_stops_the_rotation_and_changes_nothing(
    populated: filespace.Filespace,
) -> None:
    old = keys.key_file(populated.id).read_text().strip()
    raw_sql(populated, "UPDATE data_stores SET bucket = 'elsewhere' WHERE name = 'second'")
    with pytest.raises(IntegrityError):
        populated.rotate_key()
    assert keys.key_file(populated.id).read_text().strip() == old
    assert not keys.key_file(populated.id).with_suffix(".key.next").exists()
    with filespace.open(location_of(populated), key=old) as client:
        assert client.fs.read_file("/k") == b"payload"


def test_a_rotation_cut_short_before_its_key_file_is_renamed(
    populated: filespace.Filespace,
) -> None:
    """The engine switched; the process died before the rename: open finds the pending key."""
    new = populated.rotate_key(save_key_file=False)
    keys.store_pending_key(populated.id, keys.parse_key(new))
    with filespace.open(location_of(populated)) as client:
        assert client.fs.read_file("/k") == b"payload"
    assert keys.key_file(populated.id).read_text().strip() == new


def test_the_block_store_secret_is_resealed(s3_blocks: filespace.Filespace) -> None:
    s3_blocks.rotate_key()
    with filespace.open(location_of(s3_blocks)) as client:
        assert client.fs.read_file("/native") == b"native bytes"
        client.fs.write_file("/more", b"more")
        assert client.fs.read_file("/more") == b"more"


def test_cli_key_rotate(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    cli.ok("init")
    with cli.api() as fsp:
        fsp.fs.write_file("/f", b"x")
        key_file = cli.home / "config" / "filespace" / "keys" / f"{fsp.id}.key"
        before = key_file.read_text()
    refused = cli.fails("key", "rotate")
    assert "--yes" in refused.err
    done = cli.ok("key", "rotate", "--yes", "--json").json()
    assert done["key_file"] == str(key_file)
    assert key_file.read_text() != before
    assert before.strip() not in cli.ok("key", "rotate", "--yes").out
    assert cli.ok("cat", "/f").out == "x"
