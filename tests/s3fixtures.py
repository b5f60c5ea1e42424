"""pytest fixtures backed by a real local SeaweedFS S3 server.

Registered as a plugin by ``tests/conftest.py``.  One server runs per test
session (see :mod:`filespace.testing`); every test that asks for ``bucket`` gets
a fresh, uniquely named bucket that is emptied and deleted afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from botocore.exceptions import ClientError

from filespace.testing import SeaweedS3
from tests import leakguard, shareds3


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A started SeaweedFS S3 server shared by the whole session.

    With ``FILESPACE_TEST_S3_SHARED`` set, the server another process started
    and described there (``tests/shareds3.py``), used and left running.
    """
    shared = os.environ.get(shareds3.ENV)
    server = (
        shareds3.SharedS3(Path(shared))
        if shared
        else SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    )
    leakguard.remember(
        *(who.secret_key for who in (server.admin, server.reader, server.spare, server.noaccess))
    )
    if not shared:
        server.start()
    try:
        yield server
    finally:
        server.stop(grace=1)


@pytest.fixture(scope="session")
def s3_admin(s3_server: SeaweedS3) -> Any:
    """A boto3 S3 client with the admin identity."""
    return s3_server.client()


@pytest.fixture
def bucket(s3_server: SeaweedS3, s3_admin: Any) -> Iterator[str]:
    """A fresh empty bucket; emptied and deleted after the test."""
    name = s3_server.create_bucket(f"t-{uuid4().hex[:12]}")
    yield name
    # A test may leave the shared server paused or stopped (outage tests);
    # bring it back so cleanup and later tests have a server.
    if s3_server.paused:
        s3_server.resume()
    if not s3_server.running:
        s3_server.start()
    _delete_bucket(s3_admin, name)


def _delete_bucket(s3: Any, name: str) -> None:
    """Delete every object version, pending upload and then the bucket."""
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if doomed:
                s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for up in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError as exc:
        # The test deleted the bucket itself: nothing left to clean.
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
