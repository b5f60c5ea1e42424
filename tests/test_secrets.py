"""Secrets never rest in plaintext and never show in output."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import S3Credentials
from filespace.sealing import Sealer
from filespace.testing import SeaweedS3
from tests.fsfixtures import store_config


def _all_bytes(root: Path) -> bytes:
    chunks = []
    for folder, _, files in os.walk(root):
        for name in files:
            chunks.append((Path(folder) / name).read_bytes())
    return b"\n".join(chunks)


def test_no_secret_in_any_engine_file(
    tmp_path: Path, s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    location = tmp_path / "space"
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"abc")
    fsp = filespace.create(location, name="secret-test")
    fsp.connect.enable()
    fsp.connect.add_data_store("store", store_config(s3_server, bucket))
    fsp.connect.link_file("/k", "store", "k")
    assert fsp.fs.read_file("/k") == b"abc"
    spare = s3_server.spare
    fsp.connect.rekey_data_store("store", S3Credentials(spare.access_key, spare.secret_key))
    assert fsp.fs.read_file("/k") == b"abc"
    # Checked while open too: the WAL holds recent pages before a checkpoint.
    for secret in (s3_server.admin.secret_key, spare.secret_key):
        assert secret.encode() not in _all_bytes(location)
    fsp.close()
    raw = _all_bytes(location)
    for secret in (s3_server.admin.secret_key, spare.secret_key):
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw
    assert spare.access_key.encode() in raw  # the access key is not a secret: the check works


def test_sealed_secret_is_bound_to_its_record() -> None:
    key = os.urandom(32)
    sealer = Sealer(key, "space-1", "kid")
    sealed = sealer.seal("top secret", "data_store:a:secret_key")
    assert sealer.open(sealed, "data_store:a:secret_key") == "top secret"
    with pytest.raises(filespace.WrongKeyError):
        sealer.open(sealed, "data_store:b:secret_key")
    with pytest.raises(filespace.WrongKeyError):
        Sealer(key, "space-2", "kid").open(sealed, "data_store:a:secret_key")
    with pytest.raises(filespace.WrongKeyError):
        Sealer(os.urandom(32), "space-1", "kid").open(sealed, "data_store:a:secret_key")
    assert sealer.seal("top secret", "r") != sealer.seal("top secret", "r")  # fresh nonce
    assert "top secret" not in repr(sealer) and key.hex() not in repr(sealer)


def test_reprs_of_live_objects(connected: filespace.Filespace, s3_server: SeaweedS3) -> None:
    secret = s3_server.admin.secret_key
    info = connected.connect.get_data_store("store")
    assert info is not None and info.secret_key == secret
    for thing in (
        info,
        connected,
        connected.connect,
        connected.fs,
        connected.connect.client_for("store"),
    ):
        assert secret not in repr(thing)


def test_no_secret_in_postgres_rows(s3_server: SeaweedS3, s3_admin: Any, bucket: str) -> None:
    """The same property on the shared engine: no row of any table holds the secret."""
    import psycopg

    from tests.fsfixtures import postgres_schema_url

    with postgres_schema_url() as url, tempfile.TemporaryDirectory() as blocks:
        with filespace.create(url, name="pg-secret", data=Path(blocks).as_uri()) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("store", store_config(s3_server, bucket))
            spare = s3_server.spare
            fsp.connect.rekey_data_store("store", S3Credentials(spare.access_key, spare.secret_key))
            schema = fsp.engine_url.rsplit("schema=", 1)[1]
        base = url.split("?")[0]
        dumped = []
        with psycopg.connect(base) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
            assert len(tables) >= 5
            for (table,) in tables:
                rows = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()  # noqa: S608 - names from the catalog
                dumped.append(repr(rows))
        text = "\n".join(dumped)
        assert spare.access_key in text  # the dump is real
        for secret in (s3_server.admin.secret_key, spare.secret_key):
            assert secret not in text
