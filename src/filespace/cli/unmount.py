"""``filespace unmount``, and what ``mount`` asks of the mount table.

A mount whose serving process died (``kill -9``, out of memory) stays in the
mount table: the kernel answers every call on it, ``statfs`` of the mount
point included, with ``ENOTCONN`` ("Transport endpoint is not connected"), and
nothing can be mounted there until it is detached. Such a mount is *dead*:
nothing it held can be served or committed any more, so detaching it lazily
(``fusermount3 -u -z``) loses nothing, and ``mount`` and ``unmount`` both do.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from filespace.cli import context, output
from filespace.cli.errors import CliError
from filespace.cli.params import JsonOpt

_MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(rb"\\([0-7]{3})")
# What a FUSE mount whose serving process is gone answers (ECONNABORTED: an
# aborted connection, /sys/fs/fuse/connections/N/abort).
_DEAD_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED)
_UNMOUNT_TIMEOUT_S = 60


class MountState(Enum):
    """What is at a mount point."""

    NONE = "none"
    LIVE = "live"
    DEAD = "dead"


def mount_state(mountpoint: Path) -> MountState:
    """Whether ``mountpoint`` holds nothing, a serving mount, or a dead FUSE mount."""
    # statfs, not stat: the kernel answers stat from its attribute cache for a
    # second or so after the process died, but always asks the process for statfs.
    try:
        os.statvfs(mountpoint)
    except OSError as exc:
        if exc.errno in _DEAD_ERRNOS:
            return MountState.DEAD
        return MountState.NONE
    return MountState.LIVE if os.path.ismount(mountpoint) else MountState.NONE


def mounted_type(mountpoint: Path) -> str | None:
    """The file system type mounted last at ``mountpoint`` (``fuse.filespace``), or None.

    None too where the mount table cannot be read (not Linux).
    """
    # The mount point itself may not answer stat (dead): resolve its parent only.
    where = os.path.join(os.path.realpath(mountpoint.parent), mountpoint.name)
    try:
        lines = _MOUNTINFO.read_bytes().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split(b" ")
        if len(fields) < 10 or b"-" not in fields:
            continue
        # Field 5 is the mount point, with space, tab, newline and \ octal-escaped.
        target = _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
        if os.fsdecode(target) == where:
            found = os.fsdecode(fields[fields.index(b"-") + 1])
    return found


def _fusermount() -> str:
    found = shutil.which("fusermount3") or shutil.which("fusermount")
    if found is None:
        raise CliError("fusermount3 is missing: install fuse3 to unmount FUSE mounts")
    return found


def detach(mountpoint: Path, *, lazy: bool) -> None:
    """Unmount the FUSE mount at ``mountpoint`` (``lazy``: now, even while it is in use).

    Raises ``CliError`` naming the mount point, and what to do, when it stays mounted.
    """
    command = [_fusermount(), "-u", *(["-z"] if lazy else []), str(mountpoint)]
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=_UNMOUNT_TIMEOUT_S,
        check=False,
    )
    if done.returncode == 0:
        return
    said = done.stderr.decode(errors="replace").strip().splitlines()
    reason = said[-1].split(": ")[-1] if said else f"fusermount3 exited {done.returncode}"
    if "busy" in reason.lower():
        raise CliError(
            f"{mountpoint}: the mount is busy (a file or directory in it is open, or a "
            "process's working directory); close them, or pass --force to detach it now "
            "(what is open keeps working until closed, then the mount's process stops)"
        )
    raise CliError(f"{mountpoint}: cannot unmount: {reason}")


def clear_dead(mountpoint: Path) -> bool:
    """Detach a dead FUSE mount at ``mountpoint``; whether there was one."""
    if mount_state(mountpoint) is not MountState.DEAD:
        return False
    detach(mountpoint, lazy=True)
    return True


def unmount(
    ctx: typer.Context,
    mountpoint: Annotated[
        Path,
        typer.Argument(
            metavar="MOUNTPOINT", help="Where the filespace is mounted.", show_default=False
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Detach it now even while files in it are open (they work until closed).",
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Unmount a filespace mounted with `filespace mount`; its process then stops."""
    mountpoint = mountpoint.absolute()
    state = mount_state(mountpoint)
    if state is MountState.NONE:
        raise CliError(f"{mountpoint}: nothing is mounted here")
    kind = mounted_type(mountpoint)
    if kind is not None and kind != "fuse" and not kind.startswith("fuse."):
        raise CliError(f"{mountpoint}: not a FUSE mount ({kind}); unmount it with umount")
    # A dead mount has nothing left to commit: detach it whatever is open.
    detach(mountpoint, lazy=force or state is MountState.DEAD)
    if context.wants_json(ctx, json_):
        output.emit_json({"mountpoint": str(mountpoint), "was": state.value, "forced": force})
        return
    if state is MountState.DEAD:
        output.say(f"detached the dead mount at {mountpoint} (its serving process had ended)")
    else:
        output.say(f"unmounted {mountpoint}")


def register(app: typer.Typer) -> None:
    """Add ``unmount`` to ``app``."""
    app.command("unmount")(unmount)
