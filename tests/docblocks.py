"""Find the code blocks of a Markdown page and run them as a reader would.

``python`` blocks run in one namespace per page, in the test's process.
``console`` blocks are a shell session: each ``$ `` line (continued by a
trailing backslash) is one command, run by ``bash`` in the page's directory,
and the lines after it are its output, compared with what it printed once
both are normalised (ids, times, ports and process ids stand for any; runs
of spaces are one). A command shown with no output may print anything; one
whose output starts ``error:`` must fail with exit code 1, every other must
succeed. ``sh`` blocks are scripts that must succeed. Variables a shell
block exports are kept for the page's later blocks, Python's included, as in
one terminal.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

RUNNABLE = ("python", "console", "sh")
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:(.*)-->\s*$")
_NEEDS = re.compile(r"^<!--\s*needs:\s*(\w+)\s*-->\s*$")
_TIMEOUT_S = 120
# What differs from run to run, and what stands for it on both sides.
_VARYING = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d"), "<time>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\bprocess \d+"), "process <pid>"),
]


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, text, first line and marks."""

    lang: str
    text: str
    line: int
    not_run: str | None = None
    needs: str | None = None

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE and self.not_run is None


def blocks(markdown: str) -> list[Block]:
    """The page's fenced blocks in order, with the mark on the line before each."""
    found: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and lines[index].rstrip() != "```":
            index += 1
        previous = next((x for x in reversed(lines[:start]) if x.strip()), "")
        not_run, needs = _NOT_RUN.match(previous), _NEEDS.match(previous)
        found.append(
            Block(
                lang=opening.group(1),
                text="\n".join(lines[start + 1 : index]) + "\n",
                line=start + 1,
                not_run=not_run.group(1).strip() if not_run else None,
                needs=needs.group(1) if needs else None,
            )
        )
        index += 1
    return found


def session(text: str) -> list[tuple[str, str]]:
    """A console block as ``(command, expected output)`` pairs."""
    pairs: list[tuple[str, list[str]]] = []
    continuing = False
    for line in text.splitlines():
        if continuing:
            pairs[-1] = (pairs[-1][0] + "\n" + line, pairs[-1][1])
        elif line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
            continue
        continuing = line.endswith("\\")
    return [(command, "\n".join(out)) for command, out in pairs]


def normalise(text: str) -> str:
    """``text`` with what varies between runs replaced, spaces collapsed."""
    for pattern, stand_in in _VARYING:
        text = pattern.sub(stand_in, text)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.strip().splitlines()]
    return "\n".join(lines)


class Runner:
    """Runs one page's blocks in order, with the state a reader's terminal would keep."""

    def __init__(
        self, page: str, work: Path, monkeypatch: pytest.MonkeyPatch, *, config_home: Path
    ) -> None:
        self.page = page
        self.work = work
        self.monkeypatch = monkeypatch
        self.config_home = config_home
        # A module of its own, as a script's __main__ is: what the page defines pickles.
        module = types.ModuleType("__guide__")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        self.namespace = module.__dict__
        self.env_file = work.parent / "env.after"

    def run(self, block: Block) -> None:
        where = f"{self.page}, block at line {block.line}"
        if block.lang == "python":
            code = compile(block.text, f"<{where}>", "exec")
            exec(code, self.namespace)  # noqa: S102 - the guide's own code, run as written
        elif block.lang == "sh":
            self.shell(block.text, where)
        else:
            for command, expected in session(block.text):
                self.command(command, expected, where)

    def command(self, command: str, expected: str, where: str) -> None:
        done = self.shell(command, where, check=False)
        shown = done.stdout.replace(str(self.config_home), "~/.config")
        wants_error = expected.startswith("error:")
        assert done.returncode == (1 if wants_error else 0), (
            f"{where}: `{command}` exited {done.returncode}:\n{shown}"
        )
        if expected:
            assert normalise(shown) == normalise(expected), (
                f"{where}: `{command}` printed:\n{shown}\nand the page says:\n{expected}"
            )

    def shell(
        self, script: str, where: str, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``script`` in bash; keep what it exported for the blocks after it."""
        wrapped = (
            "set -o pipefail\n"
            + ("set -e\n" if check else "")
            + script
            + f"\n__status=$?; env -0 > {shlex.quote(str(self.env_file))}; exit $__status\n"
        )
        done = subprocess.run(
            ["bash", "-c", wrapped],
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{where} exited {done.returncode}:\n{done.stdout}"
        self.keep_exports()
        return done

    def keep_exports(self) -> None:
        if not self.env_file.exists():
            return
        after = dict(
            item.split("=", 1) for item in self.env_file.read_text().split("\0") if "=" in item
        )
        self.env_file.unlink()
        for name, value in after.items():
            if name not in ("_", "SHLVL", "PWD", "OLDPWD") and os.environ.get(name) != value:
                self.monkeypatch.setenv(name, value)


@functools.cache
def fuse_works() -> bool:
    """Whether this machine lets a process mount with FUSE (tests/test_fuse.py probes)."""
    from tests.test_fuse import _WHY_NOT

    return _WHY_NOT is None


def unmount_under(directory: Path) -> None:
    """Unmount what a page left mounted below ``directory`` (a page that failed half-way)."""
    for top, dirs, _ in os.walk(directory):
        for name in list(dirs):
            path = os.path.join(top, name)
            if os.path.ismount(path):
                dirs.remove(name)  # never walk into a mount
                with contextlib.suppress(OSError):
                    subprocess.run(["fusermount3", "-u", "-z", path], check=False)
