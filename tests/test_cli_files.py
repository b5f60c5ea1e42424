"""The ``filespace`` command: the filespace itself and native files (no S3 needed)."""

from __future__ import annotations

import os
import stat as stat_module
from pathlib import Path

from tests.cli_helpers import Cli, exists, make_dirs, new_cli, write

pytest_plugins = ["tests.cli_helpers"]


# -- the command itself -------------------------------------------------------------------
def test_help_and_version(plain_cli: Cli) -> None:
    helped = plain_cli.ok("--help")
    for command in ("init", "ls", "store", "link", "mirror", "files", "mount"):
        assert command in helped.out
    assert plain_cli.ok("--version").out.startswith("filespace ")


def test_bad_usage_exits_2(plain_cli: Cli) -> None:
    assert "No such option" in plain_cli.usage_error("ls", "--no-such-option").err
    plain_cli.usage_error("mv", "/only-one")
    plain_cli.usage_error("init", str(plain_cli.home / "x"), "--format", "7")


def test_no_filespace_given(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    result = cli.fails("ls", env={"FILESPACE": ""})
    assert "--filespace" in result.err
    assert "FILESPACE" in result.err


def test_missing_filespace_names_the_location(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    result = cli.fails("-f", str(tmp_path / "nowhere"), "info")
    assert str(tmp_path / "nowhere") in result.err
    not_one = tmp_path / "plain-dir"
    not_one.mkdir()
    assert "is not a filespace" in cli.fails("--filespace", str(not_one), "ls").err


def test_wrong_filespace_key(plain_cli: Cli) -> None:
    wrong = plain_cli.fails("ls", env={"FILESPACE_KEY": "00" * 32})
    assert "wrong key for filespace" in wrong.err


def test_debug_shows_a_traceback_and_the_error_line(plain_cli: Cli) -> None:
    result = plain_cli.run("--debug", "stat", "/missing")
    assert result.code == 1
    assert "Traceback (most recent call last)" in result.err
    assert result.err.rstrip().splitlines()[-1] == "error: /missing: no such file or directory"
    quiet = plain_cli.fails("stat", "/missing")
    assert quiet.err == "error: /missing: no such file or directory\n"


# -- init, info, upgrade --------------------------------------------------------------------
def test_init_creates_a_filespace_and_its_key(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    planned = cli.ok("init", str(cli.location), "--name", "demo", "--dry-run", "--json").json()
    assert planned["dry_run"] is True
    assert not cli.location.exists()
    made = cli.ok("init", str(cli.location), "--name", "demo", "--json").json()
    assert made["name"] == "demo"
    assert made["format_version"] == 9
    key_file = Path(made["key_file"])
    assert key_file.is_relative_to(tmp_path / "config")
    assert stat_module.S_IMODE(key_file.stat().st_mode) == 0o600
    info = cli.ok("info", "--json").json()
    assert info["id"] == made["id"]
    assert info["name"] == "demo"
    assert info["full_name"].startswith("demo.")
    assert info["connect"]["enabled"] is False
    assert info["statistics"]["file_count"] == 0
    again = cli.fails("init", str(cli.location), "--name", "demo")
    assert str(cli.location) in again.err
    assert "already exists" in again.err
    assert "already exists" in cli.fails("init", str(cli.location), "--dry-run").err


def test_info_text_lists_everything(plain_cli: Cli) -> None:
    text = plain_cli.ok("info").out
    for label in ("id", "name", "full name", "format", "engine", "block store", "connect"):
        assert f"\n{label} " in "\n" + text
    assert "sqlite:///" in text
    assert "not enabled" in text
    assert "external files" in text


def test_upgrade_from_format_8(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    made = cli.ok("init", str(cli.location), "--format", "8").out
    assert "created filespace 'fs' (id " in made  # the name defaults to the directory's
    assert "format 8" in made
    refused = cli.fails("connect", "enable")
    assert "upgrade" in refused.err
    planned = cli.ok("upgrade", str(cli.location), "--dry-run", "--json").json()
    assert planned == {"dry_run": True, "location": str(cli.location), "from": 8, "to": 9}
    with cli.api() as fsp:
        assert fsp.format_version == 8
    assert "from format 8 to 9" in cli.ok("upgrade", str(cli.location)).out
    assert "already at format 9" in cli.ok("upgrade").out  # location from FILESPACE
    cli.ok("connect", "enable")


# -- directories ---------------------------------------------------------------------------
def test_mkdir(plain_cli: Cli) -> None:
    assert plain_cli.ok("mkdir", "/m1").out == "created /m1\n"
    assert "/m1: file exists" in plain_cli.fails("mkdir", "/m1").err
    assert "/m2/sub: parent directory does not exist" in plain_cli.fails("mkdir", "/m2/sub").err
    planned = plain_cli.ok("mkdir", "-p", "/m2/a/b", "--dry-run", "--json").json()
    assert planned == {"dry_run": True, "created": ["/m2", "/m2/a", "/m2/a/b"]}
    assert not exists(plain_cli, "/m2")
    made = plain_cli.ok("mkdir", "-p", "m2/a/b", "m3", "--json").json()  # relative: from /
    assert made["created"] == ["/m2", "/m2/a", "/m2/a/b", "/m3"]
    assert plain_cli.ok("mkdir", "-p", "/m2/a/b").out == ""  # nothing left to create
    with plain_cli.api() as fsp:
        assert fsp.fs.dir_exists("/m2/a/b")
        assert fsp.fs.dir_exists("/m3")


def test_ls_stat_tree(plain_cli: Cli) -> None:
    make_dirs(plain_cli, "/ls/sub/deeper")
    write(plain_cli, "/ls/f.txt", b"12345")
    assert plain_cli.ok("ls", "/ls").out == "f.txt\nsub\n"
    long = plain_cli.ok("ls", "-l", "ls").out.splitlines()
    assert long[0].split() == ["kind", "size", "modified", "name", "source"]
    assert long[1].split()[0:2] == ["file", "5"]
    assert long[1].split()[-1] == "f.txt"
    assert long[2].split()[0] == "dir"
    listed = plain_cli.ok("--json", "ls", "/ls").json()  # the global --json works too
    assert [e["name"] for e in listed["entries"]] == ["f.txt", "sub"]
    assert listed["entries"][0]["external"] is None
    assert plain_cli.ok("ls", "/ls/f.txt").out == "f.txt\n"
    assert "/ls/nope: no such file or directory" in plain_cli.fails("ls", "/ls/nope").err
    info = plain_cli.ok("stat", "/ls/f.txt", "--json").json()
    assert (info["type"], info["size"], info["path"]) == ("file", 5, "/ls/f.txt")
    assert "size      5 (5 B)" in plain_cli.ok("stat", "/ls/f.txt").out
    tree = plain_cli.ok("tree", "/ls").out
    assert tree.splitlines()[0] == "/ls"
    assert "deeper/" in tree
    assert tree.rstrip().endswith("2 directories, 1 file")
    shallow = plain_cli.ok("tree", "/ls", "-L", "1", "--json").json()
    sub = next(c for c in shallow["children"] if c["name"] == "sub")
    assert "children" not in sub
    assert "/ls/f.txt: not a directory" in plain_cli.fails("tree", "/ls/f.txt").err


# -- data in and out --------------------------------------------------------------------------
def test_put_get_cat_round_trip(plain_cli: Cli, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    make_dirs(plain_cli, "/data")
    planned = plain_cli.ok("put", str(local), "/data", "--dry-run", "--json").json()
    assert planned["destination"] == "/data/big.bin"
    assert planned["bytes"] == len(data)
    assert not exists(plain_cli, "/data/big.bin")
    put = plain_cli.ok("put", str(local), "/data", "--json").json()
    assert (put["destination"], put["bytes"]) == ("/data/big.bin", len(data))
    assert plain_cli.bytes_out("cat", "/data/big.bin") == data
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    got = plain_cli.ok("get", "/data/big.bin", str(out_dir), "--json").json()
    assert got["destination"] == str(out_dir / "big.bin")
    assert (out_dir / "big.bin").read_bytes() == data
    assert list(out_dir.iterdir()) == [out_dir / "big.bin"]  # no partial file left
    assert plain_cli.bytes_out("get", "/data/big.bin", "-") == data
    plain_cli.ok("put", "-", "/data/big.bin", stdin=b"replaced from stdin")
    assert plain_cli.bytes_out("cat", "/data/big.bin") == b"replaced from stdin"


def test_get_never_writes_through_a_planted_link(plain_cli: Cli, tmp_path: Path) -> None:
    # Another user of a shared directory guesses the temporary name and links
    # it to a file of ours: get must create its own file, not open theirs.
    write(plain_cli, "/secret-plan.txt", b"the new content")
    shared = tmp_path / "shared"
    shared.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    trap = shared / ".plan.txt.filespace-part"
    trap.symlink_to(victim)
    plain_cli.ok("get", "/secret-plan.txt", str(shared / "plan.txt"))
    assert victim.read_bytes() == b"keep me"
    assert (shared / "plan.txt").read_bytes() == b"the new content"
    assert not (shared / "plan.txt").is_symlink()
    assert sorted(p.name for p in shared.iterdir()) == [trap.name, "plan.txt"]
    # The copy has the mode cp would give it: the replaced file's, else 0666 less the umask.
    os.chmod(shared / "plan.txt", 0o640)
    plain_cli.ok("get", "/secret-plan.txt", str(shared / "plan.txt"))
    assert stat_module.S_IMODE((shared / "plan.txt").stat().st_mode) == 0o640
    umask = os.umask(0o022)
    os.umask(umask)
    plain_cli.ok("get", "/secret-plan.txt", str(shared / "fresh.txt"))
    assert stat_module.S_IMODE((shared / "fresh.txt").stat().st_mode) == 0o666 & ~umask


def test_data_errors_name_the_path(plain_cli: Cli, tmp_path: Path) -> None:
    assert "/nothing: no such file" in plain_cli.fails("cat", "/nothing").err
    make_dirs(plain_cli, "/dir-here")
    assert "/dir-here: is a directory" in plain_cli.fails("cat", "/dir-here").err
    missing_local = tmp_path / "absent.bin"
    assert str(missing_local) in plain_cli.fails("put", str(missing_local), "/x").err
    assert "/no/such/dir" in plain_cli.fails("put", "-", "/no/such/dir/f", "--dry-run").err
    assert "/dir-here: is a directory" in plain_cli.fails("put", "-", "/dir-here").err
    assert "/nothing" in plain_cli.fails("get", "/nothing", str(tmp_path / "x")).err
    assert not (tmp_path / "x").exists()
    write(plain_cli, "/here.txt", b"x")
    bad_dir = tmp_path / "no-such-local-dir" / "f"
    assert str(bad_dir.parent) in plain_cli.fails("get", "/here.txt", str(bad_dir)).err


# -- namespace changes --------------------------------------------------------------------------
def test_mv(plain_cli: Cli) -> None:
    make_dirs(plain_cli, "/mv/into")
    write(plain_cli, "/mv/a", b"a")
    write(plain_cli, "/mv/c", b"c")
    planned = plain_cli.ok("mv", "/mv/a", "/mv/b", "--dry-run").out
    assert planned == "would move /mv/a -> /mv/b\n"
    assert exists(plain_cli, "/mv/a")
    assert plain_cli.ok("mv", "/mv/a", "/mv/b").out == "moved /mv/a -> /mv/b\n"
    moved = plain_cli.ok("mv", "/mv/b", "/mv/into", "--json").json()
    assert moved["destination"] == "/mv/into/b"
    with plain_cli.api() as fsp:
        assert fsp.fs.read_file("/mv/into/b") == b"a"
        assert not fsp.fs.file_exists("/mv/a")
    assert "/mv/gone: no such file" in plain_cli.fails("mv", "/mv/gone", "/mv/x").err
    assert "/mv/c: destination exists" in plain_cli.fails("mv", "/mv/into/b", "/mv/c").err
    assert "into itself" in plain_cli.fails("mv", "/mv", "/mv/into/deeper").err


def test_rm(plain_cli: Cli) -> None:
    make_dirs(plain_cli, "/rm/d/e")
    write(plain_cli, "/rm/d/f", b"f")
    write(plain_cli, "/rm/file", b"x")
    assert plain_cli.ok("rm", "/rm/file").out == "removed /rm/file\n"
    assert not exists(plain_cli, "/rm/file")
    assert "/rm/d: is a directory (use rm -r --yes)" in plain_cli.fails("rm", "/rm/d").err
    code, text = plain_cli.on_terminal("rm", "/rm/d")  # there rm -r asks instead
    assert code == 1 and "/rm/d: is a directory (use rm -r)" in text
    assert "pass --yes" in plain_cli.fails("rm", "-r", "/rm/d").err
    planned = plain_cli.ok("rm", "-r", "/rm/d", "--dry-run", "--json").json()
    assert planned["removed"] == [{"path": "/rm/d", "type": "dir", "entries_inside": 2}]
    assert exists(plain_cli, "/rm/d/e")
    assert "removed /rm/d and 2 entries inside" in plain_cli.ok("rm", "-r", "--yes", "/rm/d").out
    assert not exists(plain_cli, "/rm/d")
    assert "/rm/d: no such file" in plain_cli.fails("rm", "/rm/d").err
    assert "root" in plain_cli.fails("rm", "-r", "-y", "/").err


# -- on a terminal ---------------------------------------------------------------------------------
def test_rm_asks_on_a_terminal(plain_cli: Cli) -> None:
    make_dirs(plain_cli, "/ask/inner")
    code, text = plain_cli.on_terminal("rm", "-r", "/ask", answer="n\n")
    assert code == 1
    assert "Remove /ask and the 1 entries inside?" in text
    assert "aborted" in text
    assert exists(plain_cli, "/ask/inner")
    code, text = plain_cli.on_terminal("rm", "-r", "/ask", answer="y\n")
    assert code == 0, text
    assert not exists(plain_cli, "/ask")


def test_progress_only_on_a_terminal(plain_cli: Cli, tmp_path: Path) -> None:
    local = tmp_path / "large.bin"
    local.write_bytes(os.urandom(9 * 1024 * 1024))  # just over the progress bar's threshold
    piped = plain_cli.ok("put", str(local), "/large.bin")
    assert piped.err == ""
    assert piped.out.count("\n") == 1
    code, text = plain_cli.on_terminal("get", "/large.bin", str(tmp_path / "copy.bin"))
    assert code == 0, text
    assert "get /large.bin" in text  # the progress bar's label
    assert (tmp_path / "copy.bin").read_bytes() == local.read_bytes()
    piped_get = plain_cli.ok("get", "/large.bin", str(tmp_path / "copy2.bin"))
    assert piped_get.err == ""
    assert "get /large.bin" not in piped_get.out


def test_a_mistyped_path_gets_did_you_mean(tmp_path: Path) -> None:
    """Each missing name is matched against its directory; no close name, no guess."""
    cli = new_cli(tmp_path / "home")
    cli.ok("init", str(cli.location), "--name", "typos")
    write(cli, "/data/2024/weather.csv", b"date,temp\n")

    def error(*args: str) -> str:
        return cli.fails(*args).err.strip()

    assert error("cat", "/dta/2024/weather.csv") == (
        "error: /dta/2024/weather.csv: no such file or directory"
        " (did you mean /data/2024/weather.csv?)"
    )
    assert error("cat", "/data/2024/wether.csv").endswith("(did you mean /data/2024/weather.csv?)")
    assert error("ls", "/dat").endswith("(did you mean /data?)")
    # A path to create: its missing directory is corrected, the new name kept.
    assert error("mkdir", "/dta/new").endswith("(did you mean /data/new?)")
    assert error("mkdir", "/dta/other/new").endswith("parent directory does not exist")
    assert error("put", "-", "/dta/new.csv", "--dry-run").endswith("(did you mean /data?)")
    assert error("cat", "/nothing/near").endswith("no such file or directory")
    assert error("cat", "/data/2024/zzz.csv").endswith("no such file or directory")
