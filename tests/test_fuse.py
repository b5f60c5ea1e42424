"""``filespace mount``: the tree through a real FUSE mount, served by the console script."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3
from tests import requirements
from tests.cli_helpers import FILESPACE, Cli, add_store, all_secrets, link, new_cli, write
from tests.fsfixtures import postgres_schema_url

pytest_plugins = ["tests.cli_helpers"]


# Mounts an empty file system of mfusepy's own (not ours) and unmounts it: whether
# this machine lets a process mount at all (a container may forbid it).
_PROBE = """
import os, subprocess, sys, threading, time
import mfusepy

class Empty:
    use_ns = True
    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": 0o40755, "st_nlink": 2}
        raise OSError(2, "no such file")
    def readdir(self, path, fh):
        return [".", ".."]

def unmount_when_up(target):
    for _ in range(200):
        if os.path.ismount(target):
            subprocess.run(["fusermount3", "-u", target], check=True)
            return
        time.sleep(0.05)
    os._exit(3)

threading.Thread(target=unmount_when_up, args=(sys.argv[1],), daemon=True).start()
mfusepy.FUSE(Empty(), sys.argv[1], foreground=True)
"""


def _fuse_missing() -> str | None:
    """Why this machine cannot mount with FUSE, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (scripts/test installs fuse3 where it can)"
    try:
        import mfusepy  # noqa: F401 - loading it loads libfuse
    except (ImportError, OSError) as exc:
        return f"libfuse cannot be loaded: {exc}"
    with tempfile.TemporaryDirectory() as target:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, target], capture_output=True, timeout=60, check=False
        )
    if probe.returncode != 0:
        said = probe.stderr.decode(errors="replace").strip().splitlines()
        return f"this machine refuses FUSE mounts: {said[-1] if said else probe.returncode}"
    return None


_WHY_NOT = _fuse_missing()
pytestmark = pytest.mark.skipif(
    _WHY_NOT is not None, reason=requirements.reason("fuse", str(_WHY_NOT))
)

BIG = os.urandom(20 * 1024 * 1024 + 12_345)  # several blocks and readahead windows
SMALL = b"id,value\n1,one\n2,two\n"


def _unmount(mountpoint: Path) -> None:
    subprocess.run(["fusermount3", "-u", str(mountpoint)], check=True, capture_output=True)


