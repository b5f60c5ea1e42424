"""Real changes to a SeaweedFS bucket, with the S3 event records S3 would send for them.

SeaweedFS sends no AWS-format notifications, so the tests make each change for
real (the size and ETag come from the server's answers) and write the record
the AWS, MinIO and Ceph servers send for it: key URL-encoded with ``+`` for a
space, a sequencer that grows with every change.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote_plus


def record(
    bucket: str,
    key: str,
    sequencer: int,
    *,
    size: int | None = None,
    etag: str = "",
    name: str = "",
) -> dict[str, Any]:
    """One event record; a creation when ``size`` is given, else a removal."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": f"{sequencer:016X}"}
    if size is not None:
        obj.update(size=size, eTag=etag)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": name or ("ObjectCreated:Put" if size is not None else "ObjectRemoved:Delete"),
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "filespace",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def document(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


class Bucket:
    """Puts and deletes objects for real, keeping the record of each change."""

    def __init__(self, s3: Any, bucket: str, start: int = 1000) -> None:
        self.s3 = s3
        self.name = bucket
        self._clock = itertools.count(start)
        self.records: list[dict[str, Any]] = []

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        answer = self.s3.put_object(Bucket=self.name, Key=key, Body=body)
        made = record(
            self.name, key, next(self._clock), size=len(body), etag=answer["ETag"].strip('"')
        )
        self.records.append(made)
        return made

    def delete(self, key: str) -> dict[str, Any]:
        self.s3.delete_object(Bucket=self.name, Key=key)
        gone = record(self.name, key, next(self._clock))
        self.records.append(gone)
        return gone


def as_message(records: list[dict[str, Any]]) -> bytes:
    """Records as one message body, as a broker carries it."""
    return json.dumps(document(*records)).encode()


def s3_test_event(bucket: str) -> bytes:
    """What S3 sends to a queue when a notification configuration is set: no change."""
    return json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-01-02T03:04:05.678Z",
            "Bucket": bucket,
            "RequestId": "0A1B2C3D4E5F6A7B",
            "HostId": "test-host-id",
        }
    ).encode()


def via_sns(body: bytes) -> bytes:
    """``body`` as S3 -> SNS -> SQS delivers it (raw delivery off): an SNS notification."""
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "4f1d7f1e-0000-4000-8000-000000000001",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:bucket-events",
            "Subject": "Amazon S3 Notification",
            "Message": body.decode(),
            "Timestamp": "2026-01-02T03:04:05.678Z",
            "SignatureVersion": "1",
            "Signature": "c2lnbmF0dXJl",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        }
    ).encode()
