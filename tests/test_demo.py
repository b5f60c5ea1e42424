"""``scripts/demo`` run as a user would off a terminal: it works, and leaves nothing behind.

The demo runs with a home, a temporary directory and a filespace location of
its own, so what it leaves is exactly what these hold afterwards: the key
directory (``~/.config/filespace/keys``), the cache root (``~/.cache/filespace``)
and the temporary directory must be as they were. The S3 server's sockets,
which SeaweedFS puts in /tmp whatever TMPDIR says, must be gone too.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _everything(top: Path) -> set[str]:
    return {str(path.relative_to(top)) for path in top.rglob("*")}


def _dead_sockets_since(before: set[str]) -> list[str]:
    """New SeaweedFS sockets in /tmp that nobody listens on (another server's are alive)."""
    dead = []
    for name in sorted(set(os.listdir("/tmp")) - before):
        if not name.startswith("seaweedfs-"):
            continue
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(f"/tmp/{name}")
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError:
                dead.append(name)
    return dead


@pytest.mark.slow
def test_the_demo_leaves_the_machine_as_it_found_it(tmp_path: Path) -> None:
    home, temp, location = tmp_path / "home", tmp_path / "tmp", tmp_path / "demo.filespace"
    home.mkdir()
    temp.mkdir()
    (home / ".config" / "filespace" / "keys").mkdir(parents=True)
    (home / ".config" / "filespace" / "keys" / "other.key").write_text("someone else's\n")
    sockets_before = set(os.listdir("/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILESPACE", "AWS_", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(temp), LC_ALL="C.UTF-8")
    before = _everything(home)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--location", str(location)],
        stdin=subprocess.DEVNULL,  # not a terminal: the demo does not wait for Ctrl-C
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # Every command's own output is shown, init's (with the key's place) and the last mirror's.
    assert "$ filespace init" in out and "its key is in " in out
    assert re.search(r'\$ filespace mirror .* --json\n\{\n  "dry_run": false,', out)
    assert '"unchanged": 252' in out
    first_read = re.search(r"first read of a linked file ([0-9.]+) s after the demo started", out)
    assert first_read is not None, out
    assert "the S3 server has stopped, so links to it could no longer be read" in out
    # Nothing is left: no filespace, no key, no cache, no S3 data, no temp files.
    assert not location.exists()
    assert _everything(home) == before
    assert list(temp.iterdir()) == []
    assert _dead_sockets_since(sockets_before) == []
