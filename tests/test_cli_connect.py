"""``connect status`` and ``connect disable``, store-name hints, and the location from FILESPACE."""

from __future__ import annotations

from pathlib import Path

from filespace.testing import SeaweedS3
from tests.cli_helpers import add_store, all_secrets, link, new_cli

pytest_plugins = ["tests.cli_helpers"]


def test_status_and_disable(tmp_path: Path, s3_server: SeaweedS3, shared_bucket: str) -> None:
    cli = new_cli(tmp_path, all_secrets(s3_server))
    cli.ok("init", str(cli.location), "--name", "st")
    off = cli.ok("connect", "status")
    assert "connect       not enabled (run filespace connect enable)" in off.out
    assert cli.ok("connect", "status", "--json").json() == {
        "format_version": 9,
        "supported": True,
        "enabled": False,
        "data_stores": None,
        "linked_files": 0,
        "linked_size": 0,
    }
    cli.ok("connect", "enable")
    add_store(cli, s3_server, "lake", shared_bucket)
    link(cli, "/d/a.csv", "lake", "a.csv", size=10)
    link(cli, "/d/b.csv", "lake", "b.csv", size=20)
    status = cli.ok("connect", "status")
    assert "connect       enabled" in status.out
    assert "linked files  2 (30 B)" in status.out
    assert "lake   " in status.out and shared_bucket in status.out
    doc = cli.ok("connect", "status", "--json").json()
    assert doc["data_stores"] == [{"name": "lake", "bucket": shared_bucket, "linked_files": 2}]

    refused = cli.fails("connect", "disable")
    assert "Connect is still in use: 2 linked files; nothing was changed" in refused.err
    assert "filespace unlink --all / --yes" in refused.err
    cli.ok("unlink", "--all", "/", "--yes")  # the hint works as written
    assert cli.ok("connect", "disable", "--dry-run").out == "would disable Connect on 'st'\n"
    assert cli.ok("connect", "status", "--json").json()["enabled"] is True
    assert cli.ok("connect", "disable").out == "disabled Connect on 'st'\n"
    assert cli.ok("connect", "status", "--json").json()["enabled"] is False
    assert cli.ok("connect", "disable").out == "Connect is not enabled on 'st'\n"
    cli.ok("connect", "enable")
    assert "lake" in cli.ok("store", "list", "--no-verify").out  # stores were kept


def test_status_of_an_old_format(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location), "--format", "8")
    status = cli.ok("connect", "status")
    assert "unavailable: format 8 (run filespace upgrade)" in status.out


def test_a_mistyped_store_name_gets_suggestions(
    tmp_path: Path, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    cli = new_cli(tmp_path, all_secrets(s3_server))
    cli.ok("init", str(cli.location))
    cli.ok("connect", "enable")
    assert "has no data stores" in cli.fails("store", "show", "lake").err
    add_store(cli, s3_server, "research", shared_bucket)
    add_store(cli, s3_server, "archive", shared_bucket)
    typo = cli.fails("files", "count", "--store", "reserch")
    assert "no data store named 'reserch'; did you mean 'research'?" in typo.err
    linked = cli.fails(
        "link", "/x", "--store", "reserch", "--key", "k", "--size", "1", "--checksum", "e"
    )
    assert "did you mean 'research'?" in linked.err
    far = cli.fails("mirror", "/d", "--store", "zzz")
    assert "the data stores are: archive, research" in far.err


def test_init_and_mount_take_the_location_from_filespace(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    created = cli.ok("init", "--name", "env")  # FILESPACE names the location
    assert f"at {cli.location}" in created.out
    assert cli.ok("info", "--json").json()["name"] == "env"
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    missing = tmp_path / "missing"
    refused = cli.fails("mount", str(mountpoint), env={"FILESPACE": str(missing)})
    assert str(missing) in refused.err  # it tried FILESPACE's location
    nothing = cli.fails("mount", str(mountpoint), env={"FILESPACE": ""})
    assert "no filespace given" in nothing.err
    assert cli.usage_error("mount", "a", "b", "c").code == 2
