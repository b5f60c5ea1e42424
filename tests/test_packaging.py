"""The package as a user installs it, not the editable install the suite runs on.

``scripts/wheel-smoke`` builds the sdist and the wheel, installs the wheel
with its extras into a fresh virtual environment and runs the command line
from there; this test runs that script, so the suite (``scripts/test``) fails
when the package would not install or start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import filespace

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_built_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILESPACE", "PYTHONPATH"))}
    env.update(PYTHON=sys.executable, TMPDIR=str(tmp_path))
    result = subprocess.run(
        [str(ROOT / "scripts" / "wheel-smoke"), "--keep", str(tmp_path / "dist")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("wheel-smoke: OK"), result.stdout
    built = sorted(path.name for path in (tmp_path / "dist").iterdir())
    version = filespace.__version__
    assert built == [f"filespace-{version}-py3-none-any.whl", f"filespace-{version}.tar.gz"]
    # The script's own work directory is gone: only what --keep asked for is left.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dist"]
