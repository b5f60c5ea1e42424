"""Turning Connect off (``fsp.connect.disable``) and naming a data store that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

import filespace
from filespace import Filespace
from filespace.testing import SeaweedS3
from tests.fsfixtures import store_config


def test_disable_is_refused_while_files_are_linked(connected: Filespace) -> None:
    connect = connected.connect
    connect.link_file("/a", "store", "k1", size=1, checksum="e")
    connect.link_http_file("/b", "https://example.com/b.csv", size=5)
    with pytest.raises(filespace.ConnectInUseError, match="2 external file") as refused:
        connect.disable()
    assert refused.value.count == 2
    assert isinstance(refused.value, RuntimeError)
    assert connect.are_data_stores_available()  # nothing changed
    assert connect.count_external_files("store") == 1
    connect.unlink_file("/a")
    with pytest.raises(filespace.ConnectInUseError, match="1 external file"):
        connect.disable()  # an HTTP link counts too
    connected.fs.delete("/b")
    connect.disable()
    assert not connect.are_data_stores_available()
    with pytest.raises(filespace.ConnectUnavailableError, match="not enabled"):
        connect.list_data_stores()
    connect.disable()  # idempotent


def test_stores_come_back_after_enable(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connected.connect.disable()
    connected.connect.enable()
    full = connected.connect.get_data_store("store")
    assert full is not None and full.secret_key == s3_server.admin.secret_key


def test_a_client_opening_later_sees_connect_off(tmp_path: Path) -> None:
    location = tmp_path / "fs"
    with filespace.create(location, name="later") as fsp:
        fsp.connect.enable()
        fsp.connect.disable()
    with filespace.open(location) as again:
        assert not again.connect.are_data_stores_available()


def test_disable_on_a_format_without_connect_does_nothing(tmp_path: Path) -> None:
    with filespace.create(tmp_path / "old", name="old", format_version=8) as fsp:
        fsp.connect.disable()
        assert fsp.format_version == 8
        assert not fsp.connect.are_data_stores_available()


def test_unknown_store_names_the_close_ones(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    connect = connected.connect
    connect.add_data_store("research", store_config(s3_server, bucket))
    with pytest.raises(filespace.DataStoreNotFoundError, match="did you mean 'research'\\?"):
        connect.count_external_files("reserch")
    with pytest.raises(
        filespace.DataStoreNotFoundError, match=r"the data stores are: research, store$"
    ):
        connect.data_store("zzz")


def test_unknown_store_in_a_filespace_without_stores(fsp: Filespace) -> None:
    fsp.connect.enable()
    with pytest.raises(filespace.DataStoreNotFoundError, match="has no data stores"):
        fsp.connect.link_file("/x", "lake", "k", size=1, checksum="e")
