"""Presigned GETs: botocore's address and botocore's signer, without a whole request each time."""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.error import HTTPError

import pytest

from filespace.objects.s3 import S3Client, S3Target, _Presigner
from filespace.testing import SeaweedS3

KEYS = ["plain", "a b+c/é%~?#&=;", "/leading//double", "üñí/çødé 🎉", "d/" + "x" * 200]
TARGETS = [
    S3Target("bkt", "us-east-1", "http://127.0.0.1:8333"),
    S3Target("bkt", "eu-west-1", "http://localhost:8333", virtual_addressing=True),
    S3Target("my.bkt", "eu-west-1"),
    S3Target("bkt", "us-east-1"),
    S3Target("bkt", "ap-south-1", virtual_addressing=True),
]


def _botocore(client: S3Client, key: str, expires_s: int) -> str:
    url: str = client.client.generate_presigned_url(
        "get_object", Params={"Bucket": client.target.bucket, "Key": key}, ExpiresIn=expires_s
    )
    return url


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.bucket}@{t.endpoint or t.region}")
def test_urls_are_the_ones_botocore_gives(target: S3Target) -> None:
    client = S3Client(target, "AKEXAMPLE", "secret-example")
    for key in KEYS:
        for _ in range(5):  # both within one second: the same X-Amz-Date, the same signature
            ours, theirs = client.presign_get(key, 900), _botocore(client, key, 900)
            if ours.split("X-Amz-Date=")[1][:16] == theirs.split("X-Amz-Date=")[1][:16]:
                break
        assert ours == theirs
    assert client._presigner is not None and client._presigner.base is not None


ENDPOINTS = [
    "http://127.0.0.1:8333",
    "http://127.0.0.1:8333/",
    "https://s3.example.com",
    "https://s3.example.com:443",
    "http://s3.example.com:80",
    "http://Storage.Example.COM:9000",
    "http://[::1]:9000",
    "https://minio.internal:9000/",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("bucket", ["bkt", "my.bkt-2", "Upper_Case"])
def test_a_written_out_address_is_botocores_or_none(endpoint: str, bucket: str) -> None:
    from botocore.credentials import Credentials

    target = S3Target(bucket, "eu-west-1", endpoint)
    derived = _Presigner.derive(target, Credentials("AK", "SK"))
    learned = _Presigner.learn(S3Client(target, "AK", "SK"))
    assert derived is None or (derived.base, derived.region) == (learned.base, learned.region)
    if bucket != "Upper_Case":
        assert derived is not None  # every plain endpoint is written out, no client built


def test_no_client_is_built_to_sign_for_a_path_style_endpoint() -> None:
    client = S3Client(TARGETS[0], "AKEXAMPLE", "secret-example")
    assert client.presign_get("plain", 60).startswith("http://127.0.0.1:8333/bkt/plain?")
    assert client._client is None
    virtual = S3Client(TARGETS[1], "AKEXAMPLE", "secret-example")
    virtual.presign_get("plain", 60)
    assert virtual._client is not None  # botocore resolves a virtual-hosted address


def test_a_probe_of_another_shape_leaves_every_url_to_botocore() -> None:
    usual = _botocore(S3Client(TARGETS[0], "AK", "SK"), "filespace-presign-probe", 60)
    assert _Presigner.from_probe(usual, None).base == "http://127.0.0.1:8333/bkt/"
    for odd in (
        usual + "&x-id=GetObject",  # a field the signer would not add
        usual.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-amz-date"),
        usual.replace("%2Fs3%2F", "%2Fs3-object-lambda%2F"),
        usual.replace("/filespace-presign-probe?", "/filespace-presign-probe/x?"),
    ):
        assert _Presigner.from_probe(odd, None).base is None, odd


def test_the_server_takes_them_and_refuses_them_changed(
    s3_server: SeaweedS3, bucket: str, s3_admin: Any
) -> None:
    target = S3Target(bucket, "us-east-1", s3_server.endpoint)
    who = s3_server.admin
    client = S3Client(target, who.access_key, who.secret_key)
    for key in KEYS:
        s3_admin.put_object(Bucket=bucket, Key=key, Body=key.encode())
        with urllib.request.urlopen(client.presign_get(key, 60)) as answer:  # noqa: S310
            assert answer.read() == key.encode()
    tampered = client.presign_get("plain", 60).replace("/plain?", "/a%20b?")
    with pytest.raises(HTTPError, match="403"):
        urllib.request.urlopen(tampered)  # noqa: S310
