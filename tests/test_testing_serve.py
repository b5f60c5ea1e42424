"""``python -m filespace.testing serve --detach``: one command starts a local S3 for a shell."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import boto3


def test_serve_detach_prints_exports_and_kill_removes_everything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "filespace.testing", "serve", "--detach"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()
    )
    assert set(exports) == {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "FILESPACE_S3_PID",
    }
    pid = int(exports["FILESPACE_S3_PID"])
    assert f"kill {pid}" in result.stderr
    watch = os.pidfd_open(pid)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_DEFAULT_REGION"],
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="research-data")  # it is up when the command returns
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["research-data"]
        assert len(list(tmp_path.iterdir())) == 1  # its data directory
    finally:
        os.kill(pid, signal.SIGTERM)
        ready, _, _ = select.select([watch], [], [], 60)  # the pidfd turns readable at exit
        os.close(watch)
    assert ready, f"process {pid} did not stop"
    assert list(tmp_path.iterdir()) == []  # its data went with it
