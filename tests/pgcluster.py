"""A throw-away PostgreSQL cluster for tests that stop or restart the server.

No test may restart a server it does not own: ``pg_cluster`` makes its own with
``initdb`` in a temporary directory, serves it on a free port of 127.0.0.1 with
``pg_ctl``, and removes it afterwards. As root (``initdb`` refuses to run as
root) the cluster belongs to the ``postgres`` user and its commands run as
that user. Without ``initdb`` the tests skip, which fails a run that requires
PostgreSQL (see tests/requirements.py).

``pg_pair`` makes a primary and a streaming standby of it (``pg_basebackup``)
for tests of a failover: the primary stops, the standby is promoted, and
clients given both hosts in one URL find the new primary.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import requirements
from tests.waiting import until

_TIMEOUT_S = 120  # pg_ctl waits for the server itself; this only bounds a hang


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on the PATH, else Debian's newest.

    A link on the PATH is followed to the server's own directory, which also
    holds its other tools (``pg_basebackup``).
    """
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found = [bindir for bindir in found if (bindir / "pg_ctl").exists()]
    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """A PostgreSQL cluster of the test's own, served at ``url`` on a port of its own."""

    def __init__(self, bindir: Path, user: str | None, *, log_connections: bool = False) -> None:
        self._bindir = bindir
        self._log_connections = log_connections
        self._user = user  # run the server as this user (when we are root)
        self.directory = Path(tempfile.mkdtemp(prefix="filespace-pg-"))
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.data = self.directory / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __repr__(self) -> str:
        return f"PgCluster(port={self.port}, directory={str(self.directory)!r})"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bindir / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(
            command,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            cwd=self.directory,
        )
        if done.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{tool} {' '.join(args)} exited {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}\n{tail}"
            )

    def create(self) -> None:
        """``initdb``: trust for local connections, user ``postgres``, nothing fsynced."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.directory} -c fsync=off"
        )
        if self._log_connections:
            options += " -c log_connections=on"
        self._run("pg_ctl", "-D", str(self.data), "-l", self._log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: smart, fast or immediate) and wait until it is down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port: every connection to it breaks."""
        self._run("pg_ctl", "-D", str(self.data), "-l", self._log, "-m", mode, "-w", "restart")

    def standby(self, *, log_connections: bool = False) -> PgCluster:
        """A streaming standby of this (running) cluster, started on a port of its own.

        ``pg_basebackup -R`` copies the cluster and configures the copy to
        follow it; the standby serves read-only sessions until ``promote``.
        ``log_connections``: the standby's log records every session opened
        on it (``connections``), read-only ones that clients drop included.
        """
        copy = PgCluster(self._bindir, self._user, log_connections=log_connections)
        try:
            copy._run(
                "pg_basebackup",
                *("-D", str(copy.data), "-h", "127.0.0.1", "-p", str(self.port)),
                *("-U", "postgres", "-R", "-X", "stream", "--no-sync"),
            )
            copy.start()
        except BaseException:
            copy.remove()
            raise
        return copy

    def promote(self) -> None:
        """Make a standby a primary, and wait until it accepts writes.

        By SQL, not ``pg_ctl``: a test promotes while a mount it reads through
        may be waiting for a primary, and a child forked then would inherit
        the test's open files on that mount, whose close in the child (before
        ``exec``) waits for the mount, which waits for the promotion.
        """
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_promote(wait => true)")
        until(lambda: not self._in_recovery(), f"{self} to leave recovery")

    def _in_recovery(self) -> bool:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return bool(row and row[0])

    def log_tail(self, size: int = 30_000) -> str:
        """The end of the server's log."""
        log = Path(self._log)
        return log.read_text(errors="replace")[-size:] if log.exists() else ""

    def connections(self) -> int:
        """How many sessions the server's log says it authorized (``log_connections``)."""
        log = Path(self._log)
        text = log.read_text(errors="replace") if log.exists() else ""
        return text.count("connection authorized:")

    @property
    def _log(self) -> str:
        # The server's output goes here, never to pg_ctl's pipes (which would then
        # stay open as long as the server runs).
        return str(self.directory / "server.log")

    @property
    def running(self) -> bool:
        """Whether the server is up (its pid file is there)."""
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs, and delete the cluster."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def _server_user() -> str | None:
    """Who runs the server: ``postgres`` as root (initdb refuses root), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        requirements.skip("postgresql", "as root, a throw-away cluster needs a 'postgres' user")
    if shutil.which("runuser") is None:
        requirements.skip("postgresql", "as root, a throw-away cluster needs runuser")
    return "postgres"


def _bindir() -> Path:
    """``find_bindir``'s answer, or a skip saying why there is none."""
    bindir = find_bindir()
    if bindir is None:
        requirements.skip(
            "postgresql",
            "no initdb/pg_ctl (on the PATH or in /usr/lib/postgresql/*/bin): "
            "a throw-away cluster needs the PostgreSQL server package",
        )
    return bindir


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PgCluster]:
    """A started PostgreSQL cluster of this module's own, removed after its tests."""
    cluster = PgCluster(_bindir(), _server_user())
    try:
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@dataclass(frozen=True)
class PgPair:
    """A primary and its streaming standby; ``url`` names both, for read-write sessions."""

    primary: PgCluster
    standby: PgCluster

    @property
    def url(self) -> str:
        """libpq's multi-host URL: the first of the two that accepts writes serves a session."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"


@pytest.fixture
def pg_pair() -> Iterator[PgPair]:
    """A primary and a streaming standby of this test's own, removed after it.

    The standby logs every session opened on it, so a test can see a client
    try it while it is still read-only.
    """
    bindir = _bindir()
    if not (bindir / "pg_basebackup").exists():
        requirements.skip(
            "postgresql",
            f"no pg_basebackup in {bindir}: a standby needs the PostgreSQL server package's tools",
        )
    primary = PgCluster(bindir, _server_user())
    try:
        primary.create()
        primary.start()
        standby = primary.standby(log_connections=True)
        try:
            yield PgPair(primary, standby)
        finally:
            # Shown with a failing test's captured output: what each server did.
            for name, cluster in (("primary", primary), ("standby", standby)):
                print(f"--- {name} {cluster!r}, end of its log:\n{cluster.log_tail()}")
            standby.remove()
    finally:
        primary.remove()
