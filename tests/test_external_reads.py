"""Reading linked objects: ranges, seeks, staleness, read-only, credentials, URL expiry."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import Filespace, S3Credentials
from filespace.connect.signing import UrlSigner
from filespace.objects import http
from filespace.objects.s3 import S3Client, S3Target
from filespace.testing import SeaweedS3
from tests import waiting


@pytest.fixture
def linked(connected: Filespace, s3_admin: Any, bucket: str) -> tuple[Filespace, bytes]:
    data = os.urandom(3 * 1024 * 1024 + 17)
    s3_admin.put_object(Bucket=bucket, Key="blob.bin", Body=data)
    connected.connect.link_file("/blob.bin", "store", "blob.bin")
    return connected, data


def test_read_whole_and_ranges(linked: tuple[Filespace, bytes]) -> None:
    fsp, data = linked
    assert fsp.fs.read_file("/blob.bin") == data
    with fsp.fs.open("/blob.bin", "rb") as handle:
        handle.seek(1_000_000)
        assert handle.read(10) == data[1_000_000:1_000_010]
        assert handle.tell() == 1_000_010
        handle.seek(-5, io.SEEK_END)
        assert handle.read() == data[-5:]
        assert handle.read() == b""
        handle.seek(10, io.SEEK_SET)
        handle.seek(5, io.SEEK_CUR)
        assert handle.read(3) == data[15:18]
    with fsp.fs.open("/blob.bin", "rb", buffering=0) as raw:
        buffer = bytearray(100)
        raw.seek(len(data) - 40)
        assert raw.readinto(buffer) == 40
        assert bytes(buffer[:40]) == data[-40:]
        assert raw.readinto(buffer) == 0


def test_external_files_are_read_only(linked: tuple[Filespace, bytes]) -> None:
    fsp, data = linked
    for mode in ("wb", "ab", "r+b", "w", "a+b"):
        with pytest.raises(PermissionError) as info:
            fsp.fs.open("/blob.bin", mode)
        assert info.value.errno == errno.EROFS
    with pytest.raises(PermissionError) as write:
        fsp.fs.write_file("/blob.bin", b"x")
    assert write.value.errno == errno.EROFS
    with pytest.raises(filespace.ReadOnlyFileError) as truncate:
        fsp.fs.truncate("/blob.bin", 0)
    assert truncate.value.errno == errno.EROFS and truncate.value.filename == "/blob.bin"
    with fsp.fs.open("/blob.bin", "rb") as buffered:
        assert not buffered.writable()
        with pytest.raises(io.UnsupportedOperation, match="truncate"):  # as for any "rb" file
            buffered.truncate(0)
    with fsp.fs.open("/blob.bin", "rb", buffering=0) as raw:
        with pytest.raises(filespace.ReadOnlyFileError) as raw_write:
            raw.write(b"x")
        assert raw_write.value.errno == errno.EROFS
        with pytest.raises(filespace.ReadOnlyFileError) as raw_truncate:
            raw.truncate(0)
        assert raw_truncate.value.errno == errno.EROFS
    assert fsp.fs.read_file("/blob.bin") == data  # nothing changed
    assert fsp.fs.get_entry("/blob.bin").size == len(data)
    fsp.fs.move("/blob.bin", "/renamed.bin")  # moving renames the link
    assert fsp.fs.read_file("/renamed.bin") == data


def test_changed_object_is_stale_never_wrong_bytes(
    linked: tuple[Filespace, bytes], s3_admin: Any, bucket: str
) -> None:
    fsp, data = linked
    handle = fsp.fs.open("/blob.bin", "rb", buffering=0)
    assert handle.read(4) == data[:4]
    s3_admin.put_object(Bucket=bucket, Key="blob.bin", Body=os.urandom(len(data)))  # same size
    with pytest.raises(filespace.StaleFileError) as info:
        handle.read(4)
    assert info.value.errno == errno.ESTALE
    assert isinstance(info.value, filespace.StaleFileError)
    assert "/blob.bin" in str(info.value)
    handle.close()
    with pytest.raises(filespace.StaleFileError) as again:
        fsp.fs.read_file("/blob.bin")
    assert again.value.errno == errno.ESTALE


def test_deleted_object_is_stale(
    linked: tuple[Filespace, bytes], s3_admin: Any, bucket: str
) -> None:
    fsp, _ = linked
    s3_admin.delete_object(Bucket=bucket, Key="blob.bin")
    with pytest.raises(filespace.StaleFileError) as info:
        fsp.fs.read_file("/blob.bin")
    assert info.value.errno == errno.ESTALE


def test_rekey_switches_reads_to_new_identity(
    linked: tuple[Filespace, bytes], s3_server: SeaweedS3
) -> None:
    fsp, data = linked
    noaccess, reader = s3_server.noaccess, s3_server.reader
    fsp.connect.rekey_data_store("store", S3Credentials(noaccess.access_key, noaccess.secret_key))
    with pytest.raises(filespace.ExternalReadError) as denied:
        fsp.fs.read_file("/blob.bin")
    assert denied.value.errno == errno.EIO
    assert noaccess.secret_key not in str(denied.value)
    fsp.connect.rekey_data_store(
        "store", new_access_key=reader.access_key, new_secret_key=reader.secret_key
    )
    assert fsp.fs.read_file("/blob.bin") == data


def test_rekey_retires_the_urls_open_handles_hold(
    linked: tuple[Filespace, bytes], s3_server: SeaweedS3
) -> None:
    # A handle reuses its URL for a moment; a rekey in this process must end
    # that at once, for this Filespace and any other open in the process.
    fsp, data = linked
    noaccess = S3Credentials(s3_server.noaccess.access_key, s3_server.noaccess.secret_key)
    with filespace.open(fsp.location) as other:
        handles = [f.fs.open("/blob.bin", "rb", buffering=0) for f in (fsp, other)]
        for handle in handles:
            assert handle.read(10) == data[:10]
        fsp.connect.rekey_data_store("store", noaccess)
        for handle in handles:
            with pytest.raises(filespace.ExternalReadError) as denied:
                handle.read(10)
            assert denied.value.errno == errno.EIO
            handle.close()


def test_a_handle_opened_before_a_rekey_reads_with_the_new_credentials(
    linked: tuple[Filespace, bytes], s3_server: SeaweedS3
) -> None:
    # Signed with the old credentials, the handle's URL must not be sent again;
    # the next read signs with the new ones, whichever way they go.
    fsp, data = linked
    noaccess = S3Credentials(s3_server.noaccess.access_key, s3_server.noaccess.secret_key)
    reader = S3Credentials(s3_server.reader.access_key, s3_server.reader.secret_key)
    for buffering in (0, -1):
        with fsp.fs.open("/blob.bin", "rb", buffering=buffering) as handle:
            assert handle.read(10) == data[:10]
            fsp.connect.rekey_data_store("store", noaccess)
            handle.seek(2_000_000)
            with pytest.raises(filespace.ExternalReadError) as denied:
                handle.read(10)
            assert denied.value.errno == errno.EIO
            fsp.connect.rekey_data_store("store", reader)
            handle.seek(3_000_000)
            assert handle.read(10) == data[3_000_000:3_000_010]


def test_rekey_by_another_client_is_picked_up(
    linked: tuple[Filespace, bytes], s3_server: SeaweedS3
) -> None:
    fsp, data = linked
    assert fsp.fs.read_file("/blob.bin")[:10] == data[:10]  # signer cached here
    location = fsp.location
    with filespace.open(location) as other:
        noaccess = s3_server.noaccess
        other.connect.rekey_data_store(
            "store", S3Credentials(noaccess.access_key, noaccess.secret_key)
        )
    # The first client's next read uses the rotated credentials, not its cached URL.
    with pytest.raises(filespace.ExternalReadError) as denied:
        fsp.fs.read_file("/blob.bin")
    assert denied.value.errno == errno.EIO


def test_presigned_url_is_resigned_before_expiry(
    s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"abcdef")
    client = S3Client(
        S3Target(bucket=bucket, region=s3_server.region, endpoint=s3_server.endpoint),
        s3_server.admin.access_key,
        s3_server.admin.secret_key,
    )
    # The signer's own clock is the test's: whether a URL is reused or signed
    # again depends on what the clock says, not on how quickly this test runs.
    now = [0.0]
    signer = UrlSigner(client, lifetime_s=2, clock=lambda: now[0])
    first = signer.url("k")
    now[0] = 0.99  # more than the margin (1 s of the 2) is left: reused
    assert signer.url("k") == first
    waiting.until(lambda: waiting.expired(first), "the server to refuse the 2-second URL")
    now[0] = 1.01  # less than the margin left: signed again
    second = signer.url("k")
    assert second != first
    assert http.get_range(second, 0, 3, http.Identity()) == b"abc"


def test_unreachable_endpoint_is_eio(
    connected: Filespace, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    from tests.fsfixtures import store_config

    connected.connect.add_data_store(
        "down", store_config(s3_server, bucket, endpoint="http://127.0.0.1:9")
    )
    connected.connect.link_file("/down", "down", "k", size=10, checksum="e")
    with pytest.raises(filespace.ExternalReadError) as info:
        connected.fs.read_file("/down")
    assert info.value.errno == errno.EIO
    assert "/down" in str(info.value)
