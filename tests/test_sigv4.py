"""Presigned GET URLs signed by ``objects.sigv4``: the same bytes botocore signs for the
same instant, and accepted by a real S3 server (SeaweedFS checks signatures)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3

from filespace.objects.s3 import S3Client, S3Target
from filespace.objects.sigv4 import PROBE_KEY, Presigner
from filespace.testing import SeaweedS3

KEYS = [
    "plain.bin",
    "dir/sub/file.csv",
    "a b/c+d~e%f/é.txt",
    "sp ace//double//slash",
    "/leading",
    "trailing/",
    "sym!$&'()*,;=:@[]",
    "日本語/ファイル",
    "emoji-\U0001f600",
    "q?mark#hash",
]
TARGETS = [
    S3Target(bucket="b", region="us-east-1", endpoint="", virtual_addressing=False),
    S3Target(bucket="some.bucket", region="eu-west-3", endpoint="", virtual_addressing=True),
    S3Target(
        bucket="b", region="ap-south-1", endpoint="http://127.0.0.1:9/", virtual_addressing=False
    ),
    S3Target(bucket="b", region="us-east-1", endpoint="https://s3.example.com:8443/base"),
]


def _instant(url: str) -> datetime:
    stamp = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    return datetime.strptime(stamp + "+0000", "%Y%m%dT%H%M%SZ%z")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.region}-{t.endpoint or 'aws'}")
def test_urls_equal_botocores_for_the_same_instant(target: S3Target) -> None:
    client = S3Client(target, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    probe = client._botocore_presign(PROBE_KEY, 900)
    presigner = Presigner(probe, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    for key in KEYS:
        for expires in (1, 900, 604800):
            expected = client._botocore_presign(key, expires)
            assert presigner.url(key, expires, _instant(expected)) == expected, key


def test_a_url_botocore_would_not_lay_out_so_is_refused() -> None:
    with pytest.raises(ValueError, match="probe"):
        Presigner("https://s3.amazonaws.com/b/other?X-Amz-Credential=A/1/r/s3/x", "A", "S")


def test_the_server_accepts_them_and_refuses_them_changed(
    s3_server: SeaweedS3, s3_admin: Any, bucket: str
) -> None:
    pool = urllib3.PoolManager()
    target = S3Target(bucket=bucket, region=s3_server.region, endpoint=s3_server.endpoint)
    client = S3Client(target, s3_server.admin.access_key, s3_server.admin.secret_key)
    for number, key in enumerate(KEYS):
        if key.startswith("/") or key.endswith("/") or "//" in key:
            continue  # (SeaweedFS folds repeated slashes; a trailing one is a directory)
        body = f"object {number}".encode()
        s3_admin.put_object(Bucket=bucket, Key=key, Body=body)
        url = client.presign_get(key, 600)
        answer = pool.request("GET", url)
        assert (answer.status, answer.data) == (200, body), key
    url = client.presign_get("plain.bin", 600)
    tampered = url.replace("X-Amz-Expires=600", "X-Amz-Expires=601")
    assert pool.request("GET", tampered).status == 403
    wrong = S3Client(target, s3_server.admin.access_key, "not-the-secret").presign_get(
        "plain.bin", 600
    )
    assert pool.request("GET", wrong).status == 403
