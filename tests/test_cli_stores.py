"""The ``filespace`` command: Connect and data stores, against a real S3 server."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from filespace.testing import S3Identity, SeaweedS3
from tests.cli_helpers import (
    Cli,
    add_store,
    all_secrets,
    link,
    new_cli,
    store_names,
    unused_port_endpoint,
)

pytest_plugins = ["tests.cli_helpers"]


def _add(
    server: SeaweedS3,
    name: str,
    bucket: str,
    identity: S3Identity | None = None,
    *extra: str,
    endpoint: str | None = None,
) -> list[str]:
    """``store add`` arguments; the secret comes from wherever the test puts it."""
    who = identity or server.admin
    return [
        "store",
        "add",
        name,
        "--bucket",
        bucket,
        "--region",
        server.region,
        "--endpoint",
        endpoint or server.endpoint,
        "--access-key",
        who.access_key,
        *extra,
    ]


def _access_key(cli: Cli, name: str) -> str:
    with cli.api() as fsp:
        return next(s.access_key for s in fsp.connect.list_data_stores() if s.name == name)


def test_connect_must_be_enabled_first(tmp_path: Path, s3_server: SeaweedS3) -> None:
    cli = new_cli(tmp_path, all_secrets(s3_server))
    cli.ok("init", str(cli.location))
    refused = cli.fails("store", "list")
    assert "Connect is not enabled" in refused.err
    assert "filespace connect enable" in refused.err
    assert "would enable" in cli.ok("connect", "enable", "--dry-run").out
    cli.fails("store", "list")
    assert cli.ok("connect", "enable", "--json").json()["enabled"] is True
    assert "already enabled" in cli.ok("connect", "enable").out
    assert cli.ok("info", "--json").json()["connect"]["status"] == "enabled"
    assert cli.ok("store", "list", "--json").json() == {"stores": []}
    assert "no data stores" in cli.ok("store", "list").err


def test_connect_config_shows_and_changes_the_url_policy(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location))
    assert "Connect is not enabled" in cli.fails("connect", "config").err
    cli.ok("connect", "enable")
    shown = cli.ok("connect", "config").out
    assert shown == "private URLs  refused (HTTP links reach public addresses only)\n"
    assert cli.ok("connect", "config", "--json").json() == {
        "dry_run": False,
        "changed": False,
        "settings": {"allow_private_urls": False},
    }
    url = "http://127.0.0.1:9/x"
    refused = cli.fails("link-url", "/x", url, "--size", "3")
    assert refused.err == (
        "error: /x: 127.0.0.1 is a loopback address, which HTTP links may not reach unless a "
        "keyholder allows private URLs (fsp.connect.configure(allow_private_urls=True) or "
        "`filespace connect config --allow-private-urls`)\n"
    )
    planned = cli.ok("connect", "config", "--allow-private-urls", "--dry-run", "--json").json()
    assert planned == {"dry_run": True, "changed": True, "settings": {"allow_private_urls": True}}
    assert "refused" in cli.ok("connect", "config").out
    # Without the key (another user's config directory) nothing can be changed.
    keyless = {"XDG_CONFIG_HOME": str(tmp_path / "elsewhere")}
    denied = cli.fails("connect", "config", "--allow-private-urls", env=keyless)
    assert "no key for filespace" in denied.err
    assert "refused" in cli.ok("connect", "config", env=keyless).out
    done = cli.ok("connect", "config", "--allow-private-urls").out
    assert done == "allowed private URLs for HTTP links on 'fs'\n"
    assert "already allowed" in cli.ok("connect", "config", "--allow-private-urls").out
    assert "allowed (HTTP links may reach" in cli.ok("connect", "config").out
    cli.ok("link-url", "/x", url, "--size", "3")
    changed = cli.ok("connect", "config", "--no-allow-private-urls", "--json").json()
    assert changed == {"dry_run": False, "changed": True, "settings": {"allow_private_urls": False}}
    assert "127.0.0.1 is a loopback address" in cli.fails("cat", "/x").err


def test_add_verifies_with_the_secret_from_stdin(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    secret = s3_server.admin.secret_key
    added = connect_cli.ok(
        *_add(s3_server, "verified", shared_bucket),
        "--secret-key-stdin",
        "--json",
        stdin=secret + "\n",
    )
    assert added.err == ""
    doc = added.json()
    assert (doc["dry_run"], doc["verified"]) == (False, True)
    assert doc["store"]["bucket"] == shared_bucket
    assert "secret_key" not in doc["store"]
    shown = connect_cli.ok("store", "show", "verified", "--json").json()
    assert shown["access_key"] == s3_server.admin.access_key
    assert shown["endpoint"] == s3_server.endpoint
    assert "secret_key" not in shown
    assert "(hidden; --show-secret prints it)" in connect_cli.ok("store", "show", "verified").out
    revealed = connect_cli.run("store", "show", "verified", "--show-secret", reveal=True)
    assert revealed.code == 0
    assert [
        line.split()[-1] for line in revealed.out.splitlines() if line.startswith("secret key")
    ] == [secret]
    as_json = connect_cli.run("store", "show", "verified", "--show-secret", "--json", reveal=True)
    assert as_json.json()["secret_key"] == secret
    status = connect_cli.ok("store", "list", "--json").json()["stores"]
    assert {"name": "verified", "status": "OK", "linked_files": 0}.items() <= next(
        s for s in status if s["name"] == "verified"
    ).items()


def test_secret_from_the_environment(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    env = {"FILESPACE_S3_SECRET_KEY": s3_server.admin.secret_key}
    added = connect_cli.ok(*_add(s3_server, "from-env", shared_bucket), env=env)
    assert added.err == ""
    assert "reachable with these credentials" in added.out


def test_secret_as_an_argument_works_but_warns(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    secret = s3_server.admin.secret_key
    added = connect_cli.ok(*_add(s3_server, "from-arg", shared_bucket), "--secret-key", secret)
    assert added.err.startswith("warning: ")
    assert "visible to other users" in added.err
    assert "from-arg" in store_names(connect_cli)


def test_secret_prompt_on_a_terminal(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    args = _add(s3_server, "prompted", shared_bucket, None, "--no-verify")
    code, text = connect_cli.on_terminal(
        *args, answer=s3_server.admin.secret_key + "\n", after="Secret key"
    )
    assert code == 0, text
    assert "added data store 'prompted'" in text  # and the secret was not echoed
    assert "prompted" in store_names(connect_cli)


def test_secret_problems(connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str) -> None:
    args = _add(s3_server, "no-secret", shared_bucket)
    missing = connect_cli.fails(*args)
    assert "--secret-key-stdin" in missing.err
    assert "FILESPACE_S3_SECRET_KEY" in missing.err
    assert "no secret key" in connect_cli.fails(*args, "--secret-key-stdin", stdin="").err
    two_lines = connect_cli.fails(*args, "--secret-key-stdin", stdin="a\nb\n")
    assert "single line" in two_lines.err
    both = connect_cli.usage_error(*args, "--secret-key-stdin", "--secret-key", "x", stdin="y")
    assert "not both" in both.err
    assert "no-secret" not in store_names(connect_cli)


_WRONG_SECRET = secrets.token_hex(20)


def test_add_refuses_credentials_that_do_not_work(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    admin, noaccess = s3_server.admin, s3_server.noaccess
    nobody = S3Identity("nobody", "NOSUCHACCESSKEY12345", _WRONG_SECRET)
    cases = [  # identity, secret, bucket, endpoint, what the error says
        (admin, _WRONG_SECRET, shared_bucket, None, "the secret key does not match access key"),
        (nobody, _WRONG_SECRET, shared_bucket, None, "is not known at"),
        (noaccess, noaccess.secret_key, shared_bucket, None, "access denied"),
        (admin, admin.secret_key, "no-such-bucket-here", None, "does not exist at"),
        (admin, admin.secret_key, shared_bucket, unused_port_endpoint(), "cannot reach http://"),
    ]
    for identity, secret, bucket, endpoint, expected in cases:
        args = _add(s3_server, "refused", bucket, identity, "--secret-key-stdin", endpoint=endpoint)
        refused = connect_cli.fails(*args, stdin=secret)
        assert expected in refused.err
        assert "--no-verify" in refused.err
        assert _WRONG_SECRET not in refused.out + refused.err
    assert "refused" not in store_names(connect_cli)


def test_list_checks_each_store_live(
    tmp_path: Path, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    cli = new_cli(tmp_path, all_secrets(s3_server))
    cli.ok("init", str(cli.location))
    cli.ok("connect", "enable")
    cases = {
        "st-ok": (s3_server.admin, shared_bucket, None),
        "st-auth": (s3_server.noaccess, shared_bucket, None),
        "st-bucket": (s3_server.admin, "no-such-bucket-here", None),
        "st-down": (s3_server.admin, shared_bucket, unused_port_endpoint()),
    }
    for name, (who, bucket, endpoint) in cases.items():
        add_store(cli, s3_server, name, bucket, endpoint=endpoint, identity=who)
    listed = {s["name"]: s for s in cli.ok("store", "list", "--json").json()["stores"]}
    assert listed["st-ok"]["status"] == "OK"
    assert listed["st-auth"]["status"] == "auth failed"
    assert listed["st-bucket"]["status"] == "no such bucket"
    assert listed["st-down"]["status"] == "unreachable"
    assert "cannot reach" in listed["st-down"]["status_detail"]
    table = cli.ok("store", "list").out.splitlines()
    assert table[0].split() == ["name", "bucket", "region", "endpoint", "linked", "files", "status"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert rows["st-auth"].endswith("auth failed")
    assert rows["st-down"].endswith("unreachable")
    assert rows["st-ok"].split()[1:5] == [shared_bucket, s3_server.region, s3_server.endpoint, "0"]
    unchecked = cli.ok("store", "list", "--no-verify", "--json").json()["stores"]
    assert [s["status"] for s in unchecked] == ["-"] * 4


def test_add_dry_run_duplicates_and_bad_input(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    secret = s3_server.admin.secret_key
    args = _add(s3_server, "dry", shared_bucket, None, "--secret-key-stdin")
    assert "would add data store 'dry'" in connect_cli.ok(*args, "--dry-run", stdin=secret).out
    assert "dry" not in store_names(connect_cli)
    assert (
        "secret key does not match"
        in connect_cli.fails(*args, "--dry-run", stdin=_WRONG_SECRET).err
    )
    assert "not checked (--no-verify)" in connect_cli.ok(*args, "--no-verify", stdin=secret).out
    assert "already exists" in connect_cli.fails(*args, stdin=secret).err
    bad_bucket = _add(s3_server, "bad", "Bad_Bucket", None, "--secret-key-stdin")
    assert "invalid bucket name" in connect_cli.fails(*bad_bucket, stdin=secret).err
    bad_name = _add(s3_server, "bad name", shared_bucket, None, "--secret-key-stdin")
    assert "invalid data store name" in connect_cli.fails(*bad_name, stdin=secret).err
    bad_url = _add(s3_server, "bad", shared_bucket, None, "--secret-key-stdin", endpoint="ftp://x")
    assert "invalid endpoint" in connect_cli.fails(*bad_url, stdin=secret).err
    connect_cli.usage_error(*args, "--url-expiration", "0", stdin=secret)


@pytest.mark.parametrize(
    "command",
    [
        ["store", "show", "nope"],
        ["store", "remove", "nope", "--yes"],
        ["store", "rekey", "nope", "--access-key", "AKIA", "--secret-key-stdin"],
        ["files", "count", "--store", "nope"],
        ["files", "list", "--store", "nope"],
        ["link", "/x", "--store", "nope", "--key", "k"],
        ["unlink", "--all", "/", "--store", "nope"],
    ],
)
def test_unknown_store(connect_cli: Cli, command: list[str]) -> None:
    secret = secrets.token_hex(20) + "\n"  # long enough to be masked, not withheld
    assert "no data store named 'nope'" in connect_cli.fails(*command, stdin=secret).err


def test_rekey_verifies_the_new_credentials(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    s3_server.client().put_object(Bucket=shared_bucket, Key="rekey/obj", Body=b"rotated")
    add_store(connect_cli, s3_server, "rot", shared_bucket)
    head = s3_server.client().head_object(Bucket=shared_bucket, Key="rekey/obj")
    link(connect_cli, "/rot.txt", "rot", "rekey/obj", 7, head["ETag"])
    spare, noaccess = s3_server.spare, s3_server.noaccess
    base = ["store", "rekey", "rot", "--secret-key-stdin", "--access-key"]
    denied = connect_cli.fails(*base, noaccess.access_key, stdin=noaccess.secret_key)
    assert "access denied" in denied.err
    wrong = connect_cli.fails(*base, spare.access_key, stdin=_WRONG_SECRET)
    assert "secret key does not match" in wrong.err
    planned = connect_cli.ok(*base, spare.access_key, "--dry-run", stdin=spare.secret_key)
    assert "would rotate" in planned.out
    assert _access_key(connect_cli, "rot") == s3_server.admin.access_key
    done = connect_cli.ok(*base, spare.access_key, "--json", stdin=spare.secret_key).json()
    assert done == {
        "dry_run": False,
        "verified": True,
        "store": "rot",
        "access_key": spare.access_key,
    }
    assert _access_key(connect_cli, "rot") == spare.access_key
    assert connect_cli.bytes_out("cat", "/rot.txt") == b"rotated"
    unverified = connect_cli.ok(
        *base, noaccess.access_key, "--no-verify", stdin=noaccess.secret_key
    )
    assert "rotated" in unverified.out
    assert _access_key(connect_cli, "rot") == noaccess.access_key
    connect_cli.ok("unlink", "/rot.txt")


def test_remove(connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str) -> None:
    add_store(connect_cli, s3_server, "busy", shared_bucket)
    link(connect_cli, "/busy/one", "busy", "one")
    link(connect_cli, "/busy/two", "busy", "two")
    refused = connect_cli.fails("store", "remove", "busy", "--yes")
    assert "still has 2 linked files" in refused.err
    assert "busy" in store_names(connect_cli)
    # The hint is a command that works as given: off a terminal it needs --yes.
    hint = refused.err.split("unlink them first: ")[1].removesuffix(")\n")
    assert hint == "filespace unlink --all / --store busy --yes"
    code, text = connect_cli.on_terminal("store", "remove", "busy")
    assert code == 1 and "(unlink them first: filespace unlink --all / --store busy)" in text
    connect_cli.ok(*hint.split()[1:])
    connect_cli.ok("store", "remove", "busy", "--yes")
    assert "busy" not in store_names(connect_cli)
    add_store(connect_cli, s3_server, "idle", shared_bucket)
    assert "--yes" in connect_cli.fails("store", "remove", "idle").err
    assert "would remove" in connect_cli.ok("store", "remove", "idle", "--dry-run").out
    assert "idle" in store_names(connect_cli)
    assert connect_cli.ok("store", "remove", "idle", "-y", "--json").json() == {
        "dry_run": False,
        "removed": ["idle"],
    }
    assert "idle" not in store_names(connect_cli)


def test_remove_asks_on_a_terminal(
    connect_cli: Cli, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    add_store(connect_cli, s3_server, "asked", shared_bucket)
    code, text = connect_cli.on_terminal("store", "remove", "asked", answer="n\n")
    assert (code, "Remove data store 'asked'" in text) == (1, True)
    assert "asked" in store_names(connect_cli)
    code, text = connect_cli.on_terminal("store", "remove", "asked", answer="y\n")
    assert code == 0, text
    assert "asked" not in store_names(connect_cli)


def test_cleanup(tmp_path: Path, s3_server: SeaweedS3, shared_bucket: str) -> None:
    cli = new_cli(tmp_path, all_secrets(s3_server))
    cli.ok("init", str(cli.location))
    cli.ok("connect", "enable")
    dead = unused_port_endpoint()
    add_store(cli, s3_server, "alive-empty", shared_bucket)
    add_store(cli, s3_server, "dead-empty", shared_bucket, endpoint=dead)
    add_store(cli, s3_server, "dead-busy", shared_bucket, endpoint=dead)
    link(cli, "/kept", "dead-busy", "k")
    planned = cli.ok("store", "cleanup", "--dry-run", "--json").json()
    assert planned["removed"] == [
        {"name": "dead-empty", "bucket": shared_bucket, "reason": "unreachable"}
    ]
    assert store_names(cli) == {"alive-empty", "dead-empty", "dead-busy"}
    assert "pass --yes" in cli.fails("store", "cleanup", "--empty").err
    done = cli.ok("store", "cleanup", "--yes").out
    assert done == f"removed data store 'dead-empty' (bucket '{shared_bucket}': unreachable)\n"
    assert cli.ok("store", "cleanup", "--yes").out == "nothing to clean up\n"
    emptied = cli.ok("store", "cleanup", "--empty", "--yes", "--json").json()
    assert [r["name"] for r in emptied["removed"]] == ["alive-empty"]
    assert store_names(cli) == {"dead-busy"}


def test_init_on_an_s3_block_store(
    tmp_path: Path, s3_server: SeaweedS3, shared_bucket: str
) -> None:
    cli = new_cli(tmp_path, all_secrets(s3_server))
    who = s3_server.admin
    place = ["init", str(cli.location), "--data", f"s3://{shared_bucket}/blocks"]
    where = ["--data-region", s3_server.region, "--data-endpoint", s3_server.endpoint]
    assert "needs --data-access-key" in cli.fails(*place).err
    plain = cli.fails("init", str(tmp_path / "other"), "--data-access-key", who.access_key)
    assert "s3:// block store" in plain.err
    wrong = cli.fails(
        *place,
        *where,
        "--data-access-key",
        who.access_key,
        "--data-secret-key-stdin",
        stdin="not-the-secret\n",
    )
    assert "not-the-secret" not in wrong.err
    assert not cli.location.exists()  # a refused init leaves nothing behind
    made = cli.ok(
        *place,
        *where,
        "--data-access-key",
        who.access_key,
        "--data-secret-key-stdin",
        "--json",
        stdin=who.secret_key + "\n",
    ).json()
    assert made["name"] == "fs"
    data = secrets.token_bytes(300_000)
    (tmp_path / "local.bin").write_bytes(data)
    cli.ok("put", str(tmp_path / "local.bin"), "/f.bin")
    assert cli.bytes_out("cat", "/f.bin") == data
    listed = s3_server.client().list_objects_v2(Bucket=shared_bucket, Prefix="blocks/")
    assert listed.get("KeyCount", 0) > 0
    assert cli.ok("info", "--json").json()["data_url"] == f"s3://{shared_bucket}/blocks"
    for path in cli.location.rglob("*"):  # sealed at rest
        if path.is_file():
            assert who.secret_key.encode() not in path.read_bytes()
