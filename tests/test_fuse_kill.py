"""A mount whose serving process is killed, and ``filespace unmount``: real FUSE, real SIGKILL."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import requirements
from tests.cli_helpers import Cli, new_cli, write
from tests.test_fuse import _WHY_NOT, _wait_ended

pytest_plugins = ["tests.cli_helpers"]
pytestmark = pytest.mark.skipif(
    _WHY_NOT is not None, reason=requirements.reason("fuse", str(_WHY_NOT))
)

MiB = 1024 * 1024
DATA = os.urandom(4 * MiB)
# Opens a file, reads its start, says so; on "go" reads far past what the kernel
# has read ahead, prints the result, and keeps the file open until stdin closes.
_HOLDER = textwrap.dedent(
    """
    import errno, os, sys
    fd = os.open(sys.argv[1], os.O_RDONLY)
    os.pread(fd, 4096, 0)
    print("opened", flush=True)
    sys.stdin.readline()
    try:
        print("read", len(os.pread(fd, 4096, 3 * 1024 * 1024)), flush=True)
    except OSError as exc:
        print("errno", errno.errorcode[exc.errno], flush=True)
    sys.stdin.read()
    """
)
# What a dead mount answers: ENOTCONN, or ECONNABORTED when the connection was
# aborted before the kernel had finished setting it up.
DEAD = (errno.ENOTCONN, errno.ECONNABORTED)
_GUARD_S = 60  # the child's read must end well within this; a hang fails the test


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    made = new_cli(tmp_path)
    made.ok("init", str(made.location))
    write(made, "/f.bin", DATA)
    return made


def _mount(cli: Cli, mountpoint: Path) -> tuple[int, str]:
    """``filespace mount`` in the background: its process id and what it said on stderr."""
    started = cli.ok("mount", str(cli.location), str(mountpoint), "--json")
    return int(started.json()["pid"]), started.err


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "mnt"
    where.mkdir()
    yield where
    # Whatever a failed test left there: detach it, dead or alive.
    subprocess.run(["fusermount3", "-u", "-z", str(where)], capture_output=True, check=False)


def _errno_of_statfs(path: Path) -> int | None:
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno
    return None


def _killed_and_mounted_again(
    cli: Cli, mountpoint: Path, pid: int, holder: subprocess.Popen[str]
) -> int:
    """Kill the mount's process while ``holder`` has a file open; mount again: the new pid."""
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "opened\n"
    os.kill(pid, signal.SIGKILL)
    _wait_ended(pid)
    holder.stdin.write("go\n")
    holder.stdin.flush()
    # The read fails at once: the guard is the subprocess's timeout, not a clock.
    said = subprocess.run(
        ["timeout", str(_GUARD_S), "head", "-n", "1"],
        stdin=holder.stdout,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert said.strip() in {"errno ENOTCONN", "errno EIO", "errno ECONNABORTED"}, said
    assert _errno_of_statfs(mountpoint) in DEAD
    # The holder still has its file open on the dead mount: mount detaches it anyway.
    again, note = _mount(cli, mountpoint)
    assert f"detached a dead mount at {mountpoint}" in note
    assert (mountpoint / "f.bin").read_bytes() == DATA
    return again


def test_a_killed_mount_fails_open_files_and_mounts_again(cli: Cli, mountpoint: Path) -> None:
    pid, _ = _mount(cli, mountpoint)
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(mountpoint / "f.bin")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            again = _killed_and_mounted_again(cli, mountpoint, pid, holder)
        finally:
            holder.kill()
    done = cli.ok("unmount", str(mountpoint))
    assert done.out == f"unmounted {mountpoint}\n"
    _wait_ended(again)
    assert not os.path.ismount(mountpoint)
    missing = cli.fails("unmount", str(mountpoint))
    assert f"{mountpoint}: nothing is mounted here" in missing.err


def test_unmount_detaches_a_dead_mount(cli: Cli, mountpoint: Path) -> None:
    pid, _ = _mount(cli, mountpoint)
    os.kill(pid, signal.SIGKILL)
    _wait_ended(pid)
    assert _errno_of_statfs(mountpoint) in DEAD
    done = cli.ok("unmount", str(mountpoint), "--json").json()
    assert done == {"mountpoint": str(mountpoint), "was": "dead", "forced": False}
    assert _errno_of_statfs(mountpoint) is None and not os.path.ismount(mountpoint)
    # What was written before the kill and closed is in the filespace.
    with cli.api() as fsp:
        assert fsp.fs.read_file("/f.bin") == DATA


def test_unmount_refuses_a_busy_mount_unless_forced(cli: Cli, mountpoint: Path) -> None:
    pid, _ = _mount(cli, mountpoint)
    with open(mountpoint / "f.bin", "rb") as handle:
        busy = cli.fails("unmount", str(mountpoint))
        assert f"{mountpoint}: the mount is busy" in busy.err and "--force" in busy.err
        assert os.path.ismount(mountpoint)
        forced = cli.ok("unmount", str(mountpoint), "--force")
        assert forced.out == f"unmounted {mountpoint}\n"
        assert not os.path.ismount(mountpoint)
        assert handle.read() == DATA  # an open file keeps working until closed
    _wait_ended(pid)  # and then the serving process stops


def test_unmount_refuses_what_it_did_not_mount(cli: Cli, tmp_path: Path) -> None:
    nowhere = cli.fails("unmount", str(tmp_path / "nowhere"))
    assert f"{tmp_path / 'nowhere'}: nothing is mounted here" in nowhere.err
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "nothing is mounted here" in cli.fails("unmount", str(plain)).err
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(plain)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        other = cli.fails("unmount", str(plain), "--force")
        assert f"{plain}: not a FUSE mount (tmpfs)" in other.err
        assert os.path.ismount(plain)
    finally:
        subprocess.run(["umount", str(plain)], check=True)
