"""Running the real ``filespace`` console script for the CLI tests.

Each command runs in a subprocess with an isolated environment (its own
config directory for key files, cache directory and ``FILESPACE``). Every
run checks that no known secret appears on stdout or stderr, unless the test
asks for ``store show --show-secret``. Test modules load this file with
``pytest_plugins = ["tests.cli_helpers"]`` and import its helpers too, so it is
imported before pytest could rewrite its asserts: PYTEST_DONT_REWRITE (every
assert here carries its own message).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

import filespace
from filespace import S3DataStoreConfig
from filespace.testing import S3Identity, SeaweedS3
from tests import leakguard, waiting
from tests.s3fixtures import _delete_bucket

FILESPACE = shutil.which("filespace", path=str(Path(sys.executable).parent)) or shutil.which(
    "filespace"
)
_TIMEOUT_S = 120
# Bytecode of the commands' modules is cached outside the source tree, so each
# run does not recompile them (this environment sets PYTHONDONTWRITEBYTECODE).
_PYCACHE = Path(tempfile.gettempdir()) / f"filespace-cli-tests-pycache-{os.getuid()}"


@dataclass
class Result:
    """What one run of the command printed, and how it exited."""

    args: Sequence[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as the one JSON document it must be."""
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"filespace {' '.join(self.args)} -> {self.code}\n{self.out}\n{self.err}"


@dataclass
class Cli:
    """Runs ``filespace`` for one isolated user with one filespace location."""

    home: Path
    location: Path
    secrets: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FILESPACE", "AWS_", "PYTHONDONTWRITEBYTECODE"))
        }
        keep.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            FILESPACE_CACHE_DIR=str(self.home / "cache"),
            FILESPACE=str(self.location),
            LC_ALL="C.UTF-8",
            COLUMNS="80",
            PYTHONPYCACHEPREFIX=str(_PYCACHE),
        )
        return keep

    def run(
        self,
        *args: str,
        stdin: str | bytes = b"",
        env: dict[str, str] | None = None,
        reveal: bool = False,
    ) -> Result:
        """Run the console script; stdin is never a terminal here."""
        assert FILESPACE, "the filespace console script is not installed"
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            [FILESPACE, *args],
            input=data,
            capture_output=True,
            env={**self.env, **(env or {})},
            timeout=_TIMEOUT_S,
            check=False,
            cwd=self.home,
        )
        result = Result(
            args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode()
        )
        if not reveal:
            for secret in self.secrets:
                assert secret not in result.out, f"secret on stdout: {result}"
                assert secret not in result.err, f"secret on stderr: {result}"
            shown = leakguard.found_in(result.out + result.err)
            assert not shown, f"a known secret in the output of filespace {' '.join(args)}"
        return result

    def ok(self, *args: str, **options: Any) -> Result:
        """Run and require success."""
        result = self.run(*args, **options)
        assert result.code == 0, str(result)
        return result

    def fails(self, *args: str, **options: Any) -> Result:
        """Run and require the one-line ``error: ...`` failure with exit code 1."""
        result = self.run(*args, **options)
        assert result.code == 1, str(result)
        assert result.err.startswith("error: "), str(result)
        assert result.err.count("\n") == 1, str(result)
        assert "Traceback" not in result.err
        return result

    def usage_error(self, *args: str, **options: Any) -> Result:
        """Run and require Typer's usage error, exit code 2."""
        result = self.run(*args, **options)
        assert result.code == 2, str(result)
        return result

    @contextmanager
    def api(self) -> Iterator[filespace.Filespace]:
        """The same filespace through the Python API in this process, for set-up and checks."""
        key = self.home / "config" / "filespace" / "keys"
        with filespace.open(self.location, cache_dir=self.home / "api-cache") as probe:
            key = key / f"{probe.id}.key"
        with filespace.open(
            self.location, key=key.read_text().strip(), cache_dir=self.home / "api-cache"
        ) as fsp:
            yield fsp

    def bytes_out(self, *args: str) -> bytes:
        """Run and return raw stdout (for ``cat``)."""
        assert FILESPACE
        proc = subprocess.run(
            [FILESPACE, *args], capture_output=True, env=self.env, timeout=_TIMEOUT_S, check=False
        )
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stderr == b""
        return proc.stdout

    def on_terminal(self, *args: str, answer: str = "", after: str = "") -> tuple[int, str]:
        """Run with stdin, stdout and stderr on a pseudo-terminal.

        ``answer`` is typed at once, or once ``after`` has been printed (a
        hidden prompt must have turned echo off before a secret is typed).
        """
        assert FILESPACE
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [FILESPACE, *args], stdin=slave, stdout=slave, stderr=slave, env=self.env
        )
        os.close(slave)
        if answer and not after:
            os.write(master, answer.encode())
        typed = not after
        chunks: list[bytes] = []
        deadline = time.monotonic() + _TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not typed and after.encode() in b"".join(chunks):
                # The prompt is printed before echo goes off (and typeahead is
                # flushed then): type once the terminal says echo is off.
                waiting.until(
                    lambda: (
                        not termios.tcgetattr(master)[3] & termios.ECHO or proc.poll() is not None
                    ),
                    "the hidden prompt to turn echo off",
                    poll_s=0.01,
                )
                os.write(master, answer.encode())
                typed = True
        os.close(master)
        code = proc.wait(timeout=_TIMEOUT_S)
        text = b"".join(chunks).decode(errors="replace")
        for secret in self.secrets:
            assert secret not in text
        assert not leakguard.found_in(text), "a known secret on the terminal"
        return code, text


