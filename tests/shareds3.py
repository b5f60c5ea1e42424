"""One SeaweedFS server for many pytest sessions (``scripts/mutate``).

mutmut runs every mutant's tests in a pytest session of its own, and a
session's ``s3_server`` would start SeaweedFS for each (about 5 s, start and
stop). ``scripts/mutate`` starts one server, writes its description with
:func:`save` and names the file in ``FILESPACE_TEST_S3_SHARED``; the
``s3_server`` fixture then hands out a :class:`SharedS3` for it. Tests use
it like their own server, but may not stop, pause or restart it: it belongs
to the process that started it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from filespace.testing import S3Identity, SeaweedS3

ENV = "FILESPACE_TEST_S3_SHARED"
_IDENTITIES = ("admin", "reader", "spare", "noaccess")


def save(server: SeaweedS3, path: Path) -> None:
    """Describe the running ``server`` in ``path`` (0600: it holds the secrets)."""
    if server.pid is None:
        raise RuntimeError(f"{server!r} is not running")
    state = {
        "workdir": str(server.workdir),
        "weed": server.weed,
        "ports": server.ports,
        "pid": server.pid,
        **{name: asdict(getattr(server, name)) for name in _IDENTITIES},
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(state, f)


class SharedS3(SeaweedS3):
    """A running server that another process started and will stop."""

    def __init__(self, path: Path) -> None:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        super().__init__(Path(state["workdir"]), weed=state["weed"])
        for name in _IDENTITIES:
            setattr(self, name, S3Identity(**state[name]))
        self.ports = {name: int(port) for name, port in state["ports"].items()}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self._owner = int(state["pid"])

    @property
    def pid(self) -> int | None:
        return self._owner if self.running else None

    @property
    def running(self) -> bool:
        return Path(f"/proc/{self._owner}").exists()

    @property
    def paused(self) -> bool:
        return False

    def start(self, timeout: float = 60) -> None:
        raise RuntimeError(f"{self!r} is shared: its owner starts it")

    def stop(self, grace: float = 10) -> None:
        """Leave the server running: its owner stops it."""

    def restart(self, timeout: float = 60, *, grace: float = 10) -> None:
        raise RuntimeError(f"{self!r} is shared: it cannot be restarted")

    def pause(self) -> None:
        raise RuntimeError(f"{self!r} is shared: it cannot be paused")

    def resume(self) -> None:
        raise RuntimeError(f"{self!r} is shared: it cannot be paused")