def _wait_mounted(mountpoint: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not os.path.ismount(mountpoint):
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the mount process exited {process.returncode}: {err.decode()}")
        assert time.monotonic() < deadline, "the mount did not come up"
        time.sleep(0.05)


@contextmanager
def mounted(
    cli: Cli,
    mountpoint: Path,
    location: str | None = None,
    env: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> Iterator[tuple[Path, int]]:
    """``filespace mount --foreground [options]`` running until the block ends, then unmounted.

    Gives the mount point and the serving process's id.
    """
    assert FILESPACE
    mountpoint.mkdir(parents=True, exist_ok=True)
    where = location or str(cli.location)
    process = subprocess.Popen(
        [FILESPACE, "mount", where, str(mountpoint), "--foreground", *options],
        env={**cli.env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_mounted(mountpoint, process)
        yield mountpoint, process.pid
    finally:
        if os.path.ismount(mountpoint):
            _unmount(mountpoint)
        out, err = process.communicate(timeout=60)
    text = (out + err).decode(errors="replace")
    assert process.returncode == 0, text
    assert "Traceback" not in text
    for secret in cli.secrets:
        assert secret not in text


@pytest.fixture(scope="module")
def mount(
    tmp_path_factory: pytest.TempPathFactory, s3_server: SeaweedS3, shared_bucket: str
) -> Iterator[dict[str, Any]]:
    """A filespace with linked objects and a native file, mounted for the whole module."""
    cli = new_cli(tmp_path_factory.mktemp("fuse"), all_secrets(s3_server))
    cli.ok("init", str(cli.location), "--name", "mounted")
    cli.ok("connect", "enable")
    s3 = s3_server.client()
    etags = {}
    for key, body in {"data/big.bin": BIG, "data/small.csv": SMALL}.items():
        etags[key] = s3.put_object(Bucket=shared_bucket, Key=key, Body=body)["ETag"].strip('"')
    add_store(cli, s3_server, "main", shared_bucket)
    link(cli, "/linked/big.bin", "main", "data/big.bin", len(BIG), etags["data/big.bin"])
    link(cli, "/linked/small.csv", "main", "data/small.csv", len(SMALL), etags["data/small.csv"])
    write(cli, "/native/hello.txt", b"hello\n")
    with mounted(cli, cli.home / "mnt") as (mountpoint, pid):
        yield {"cli": cli, "mnt": mountpoint, "pid": pid, "s3": s3, "bucket": shared_bucket}


def _errno_of(call: Any, *args: Any) -> int | None:
    try:
        call(*args)
    except OSError as exc:
        return exc.errno
    return None


def test_linked_objects_read_as_read_only_files(mount: dict[str, Any]) -> None:
    mnt: Path = mount["mnt"]
    assert sorted(os.listdir(mnt)) == ["linked", "native"]
    assert sorted(os.listdir(mnt / "linked")) == ["big.bin", "small.csv"]
    info = os.stat(mnt / "linked" / "big.bin")
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o444
    assert info.st_size == len(BIG)
    assert (mnt / "linked" / "big.bin").read_bytes() == BIG
    assert (mnt / "linked" / "small.csv").read_text() == SMALL.decode()
    fd = os.open(mnt / "linked" / "big.bin", os.O_RDONLY)
    try:
        for offset in (0, 262_143, 8 * 1024 * 1024 - 7, len(BIG) - 100, len(BIG) + 5):
            assert os.pread(fd, 70_000, offset) == BIG[offset : offset + 70_000]
    finally:
        os.close(fd)
    target = mnt / "linked" / "small.csv"
    assert _errno_of(os.open, target, os.O_WRONLY) == errno.EROFS
    assert _errno_of(os.open, target, os.O_RDWR | os.O_APPEND) == errno.EROFS
    assert _errno_of(os.truncate, target, 0) == errno.EROFS
    assert target.read_bytes() == SMALL


def test_the_mount_reads_ahead_in_large_requests(mount: dict[str, Any]) -> None:
    # The kernel's 128 KiB default would cost one FUSE call per 128 KiB read.
    device = os.stat(mount["mnt"]).st_dev
    setting = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
    if os.geteuid() != 0 or not os.access(setting, os.W_OK):
        pytest.skip("only root can raise a mount's readahead here")
    deadline = time.monotonic() + 10
    while setting.read_text().strip() != "1024":
        assert time.monotonic() < deadline, f"readahead stayed at {setting.read_text()}"
        time.sleep(0.05)


def test_many_calls_hold_no_more_resources(mount: dict[str, Any]) -> None:
    # FUSE calls arrive on threads Python did not start; nothing may be kept per call.
    def open_files() -> int:
        return len(os.listdir(f"/proc/{mount['pid']}/fd"))

    os.stat(mount["mnt"] / "native" / "hello.txt")
    before = open_files()
    for index in range(2000):
        assert _errno_of(os.stat, mount["mnt"] / f"missing-{index}") == errno.ENOENT
        os.stat(mount["mnt"] / "native" / "hello.txt")
    assert open_files() - before < 10


def test_a_replaced_object_reads_as_stale(mount: dict[str, Any]) -> None:
    cli: Cli = mount["cli"]
    s3 = mount["s3"]
    etag = s3.put_object(Bucket=mount["bucket"], Key="stale.txt", Body=b"old")["ETag"]
    link(cli, "/stale/old.txt", "main", "stale.txt", 3, etag.strip('"'))
    s3.put_object(Bucket=mount["bucket"], Key="stale.txt", Body=b"new!")
    assert _errno_of((mount["mnt"] / "stale" / "old.txt").read_bytes) == errno.ESTALE


def test_native_files_are_read_write(mount: dict[str, Any]) -> None:
    cli: Cli = mount["cli"]
    mnt: Path = mount["mnt"]
    assert (mnt / "native" / "hello.txt").read_bytes() == b"hello\n"
    data = os.urandom(5 * 1024 * 1024 + 321)
    (mnt / "native" / "copy.bin").write_bytes(data)
    with open(mnt / "native" / "copy.bin", "r+b") as handle:
        handle.seek(1_000_000)
        handle.write(b"PATCH")
        handle.seek(0, os.SEEK_END)
        handle.write(b"TAIL")
    expected = data[:1_000_000] + b"PATCH" + data[1_000_005:] + b"TAIL"
    with open(mnt / "native" / "hello.txt", "a") as handle:
        handle.write("again\n")
    os.truncate(mnt / "native" / "copy.bin", len(expected) - 2)
    expected = expected[:-2]
    assert os.stat(mnt / "native" / "copy.bin").st_size == len(expected)
    assert (mnt / "native" / "copy.bin").read_bytes() == expected
    assert stat.S_IMODE(os.stat(mnt / "native" / "copy.bin").st_mode) == 0o644
    with cli.api() as fsp:  # committed for every client once the handles closed
        assert fsp.fs.read_file("/native/copy.bin") == expected
        assert fsp.fs.read_file("/native/hello.txt") == b"hello\nagain\n"
        # Times to the nanosecond as recorded: tools that compare them see every rewrite.
        recorded = fsp.fs.get_entry("/native/copy.bin").mtime_ns
    assert recorded % 1_000_000_000 and os.stat(mnt / "native" / "copy.bin").st_mtime_ns == recorded


def test_an_open_handle_shows_its_size_before_it_commits(mount: dict[str, Any]) -> None:
    mnt: Path = mount["mnt"]
    with open(mnt / "native" / "growing.bin", "wb") as handle:
        handle.write(b"x" * 300_000)
        handle.flush()  # to the mount, not yet past the handle's own flush
        assert os.stat(mnt / "native" / "growing.bin").st_size == 300_000
    with mount["cli"].api() as fsp:
        assert fsp.fs.get_entry("/native/growing.bin").size == 300_000


def test_namespace_changes(mount: dict[str, Any]) -> None:
    cli: Cli = mount["cli"]
    mnt: Path = mount["mnt"] / "ns"
    mnt.mkdir()
    (mnt / "a").mkdir()
    (mnt / "a" / "f.txt").write_bytes(b"f")
    (mnt / "g.txt").write_bytes(b"g")
    os.rename(mnt / "g.txt", mnt / "h.txt")
    os.rename(mnt / "h.txt", mnt / "a" / "f.txt")  # onto an existing file: replaces it
    assert sorted(os.listdir(mnt / "a")) == ["f.txt"]
    assert (mnt / "a" / "f.txt").read_bytes() == b"g"
    (mnt / "empty").mkdir()
    (mnt / "b").mkdir()
    os.rename(mnt / "b", mnt / "empty")  # onto an empty directory: replaces it
    assert sorted(os.listdir(mnt)) == ["a", "empty"]
    assert _errno_of(os.rename, mnt / "empty", mnt / "a") == errno.ENOTEMPTY
    assert _errno_of(os.rmdir, mnt / "a") == errno.ENOTEMPTY
    assert _errno_of(os.rename, mnt / "a", mnt / "a" / "inside") == errno.EINVAL
    os.symlink("a/f.txt", mnt / "s")
    assert os.readlink(mnt / "s") == "a/f.txt"
    assert (mnt / "s").read_bytes() == b"g"
    assert stat.S_ISLNK(os.lstat(mnt / "s").st_mode)
    assert _errno_of(os.link, mnt / "a" / "f.txt", mnt / "hard") == errno.EPERM
    assert _errno_of(os.stat, mnt / "missing") == errno.ENOENT
    assert _errno_of(os.mkdir, mnt / "a") == errno.EEXIST
    os.chmod(mnt / "a" / "f.txt", 0o600)  # accepted; no permission bits are kept
    os.utime(mnt / "a" / "f.txt")
    os.unlink(mnt / "s")
    os.rmdir(mnt / "empty")
    assert sorted(os.listdir(mnt)) == ["a"]
    with cli.api() as fsp:
        assert fsp.fs.list_dir("/ns") == ["a"]
        assert fsp.fs.list_dir("/ns/a") == ["f.txt"]
    assert os.statvfs(mnt).f_namemax == 255


def test_a_listing_pages_and_answers_stat_until_something_changes(
    mount: dict[str, Any],
) -> None:
    """``ls -l``'s pattern: list, then stat each name; then change things and stat at once."""
    mnt: Path = mount["mnt"] / "listed"
    mnt.mkdir()
    names = [f"f{number:04d}" for number in range(1200)]  # more than two engine pages
    for name in names[:3]:
        (mnt / name).write_bytes(b"x")
    with mount["cli"].api() as fsp:
        for name in names[3:]:
            fsp.fs.create_symlink("f0000", f"/listed/{name}")
    listed = {entry.name: entry.stat(follow_symlinks=False) for entry in os.scandir(mnt)}
    assert sorted(listed) == names
    assert stat.S_ISREG(listed["f0001"].st_mode) and stat.S_ISLNK(listed["f0999"].st_mode)
    # Each change made through the mount shows at once, whatever was listed.
    (mnt / "f0001").write_bytes(b"longer now")
    assert os.stat(mnt / "f0001").st_size == 10
    os.unlink(mnt / "f0002")
    assert _errno_of(os.lstat, mnt / "f0002") == errno.ENOENT
    os.rename(mnt / "f0003", mnt / "moved")
    assert _errno_of(os.lstat, mnt / "f0003") == errno.ENOENT
    assert stat.S_ISLNK(os.lstat(mnt / "moved").st_mode)
    assert len(os.listdir(mnt)) == 1199


def test_changes_of_other_clients_show_up(mount: dict[str, Any]) -> None:
    cli: Cli = mount["cli"]
    write(cli, "/others/made.txt", b"from the API")
    assert (mount["mnt"] / "others" / "made.txt").read_bytes() == b"from the API"
    with cli.api() as fsp:
        fsp.fs.delete("/others/made.txt")
    assert os.listdir(mount["mnt"] / "others") == []


def test_a_shared_filespace_mounts_on_two_hosts_at_once(tmp_path: Path) -> None:
    # Two mounts of one PostgreSQL filespace stand for two hosts: what one
    # writes, the other reads once the writer has closed the file.
    with postgres_schema_url() as url:
        key = filespace.generate_key()
        blocks = (tmp_path / "blocks").as_uri()
        with filespace.create(url, name="shared", data=blocks, key=key) as fsp:
            fsp.fs.write_file("/from-api.txt", b"made through the API")
        cli = new_cli(tmp_path / "home")
        env = {"FILESPACE_KEY": key}
        with (
            mounted(cli, tmp_path / "one", url, env) as (one, _),
            mounted(cli, tmp_path / "two", url, env) as (two, _),
        ):
            assert (two / "from-api.txt").read_bytes() == b"made through the API"
            (one / "d").mkdir()
            (one / "d" / "w.bin").write_bytes(b"w" * 3_000_000)
            assert (two / "d" / "w.bin").read_bytes() == b"w" * 3_000_000
            os.rename(two / "d" / "w.bin", two / "d" / "moved.bin")
            assert os.listdir(one / "d") == ["moved.bin"]
        with filespace.open(url, key=key) as fsp:
            assert fsp.fs.get_statistics().file_count == 2


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_foreground_mount_stops_cleanly_on_a_signal(tmp_path: Path, stop: int) -> None:
    assert FILESPACE
    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location))
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    command = [FILESPACE, "mount", str(cli.location), str(mountpoint), "--foreground"]
    process = subprocess.Popen(command, env=cli.env, stderr=subprocess.PIPE)
    _wait_mounted(mountpoint, process)
    (mountpoint / "kept.txt").write_bytes(b"kept")
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert b"error" not in err
    assert not os.path.ismount(mountpoint)
    with cli.api() as fsp:
        assert fsp.fs.read_file("/kept.txt") == b"kept"


def test_mount_in_the_background_until_unmounted(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location))
    write(cli, "/f.txt", b"data")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    started = cli.ok("mount", str(cli.location), str(mountpoint))
    assert started.out.startswith(f"mounted {cli.location} at {mountpoint} (process ")
    pid = int(started.out.split("(process ")[1].split(")")[0])
    try:
        assert (mountpoint / "f.txt").read_bytes() == b"data"
        again = cli.fails("mount", str(cli.location), str(mountpoint))
        assert "already mounted" in again.err
    finally:
        _unmount(mountpoint)
    _wait_ended(pid)
    doc = cli.ok("mount", str(cli.location), str(mountpoint), "--cache-mb", "0", "--json").json()
    assert doc["mountpoint"] == str(mountpoint) and os.path.ismount(mountpoint)
    try:
        assert (mountpoint / "f.txt").read_bytes() == b"data"
    finally:
        _unmount(mountpoint)
    _wait_ended(int(doc["pid"]))


def _wait_ended(pid: int) -> None:
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid):
        assert time.monotonic() < deadline, "the mount process outlived its mount"
        time.sleep(0.05)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1][:3]
    except OSError:
        return b"Z"


