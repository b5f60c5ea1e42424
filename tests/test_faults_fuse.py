"""HTTP faults under a FUSE mount: a program reading a linked file through the mount
gets every byte right while faults are retried, and ``EIO`` when they last."""

from __future__ import annotations

import errno
import random
from pathlib import Path

import pytest

from filespace.testing import SeaweedS3
from tests import test_fuse
from tests.cli_helpers import add_store, all_secrets, link, new_cli
from tests.faultproxy import Fault, FaultProxy, Rule

pytestmark = test_fuse.pytestmark
pytest_plugins = ["tests.cli_helpers"]

B = 256 * 1024


def test_reads_through_the_mount_ride_out_faults_and_fail_with_eio(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str
) -> None:
    data = random.Random(4).randbytes(6 * B + 11)
    s3 = s3_server.client()
    etag = s3.put_object(Bucket=bucket, Key="f.bin", Body=data)["ETag"].strip('"')
    with FaultProxy(s3_server.endpoint) as proxy:
        cli = new_cli(tmp_path / "home", all_secrets(s3_server))
        cli.ok("init", str(cli.location), "--name", "faulty")
        cli.ok("connect", "enable")
        add_store(cli, s3_server, "p", bucket, endpoint=proxy.endpoint)
        link(cli, "/f.bin", "p", "f.bin", len(data), etag)
        with test_fuse.mounted(cli, cli.home / "mnt") as (mnt, _):
            proxy.rules.append(Rule(Fault.RESET_MID, method="GET", nth={1}))
            proxy.rules.append(Rule(Fault.S503, method="GET", nth={2}))
            assert (mnt / "f.bin").read_bytes() == data
            assert len(proxy.faults()) == 2
            # Every request fails from now on: a read that needs the server is EIO.
            proxy.rules[:] = [Rule(Fault.S500, method="GET")]
            with (
                open(mnt / "f.bin", "rb") as handle,
                pytest.raises(OSError, match="Input/output error") as info,
            ):
                handle.read()
            assert info.value.errno == errno.EIO