def all_secrets(server: SeaweedS3) -> list[str]:
    """Every secret key of the test server's identities."""
    return [i.secret_key for i in (server.admin, server.reader, server.spare, server.noaccess)]


def new_cli(home: Path, secrets: list[str] | None = None) -> Cli:
    """A Cli for a fresh home directory; its filespace is ``home/fs`` (not created)."""
    home.mkdir(parents=True, exist_ok=True)
    return Cli(home=home, location=home / "fs", secrets=list(secrets or []))


@pytest.fixture(scope="module")
def plain_cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """An initialized filespace with Connect off, no S3 server needed."""
    cli = new_cli(tmp_path_factory.mktemp("cli-plain"))
    cli.ok("init", str(cli.location), "--name", "plain")
    return cli


@pytest.fixture(scope="module")
def connect_cli(tmp_path_factory: pytest.TempPathFactory, s3_server: SeaweedS3) -> Cli:
    """An initialized filespace with Connect enabled; every server secret is watched."""
    cli = new_cli(tmp_path_factory.mktemp("cli-connect"), all_secrets(s3_server))
    cli.ok("init", str(cli.location), "--name", "linked")
    cli.ok("connect", "enable")
    return cli


@pytest.fixture(scope="module")
def shared_bucket(s3_server: SeaweedS3) -> Iterator[str]:
    """A bucket shared by one test module, deleted afterwards."""
    name = s3_server.create_bucket(f"cli-{uuid4().hex[:12]}")
    yield name
    _delete_bucket(s3_server.client(), name)


def add_store(
    cli: Cli,
    server: SeaweedS3,
    name: str,
    bucket: str,
    *,
    endpoint: str | None = None,
    identity: S3Identity | None = None,
) -> None:
    """Set-up: add a data store through the API (``store add`` has its own tests)."""
    who = identity or server.admin
    config = S3DataStoreConfig(
        access_key=who.access_key,
        secret_key=who.secret_key,
        bucket_name=bucket,
        region=server.region,
        endpoint=endpoint or server.endpoint,
    )
    with cli.api() as fsp:
        fsp.connect.add_data_store(name, config)


def link(cli: Cli, path: str, store: str, key: str, size: int = 1, checksum: str = "e") -> None:
    """Set-up: link an object (its parents made) through the API, without a lookup."""
    with cli.api() as fsp:
        _make_parents(fsp, path)
        fsp.connect.link_file(path, store, key, size, checksum)


def make_dirs(cli: Cli, path: str) -> None:
    """Set-up: a directory and its parents, through the API."""
    with cli.api() as fsp:
        _make_parents(fsp, path + "/x")


def write(cli: Cli, path: str, data: bytes) -> None:
    """Set-up: a native file (its parents made) through the API."""
    with cli.api() as fsp:
        _make_parents(fsp, path)
        fsp.fs.write_file(path, data)


def _make_parents(fsp: filespace.Filespace, path: str) -> None:
    current = ""
    for name in path.strip("/").split("/")[:-1]:
        current += "/" + name
        if not fsp.fs.dir_exists(current):
            fsp.fs.create_dir(current)


def store_names(cli: Cli) -> set[str]:
    """The data stores, read through the API."""
    with cli.api() as fsp:
        return {info.name for info in fsp.connect.list_data_stores()}


def exists(cli: Cli, path: str) -> bool:
    """Whether anything is at ``path``, read through the API."""
    with cli.api() as fsp:
        try:
            fsp.fs.get_entry(path)
        except FileNotFoundError:
            return False
        return True


def unused_port_endpoint() -> str:
    """An endpoint on a loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
