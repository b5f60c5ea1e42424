"""API.md §7: what an engine writer without the key and the process environment cannot do.

Every field that decides where a store's signed requests go is bound to its
sealed secret: changing one in the engine is an ``IntegrityError`` before any
request leaves. A store never takes its endpoint, addressing, proxy or trust
roots from ``AWS_*`` variables or ``~/.aws`` files.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import IntegrityError, S3Credentials
from filespace.sealing import Sealer
from filespace.testing import SeaweedS3
from tests.fsfixtures import location_of, raw_sql, store_config


class Listener:
    """A loopback port that records whether anything connected to it."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.setblocking(False)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def connections(self) -> int:
        """How many connections were made (each is accepted and closed)."""
        count = 0
        while True:
            try:
                conn, _ = self._socket.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Where an attacker would like the requests to go."""
    spot = Listener()
    yield spot
    spot.close()


@pytest.fixture
def linked(connected: filespace.Filespace, s3_admin: Any, bucket: str) -> filespace.Filespace:
    """A filespace with store ``store`` and ``/k`` linked to an object in it."""
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"payload")
    connected.connect.link_file("/k", "store", "k")
    assert connected.fs.read_file("/k") == b"payload"
    return connected


def _reopen(fsp: filespace.Filespace) -> filespace.Filespace:
    """A new client of the same filespace (nothing cached from before the change)."""
    return filespace.open(location_of(fsp))


TAMPERS = {
    "endpoint": "UPDATE data_stores SET endpoint = ? WHERE name = 'store'",
    "bucket": "UPDATE data_stores SET bucket = ? WHERE name = 'store'",
    "region": "UPDATE data_stores SET region = ? WHERE name = 'store'",
    "access_key": "UPDATE data_stores SET access_key = ? WHERE name = 'store'",
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
def test_changing_where_a_store_goes_is_an_integrity_error(
    linked: filespace.Filespace, listener: Listener, field: str
) -> None:
    value = {"endpoint": listener.url, "bucket": "other-bucket", "region": "eu-west-3"}
    changed = raw_sql(linked, TAMPERS[field], value.get(field, "AKIATTACKER"))
    assert changed == 1
    with _reopen(linked) as client:
        with pytest.raises(OSError, match="changed without the filespace key") as raised:
            client.fs.read_file("/k")
        assert isinstance(raised.value, IntegrityError) or isinstance(
            raised.value.__cause__, IntegrityError
        ), raised.value
        with pytest.raises(IntegrityError, match="changed without the filespace key"):
            client.connect.link_file("/k2", "store", "k")
        with pytest.raises(IntegrityError):
            client.connect.get_data_store("store")
        with pytest.raises(IntegrityError):
            client.connect.rekey_data_store("store", S3Credentials("AK", "SK"))
        assert not client.fs.file_exists("/k2")
    assert listener.connections() == 0


def test_changing_the_addressing_style_is_an_integrity_error(linked: filespace.Filespace) -> None:
    raw_sql(linked, "UPDATE data_stores SET virtual_addressing = 1 WHERE name = 'store'")
    with _reopen(linked) as client, pytest.raises(IntegrityError):
        client.connect.get_data_store("store")


def test_a_secret_moved_to_another_store_does_not_open(
    linked: filespace.Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    linked.connect.add_data_store("other", store_config(s3_server, bucket))
    raw_sql(
        linked,
        "UPDATE data_stores SET sealed_secret ="
        " (SELECT sealed_secret FROM data_stores WHERE name = 'store') WHERE name = 'other'",
    )
    with _reopen(linked) as client:
        with pytest.raises(IntegrityError):
            client.connect.get_data_store("other")
        assert client.fs.read_file("/k") == b"payload"


def test_rekey_binds_the_new_access_key(linked: filespace.Filespace, s3_server: SeaweedS3) -> None:
    spare = s3_server.spare
    linked.connect.rekey_data_store("store", S3Credentials(spare.access_key, spare.secret_key))
    with _reopen(linked) as client:
        assert client.connect.get_data_store("store").secret_key == spare.secret_key  # type: ignore[union-attr]
        assert client.fs.read_file("/k") == b"payload"
    raw_sql(linked, "UPDATE data_stores SET access_key = ? WHERE name = 'store'", "AKOLD")
    with _reopen(linked) as client, pytest.raises(IntegrityError):
        client.connect.get_data_store("store")


def test_a_secret_sealed_before_binding_is_resealed_once(
    linked: filespace.Filespace, s3_server: SeaweedS3, listener: Listener
) -> None:
    """Layout 1 (bound to the store's uid only) opens once and is resealed with its fields."""
    store = linked._engine.store("store")
    assert store is not None
    sealer: Sealer = linked._sealer()
    legacy = _seal_legacy(sealer, s3_server.admin.secret_key, f"data_store:{store.uid}:secret_key")
    raw_sql(linked, "UPDATE data_stores SET sealed_secret = ? WHERE name = 'store'", legacy)
    with _reopen(linked) as client:
        assert client.fs.read_file("/k") == b"payload"
    resealed = linked._engine.store("store")
    assert resealed is not None and resealed.sealed_secret[:1] == b"\x02"
    raw_sql(linked, "UPDATE data_stores SET endpoint = ? WHERE name = 'store'", listener.url)
    with _reopen(linked) as client, pytest.raises(IntegrityError):
        client.connect.get_data_store("store")
    assert listener.connections() == 0


def _seal_legacy(sealer: Sealer, secret: str, record: str) -> bytes:
    """What the earlier code wrote: layout 1, bound to the record only."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    context = f"filespace:{sealer._filespace_id}|{record}".encode()
    return b"\x01" + nonce + AESGCM(sealer._key).encrypt(nonce, secret.encode(), context)


# -- the S3 block store -------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("data_s3_endpoint", "LISTENER"),
        ("data_s3_region", "eu-west-3"),
        ("data_s3_access_key", "AKIATTACKER"),
        ("data_s3_virtual_addressing", "1"),
        ("data_url", "s3://other-bucket/space"),
    ],
)
def test_changing_where_the_block_store_goes_is_an_integrity_error(
    s3_blocks: filespace.Filespace, listener: Listener, setting: str, value: str
) -> None:
    value = listener.url if value == "LISTENER" else value
    assert raw_sql(s3_blocks, "UPDATE settings SET value = ? WHERE name = ?", value, setting) == 1
    with _reopen(s3_blocks) as client:
        with pytest.raises(IntegrityError):
            client.fs.write_file("/new", b"x")
        with pytest.raises(IntegrityError):
            client.fs.read_file("/native")
    assert listener.connections() == 0


# -- the process environment ----------------------------------------------------------


def test_the_environment_does_not_redirect_a_store(
    linked: filespace.Filespace,
    listener: Listener,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS_* variables, ~/.aws files and proxy variables change nothing for a store."""
    config = tmp_path / "aws-config"
    config.write_text(
        f"[default]\nendpoint_url = {listener.url}\nregion = eu-west-3\n"
        "s3 =\n  addressing_style = virtual\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config))
    monkeypatch.setenv("AWS_ENDPOINT_URL", listener.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", listener.url)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(config))  # not a certificate: fails if used
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(proxy, listener.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with _reopen(linked) as client:
        assert client.fs.read_file("/k") == b"payload"  # presigned GET
        client.connect.link_file("/k2", "store", "k")  # HeadObject through botocore
        client.connect.verify_data_store("store")  # ListObjectsV2
        assert client.fs.read_file("/k2") == b"payload"
    assert listener.connections() == 0


def test_a_store_without_endpoint_signs_for_aws_not_the_environment(
    connected: filespace.Filespace, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty endpoint = AWS's endpoint of the store's region, whatever AWS_ENDPOINT_URL says."""
    from filespace.connect.access import target
    from filespace.objects.s3 import S3Client

    monkeypatch.setenv("AWS_ENDPOINT_URL", listener.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", listener.url)
    connected.connect.add_data_store(
        "aws", filespace.S3DataStoreConfig("AK", "SK", "some-bucket", "eu-west-3", "")
    )
    store = connected._engine.store("aws")
    assert store is not None
    url = S3Client(target(store), "AK", "SK").presign_get("key", 60)
    assert url.startswith("https://s3.eu-west-3.amazonaws.com/some-bucket/key?"), url
    assert listener.connections() == 0