def test_mount_over_files_only_when_asked(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location))
    write(cli, "/inside.txt", b"from the filespace")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    (mountpoint / "mine.txt").write_bytes(b"mine")
    try:
        for extra in ([], ["--foreground"]):
            refused = cli.fails("mount", str(cli.location), str(mountpoint), *extra)
            assert "not empty" in refused.err and "--nonempty" in refused.err
            assert not os.path.ismount(mountpoint)
        started = cli.ok("mount", str(cli.location), str(mountpoint), "--nonempty", "--json")
        assert os.path.ismount(mountpoint)
        assert os.listdir(mountpoint) == ["inside.txt"]
        assert (mountpoint / "inside.txt").read_bytes() == b"from the filespace"
    finally:
        if os.path.ismount(mountpoint):
            _unmount(mountpoint)
    _wait_ended(int(started.json()["pid"]))
    assert os.listdir(mountpoint) == ["mine.txt"]
    assert (mountpoint / "mine.txt").read_bytes() == b"mine"


def test_mount_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    cli = new_cli(tmp_path)
    cli.ok("init", str(cli.location))
    missing = cli.fails("mount", str(cli.location), str(tmp_path / "nowhere"))
    assert "must be an existing directory" in missing.err
    (tmp_path / "file").write_bytes(b"")
    assert (
        "must be an existing directory"
        in cli.fails("mount", str(cli.location), str(tmp_path / "file")).err
    )
    (tmp_path / "mnt").mkdir()
    wrong = cli.fails("mount", str(tmp_path / "not-a-filespace"), str(tmp_path / "mnt"))
    assert "not-a-filespace" in wrong.err
    assert not os.path.ismount(tmp_path / "mnt")


