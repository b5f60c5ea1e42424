"""The documentation site: ``mkdocs build --strict`` passes, and every guide runs.

Each page of ``docs/guides/`` is run as a reader would follow it, in its own
empty working directory: its ``python`` blocks in order in one fresh namespace,
its ``console`` blocks command by command through ``bash`` (output compared
with the page, see ``tests/docblocks.py``) and its ``sh`` blocks as scripts,
against the session's SeaweedFS server, whose address and credentials are in
the ``AWS_*`` variables the guides tell a reader to export. A block after
``<!-- not run: why -->`` is skipped (and counted: keep them few); one after
``<!-- needs: fuse -->`` or ``<!-- needs: postgresql -->`` runs where that is
available.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3
from tests import docblocks, requirements
from tests.fsfixtures import POSTGRES_ENV, postgres_schema_url
from tests.s3fixtures import _delete_bucket

ROOT = Path(__file__).resolve().parent.parent
GUIDES = sorted((ROOT / "docs" / "guides").glob("*.md"))
# Blocks the suite cannot run, by page: each is marked in the page with its reason.
MOST_NOT_RUN = 6


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """Broken links, bad nav entries and docstrings mkdocstrings cannot render fail the build."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    # No module named mkdocs: install the dev extra (scripts/test does).
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "errors" / "index.html").is_file()


def test_the_api_reference_names_every_public_name() -> None:
    """A name added to ``filespace.__all__`` must get its entry in docs/reference/."""
    text = "\n".join(p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md"))
    documented = {line.split()[1] for line in text.splitlines() if line.startswith("::: ")}
    missing = {f"filespace.{name}" for name in filespace.__all__} - documented
    assert missing - {"filespace.__version__"} == set()


def test_few_blocks_are_left_unrun() -> None:
    """Every skipped block says why, and there are few of them."""
    skipped = [
        (page.name, block.line, block.not_run)
        for page in GUIDES
        for block in docblocks.blocks(page.read_text())
        if block.not_run is not None
    ]
    assert all(reason.strip() for _, _, reason in skipped), skipped
    assert len(skipped) <= MOST_NOT_RUN, skipped


@pytest.fixture
def guide_env(
    s3_server: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> Iterator[dict[str, Any]]:
    """What a reader of the guides has: the local S3's variables, an empty directory."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.admin.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.admin.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    # The console script and `python` of this environment, as an activated venv has them.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    s3 = s3_server.client()
    before = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    try:
        yield {"work": work, "config_home": isolated_env / "config"}
    finally:
        filespace.close_shared()
        docblocks.unmount_under(work)
        for name in {b["Name"] for b in s3.list_buckets().get("Buckets", [])} - before:
            _delete_bucket(s3, name)


@pytest.mark.parametrize("page", GUIDES, ids=[p.stem for p in GUIDES])
def test_the_guide_runs(
    page: Path, guide_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every block of the page runs, in order, and says what the page says it says."""
    blocks = docblocks.blocks(page.read_text())
    assert any(b.runnable for b in blocks), f"{page.name} has no block to run"
    if any(b.needs == "postgresql" for b in blocks) and not os.environ.get(POSTGRES_ENV):
        requirements.skip("postgresql", f"{POSTGRES_ENV} is not set: {page.name} needs it")
    with postgres_schema_or_none(blocks) as database:
        if database is not None:
            monkeypatch.setenv("FILESPACE_DATABASE", database)
        runner = docblocks.Runner(
            page.name, guide_env["work"], monkeypatch, config_home=guide_env["config_home"]
        )
        for block in blocks:
            if block.runnable and (block.needs != "fuse" or docblocks.fuse_works()):
                runner.run(block)


def postgres_schema_or_none(blocks: list[docblocks.Block]) -> Any:
    """A fresh PostgreSQL schema URL for a page that needs one (dropped after), else None."""
    if any(b.needs == "postgresql" for b in blocks):
        return postgres_schema_url()
    return contextlib.nullcontext(None)


def test_a_console_block_is_read_as_commands_and_their_output() -> None:
    """``$`` lines (continued by a backslash) are commands; the lines after them, output."""
    text = "$ export A=1\n$ printf 'x\\n' \\\n    | cat\nx\n$ false\nerror: no\n"
    assert docblocks.session(text) == [
        ("export A=1", ""),
        ("printf 'x\\n' \\\n    | cat", "x"),
        ("false", "error: no"),
    ]
    marked = (
        "<!-- not run: needs AWS -->\n```sh\nls\n```\n\n"
        "<!-- needs: fuse -->\n```console\n$ ls\n```\n"
    )
    first, second = docblocks.blocks(marked)
    assert (first.not_run, first.runnable) == ("needs AWS", False)
    assert (second.needs, second.runnable, second.line) == ("fuse", True, 7)


def test_output_is_compared_without_what_varies_between_runs() -> None:
    shown = "created 'a' (id 956e23a5-ef5b-4940-8584-4d32e95240a7) at http://127.0.0.1:49207\n"
    page = "created 'a' (id 00000000-0000-0000-0000-000000000000) at  http://127.0.0.1:8333"
    assert docblocks.normalise(shown) == docblocks.normalise(page)
    assert docblocks.normalise("3 added") != docblocks.normalise("4 added")


def test_the_benchmark_summary_runs_the_recorded_commands() -> None:
    """The summary's commands are the ones the history measured with, and their scripts exist."""
    summary = (ROOT / "docs" / "benchmarks.md").read_text()
    history = (ROOT / "docs" / "benchmarks-history.md").read_text()
    (commands,) = [b.text for b in docblocks.blocks(summary) if b.lang == "sh"]
    for line in commands.splitlines():
        assert line in history, line
        for script in re.findall(r"benchmarks/(\w+\.py)", line):
            assert (ROOT / "benchmarks" / script).is_file(), script
