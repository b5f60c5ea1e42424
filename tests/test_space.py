"""Creating, opening and upgrading filespaces; the filespace key."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import filespace
from filespace import keys


def test_create_open_roundtrip(tmp_path: Path) -> None:
    location = tmp_path / "space"
    with filespace.create(location, name="demo") as fsp:
        assert fsp.name == "demo" and fsp.format_version == 9
        assert fsp.full_name.startswith("demo.")
        fsp.fs.write_file("/kept", b"data")
        space_id = fsp.id
    # Closed: the WAL is checkpointed away; only these stay.
    assert sorted(os.listdir(location)) == ["blocks", "filespace.json", "meta.db"]
    with filespace.open(str(location)) as again:
        assert again.id == space_id
        assert again.fs.read_file("/kept") == b"data"


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    fsp = filespace.create(tmp_path / "s", name="x")
    fsp.close()
    fsp.close()
    assert fsp.closed
    with pytest.raises(ValueError, match="closed"):
        fsp.fs.list_dir("/")


def test_create_refuses_existing(tmp_path: Path) -> None:
    filespace.create(tmp_path / "s", name="x").close()
    with pytest.raises(FileExistsError):
        filespace.create(tmp_path / "s", name="y")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(FileExistsError):
        filespace.create(tmp_path / "busy", name="y")
    (tmp_path / "empty").mkdir()
    filespace.create(tmp_path / "empty", name="ok").close()


def test_create_validates_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name"):
        filespace.create(tmp_path / "a", name="")
    with pytest.raises(ValueError, match="format_version"):
        filespace.create(tmp_path / "a", name="n", format_version=7)
    with pytest.raises(ValueError, match="data"):
        filespace.create(tmp_path / "a", name="n", data="ftp://nope")
    with pytest.raises(ValueError, match="data="):
        filespace.create(f"sqlite://{tmp_path}/x.db", name="n")
    with pytest.raises(ValueError, match="key"):
        filespace.create(tmp_path / "a", name="n", key="too-short")
    assert not (tmp_path / "a").exists()


def test_engine_url_location(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/meta.db"
    data = (tmp_path / "blocks").as_uri()
    with filespace.create(url, name="u", data=data) as fsp:
        fsp.fs.write_file("/f", b"abc")
        assert fsp.engine_url == url and fsp.data_url == data
    with filespace.open(url) as fsp:
        assert fsp.fs.read_file("/f") == b"abc"


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        filespace.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(filespace.NotAFilespaceError):
        filespace.open(tmp_path / "plain")
    with pytest.raises(FileNotFoundError):
        filespace.open(f"sqlite://{tmp_path}/none.db")
    with pytest.raises(ValueError, match="scheme"):
        filespace.open("mysql://host/db")


def test_newer_format_is_refused(tmp_path: Path) -> None:
    fsp = filespace.create(tmp_path / "s", name="x")
    fsp._engine.set_setting("format_version", "10")  # type: ignore[attr-defined]
    fsp.close()
    with pytest.raises(filespace.UnsupportedFormatError, match="format 10"):
        filespace.open(tmp_path / "s")


def test_key_file_written_0600(tmp_path: Path, isolated_env: Path) -> None:
    with filespace.create(tmp_path / "s", name="x") as fsp:
        path = keys.key_file(fsp.id)
    assert path.is_relative_to(isolated_env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(keys.parse_key(path.read_text())) == 32
    raw = (tmp_path / "s" / "meta.db").read_bytes()
    assert path.read_text().strip().encode() not in raw


def test_key_lookup_order_and_wrong_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = filespace.generate_key()
    with filespace.create(tmp_path / "s", name="x", key=given) as fsp:
        assert not keys.key_file(fsp.id).exists()  # a given key is not stored
    with filespace.open(tmp_path / "s", key=given) as fsp:
        fsp.connect.enable()
    with pytest.raises(filespace.WrongKeyError, match="wrong key"):
        filespace.open(tmp_path / "s", key=filespace.generate_key())
    monkeypatch.setenv("FILESPACE_KEY", given)
    with filespace.open(tmp_path / "s") as fsp:
        assert fsp.connect.are_data_stores_available()
    monkeypatch.setenv("FILESPACE_KEY", filespace.generate_key())
    with pytest.raises(filespace.WrongKeyError):
        filespace.open(tmp_path / "s")
    monkeypatch.delenv("FILESPACE_KEY")
    with filespace.open(tmp_path / "s") as fsp:  # opens; secrets need the key
        with pytest.raises(filespace.KeyNotFoundError, match="FILESPACE_KEY"):
            fsp.connect.add_data_store(
                "s", filespace.S3DataStoreConfig("AK", "SK", "bucket-name", "us-east-1")
            )


def test_key_formats() -> None:
    raw = os.urandom(32)
    import base64

    assert keys.parse_key(raw) == raw
    assert keys.parse_key(raw.hex()) == raw
    assert keys.parse_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    for bad in ("", "zz" * 32, "abc", b"short"):
        with pytest.raises(ValueError, match="32 bytes"):
            keys.parse_key(bad)


def test_format_8_and_upgrade(tmp_path: Path) -> None:
    location = tmp_path / "old"
    with filespace.create(location, name="old", format_version=8) as fsp:
        assert fsp.format_version == 8
        assert not fsp.connect.are_data_stores_available()
        with pytest.raises(filespace.ConnectUnavailableError, match="upgrade"):
            fsp.connect.enable()
        with pytest.raises(filespace.ConnectUnavailableError, match="format 8"):
            fsp.connect.list_data_stores()
        fsp.fs.write_file("/keep", b"k")
    assert filespace.upgrade(location) == 9
    with filespace.open(location) as fsp:
        assert fsp.format_version == 9
        assert fsp.fs.read_file("/keep") == b"k"
        with pytest.raises(filespace.ConnectUnavailableError, match="enable"):
            fsp.connect.list_data_stores()
        fsp.connect.enable()
        fsp.connect.enable()  # idempotent
        assert fsp.connect.are_data_stores_available()
        assert fsp.connect.list_data_stores() == []
    assert filespace.upgrade(location) == 9  # a no-op the second time


def test_config_file_is_plain(tmp_path: Path) -> None:
    filespace.create(tmp_path / "s", name="x").close()
    config = json.loads((tmp_path / "s" / "filespace.json").read_text())
    assert config["database"] == "meta.db"