def test_a_background_mount_keeps_the_password_out_of_argv_and_log(tmp_path: Path) -> None:
    from tests.test_locations import PASSWORD, with_password

    cli = new_cli(tmp_path, secrets=[PASSWORD])
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    old = os.umask(0o022)  # the log is private whatever the umask
    try:
        with postgres_schema_url() as plain:
            url = with_password(plain)
            cli.ok("init", url, "--data", (tmp_path / "blocks").as_uri())
            started = cli.ok("mount", url, str(mountpoint), "--json").json()
            pid = int(started["pid"])
            try:
                assert started["location"] == filespace.public_location(url)
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                assert b"--foreground" in argv  # the serving process itself
                assert PASSWORD.encode() not in argv and b"postgres" not in argv
                (mountpoint / "f.txt").write_bytes(b"data")
            finally:
                _unmount(mountpoint)
            _wait_ended(pid)
            with filespace.open(url) as fsp:
                assert fsp.fs.read_file("/f.txt") == b"data"
    finally:
        os.umask(old)
    (log,) = (tmp_path / "cache" / "mounts").glob("mnt-*.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert "serving postgresql://postgres@" in log.read_text()
    assert PASSWORD not in log.read_text()


@pytest.mark.parametrize(("window", "asks"), [("3600", 0), ("0", 3)])
def test_a_mount_with_a_revalidation_window_asks_once(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, window: str, asks: int
) -> None:
    from tests.test_loaders import WanProxy, proxy_url

    host, _, port = s3_server.endpoint.removeprefix("http://").rpartition(":")
    proxy = WanProxy((host, int(port)), delay_ms=0, rate_mb_s=0).start()
    try:
        cli = new_cli(tmp_path, all_secrets(s3_server))
        cli.ok("init", str(cli.location))
        cli.ok("connect", "enable")
        data = os.urandom(300_000)
        etag = s3_server.client().put_object(Bucket=bucket, Key="f.bin", Body=data)["ETag"]
        add_store(cli, s3_server, "p", bucket, endpoint=proxy_url(proxy))
        link(cli, "/f.bin", "p", "f.bin", len(data), etag.strip('"'))
        mountpoint = tmp_path / "mnt"
        mountpoint.mkdir()
        started = cli.ok(
            "mount", str(cli.location), str(mountpoint), "--revalidate-after", window, "--json"
        ).json()
        try:
            assert (mountpoint / "f.bin").read_bytes() == data
            before = proxy.requests
            for _ in range(3):  # each a new open of a cached file
                assert (mountpoint / "f.bin").read_bytes() == data
            assert proxy.requests == before + asks
        finally:
            _unmount(mountpoint)
        _wait_ended(int(started["pid"]))
    finally:
        proxy.stop()


def test_a_large_directory_lists_whole_through_the_mount(mount: dict[str, Any]) -> None:
    from tests.test_dir_pages import _fill

    with mount["cli"].api() as fsp:
        names = _fill(fsp, "/many", 1500)  # three pages
    listed = mount["mnt"] / "many"
    assert sorted(os.listdir(listed)) == names
    with os.scandir(listed) as entries:
        kinds = {entry.name: entry.is_dir(follow_symlinks=False) for entry in entries}
    assert kinds["sub"] and not kinds["n00000"] and not kinds["zlink"]
    assert len(kinds) == len(names)
