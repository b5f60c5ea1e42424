"""``mirror``'s arguments: each refused by name before anything is listed or made."""

from __future__ import annotations

import re

import pytest

from filespace import Filespace, MirrorReport
from filespace.testing import SeaweedS3
from tests.test_link_files import put_objects, s3_client


@pytest.mark.parametrize("flag", ["strip_prefix", "delete", "dry_run"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_flag_that_is_not_a_bool_is_refused_by_name(
    connected: Filespace, flag: str, value: object
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(flag)} must be a bool$"):
        connected.connect.mirror("store", "", "/m", **{flag: value})  # type: ignore[arg-type]
    assert not connected.fs.exists("/m")  # refused before the destination is made


def test_a_progress_that_cannot_be_called_is_refused(connected: Filespace) -> None:
    with pytest.raises(ValueError, match=r"^progress must be callable or None$"):
        connected.connect.mirror("store", "", "/m", progress="print")  # type: ignore[arg-type]
    assert not connected.fs.exists("/m")


def test_a_callable_progress_is_called_with_the_report_so_far(
    connected: Filespace, s3_server: SeaweedS3, bucket: str
) -> None:
    put_objects(s3_client(s3_server), bucket, {"a": b"1", "b/c": b"22"})
    seen: list[MirrorReport] = []
    report = connected.connect.mirror("store", "", "/m", progress=seen.append)
    assert report.added == 2 and seen and seen[-1].added == 2
    assert connected.fs.read_file("/m/b/c") == b"22"
