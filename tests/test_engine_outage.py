"""The PostgreSQL server restarts in the middle of a long mirror: nothing half-applied.

The server is a throw-away cluster of this module's own (``pg_cluster``), never
the machine's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace import MirrorReport
from filespace.connect import mirror
from filespace.testing import SeaweedS3
from tests.fsfixtures import postgres_schema_url, store_config
from tests.pgcluster import PgCluster
from tests.test_link_files import put_objects, s3_client
from tests.test_mirror import bucket_links, links_under


def test_mirror_rides_out_a_server_restart(
    pg_cluster: PgCluster,
    s3_server: SeaweedS3,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mirror, "BATCH_SIZE", 200)
    s3 = s3_client(s3_server)
    objects = {f"p/d{i % 10}/o{i:05d}": f"v{i}".encode() for i in range(1500)}
    put_objects(s3, bucket, objects)
    restarted: list[int] = []

    def progress(report: MirrorReport) -> None:
        if not restarted and report.added >= 400:
            pg_cluster.restart()
            restarted.append(report.added)

    with postgres_schema_url(pg_cluster.url) as url:
        with filespace.create(url, name="outage", data=(tmp_path / "b").as_uri()) as fsp:
            fsp.connect.enable()
            fsp.connect.add_data_store("store", store_config(s3_server, bucket))
            report = fsp.connect.mirror("store", "p/", "/dest", progress=progress)
            assert restarted, "the server was never restarted"
            assert report.added == 1500
            wanted = bucket_links(s3, bucket, "p/", strip=2)
            assert links_under(fsp, "/dest") == wanted
            assert fsp.connect.count_external_files("store") == 1500
            again = fsp.connect.mirror("store", "p/", "/dest")
            assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 1500)
            stats: Any = fsp.fs.get_statistics()
            assert stats.external_files_count == 1500
