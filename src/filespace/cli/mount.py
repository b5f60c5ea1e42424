"""``filespace mount``: serve a filespace as a FUSE file system.

Without ``--foreground`` the command starts itself again in the foreground as
a detached process, waits until the mount is live (or the process has failed,
and then prints why), and returns; the process serves until the mount point
is unmounted (``filespace unmount``, ``fusermount3 -u``) and writes its log
next to the block cache. A dead mount left at the mount point by a serving
process that was killed is detached first (:mod:`filespace.cli.unmount`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

import filespace
from filespace.cli import context, output
from filespace.cli.errors import CliError
from filespace.cli.params import JsonOpt
from filespace.cli.unmount import clear_dead

_START_TIMEOUT_S = 60.0
LOCATION_ENV = "FILESPACE"  # read by the root command's --filespace option


def _check_mountpoint(mountpoint: Path, *, nonempty: bool) -> None:
    if clear_dead(mountpoint):
        output.note(f"detached a dead mount at {mountpoint} (its serving process had ended)")
    if not mountpoint.is_dir():
        raise CliError(f"{mountpoint}: the mount point must be an existing directory")
    if os.path.ismount(mountpoint):
        raise CliError(f"{mountpoint}: something is already mounted here")
    # libfuse 3 mounts over files silently: they would vanish from view until
    # the unmount, and whatever uses them would see the filespace instead.
    if not nonempty and _has_entries(mountpoint):
        raise CliError(
            f"{mountpoint}: the mount point is not empty; its files would be hidden while "
            "mounted (pass --nonempty to mount over them anyway)"
        )


def _has_entries(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is not None


def _log_file(mountpoint: Path) -> Path:
    """Where the background process of this mount point writes its log."""
    tag = hashlib.sha256(str(mountpoint).encode()).hexdigest()[:12]
    root = filespace.cache_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as a filespace makes it
    folder = root / "mounts"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{mountpoint.name or 'root'}-{tag}.log"


def _private_log(log: Path) -> int:
    """``log`` emptied (or made) for writing, mode 0600 whatever the umask or its old mode."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _last_error(log: Path) -> str:
    """The line of the log that says why the process stopped."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    return lines[-1] if lines else "the mount process stopped without saying why"


def _in_background(
    location: str,
    mountpoint: Path,
    cache_mb: int,
    *,
    debug: bool,
    nonempty: bool,
    revalidate_after: float = 0.0,
) -> int:
    """Start the serving process detached; its pid once the mount is live.

    The location goes to the process in its environment (``FILESPACE``), not
    its arguments: a PostgreSQL URL may hold a password, and a process's
    arguments are visible to every user of the machine for as long as it
    runs, its environment only to its owner.
    """
    log = _log_file(mountpoint)
    command = [sys.executable, "-m", "filespace"]
    if debug:
        command.append("--debug")
    command += ["mount", str(mountpoint), "--foreground", "--cache-mb", str(cache_mb)]
    if nonempty:
        command.append("--nonempty")
    if revalidate_after:
        command += ["--revalidate-after", repr(revalidate_after)]
    sink = _private_log(log)
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env={**os.environ, LOCATION_ENV: location},
            start_new_session=True,  # outlives this terminal and its signals
        )
    finally:
        os.close(sink)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CliError(_last_error(log))
        if os.path.ismount(mountpoint):
            return process.pid
        time.sleep(0.05)
    process.terminate()
    raise CliError(f"{mountpoint}: the mount did not come up within {_START_TIMEOUT_S:.0f} s")


def mount(
    ctx: typer.Context,
    location: Annotated[
        str | None,
        typer.Argument(
            metavar="[LOCATION]",
            help="The filespace: a directory or an engine URL (default: --filespace / FILESPACE).",
            show_default=False,
        ),
    ] = None,
    mountpoint: Annotated[
        Path | None,
        typer.Argument(
            metavar="MOUNTPOINT", help="An existing directory to mount it on.", show_default=False
        ),
    ] = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Serve in this process until unmounted.")
    ] = False,
    cache_mb: Annotated[
        int,
        typer.Option(
            "--cache-mb", min=0, metavar="MB", help="Block cache for linked files, in MB."
        ),
    ] = 1024,
    nonempty: Annotated[
        bool,
        typer.Option(
            "--nonempty", help="Mount over a directory that has files (hidden while mounted)."
        ),
    ] = False,
    revalidate_after: Annotated[
        float,
        typer.Option(
            "--revalidate-after",
            min=0,
            metavar="SECONDS",
            help="Open a cached linked file without asking its server if it confirmed the "
            "object less than this long ago (0: always ask).",
        ),
    ] = 0.0,
    json_: JsonOpt = False,
) -> None:
    """Mount the filespace with FUSE: native files read-write, linked files read-only."""
    if mountpoint is None:  # one argument: the mount point, the filespace from -f / FILESPACE
        if location is None:
            raise typer.BadParameter("missing MOUNTPOINT", param_hint="MOUNTPOINT")
        where, mountpoint = context.location(ctx), Path(location)
    else:
        where = location or context.location(ctx)
    mountpoint = mountpoint.absolute()
    shown = filespace.public_location(where)
    _check_mountpoint(mountpoint, nonempty=nonempty)
    if not foreground:
        # Open it once here, so a wrong location or key is reported at once.
        filespace.open(where).close()
        debug = context.options(ctx).debug
        pid = _in_background(
            where,
            mountpoint,
            cache_mb,
            debug=debug,
            nonempty=nonempty,
            revalidate_after=revalidate_after,
        )
        if context.wants_json(ctx, json_):
            output.emit_json({"location": shown, "mountpoint": str(mountpoint), "pid": pid})
            return
        output.say(f"mounted {shown} at {mountpoint} (process {pid})")
        output.say(f"unmount with: filespace unmount {mountpoint}")
        return
    from filespace.fuse import mount as serve

    with filespace.open(where, cache_size_mb=cache_mb, revalidate_after_s=revalidate_after) as fsp:
        output.note(f"serving {shown} at {mountpoint}; unmount to stop")
        try:
            serve(fsp, str(mountpoint))
        except RuntimeError as exc:
            raise CliError(f"{mountpoint}: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add ``mount`` to ``app``."""
    app.command("mount")(mount)
