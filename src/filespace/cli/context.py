"""What every command shares: the global options, the open filespace, paths, confirmation."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer

import filespace
from filespace.cli.errors import CliError
from filespace.cli.escape import escape


@dataclass
class Options:
    """The global options, given before the sub-command."""

    location: str | None = None
    debug: bool = False
    json: bool = False


current = Options()
"""The options of this invocation (one process runs one command)."""


def options(ctx: typer.Context) -> Options:
    """The global options as the root callback stored them."""
    found = ctx.find_object(Options)
    return found if found is not None else current


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    """Whether to print JSON: the command's ``--json`` or the global one."""
    return flag or options(ctx).json


def location(ctx: typer.Context) -> str:
    """The filespace location from ``--filespace`` or ``FILESPACE``."""
    found = options(ctx).location
    if not found:
        raise CliError("no filespace given: pass --filespace LOCATION (-f) or set FILESPACE")
    return found


_MOST_NAMES_COMPARED = 10_000  # an error path: no guessing among a huge directory


@contextmanager
def opened(ctx: typer.Context) -> Iterator[filespace.Filespace]:
    """Open the filespace of this invocation and close it afterwards.

    A path the command did not find gets "did you mean" with the nearest
    path that is there, while the filespace is still open to look.
    """
    fsp = filespace.open(location(ctx))
    try:
        yield fsp
    except FileNotFoundError as exc:
        nearest = did_you_mean(fsp, exc.filename) if exc.strerror else None
        if nearest is not None:
            exc.strerror = f"{exc.strerror} (did you mean {nearest}?)"
        raise
    finally:
        fsp.close()


def did_you_mean(fsp: filespace.Filespace, path: object) -> str | None:
    """The path nearest to a missing filespace ``path``, corrected name by name, or None.

    Each name not in its directory is replaced by the closest one there; a
    missing last name with no close one is kept (it may be what the command
    was to create), so the answer is a path whose directory exists.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    names = [name for name in path.split("/") if name]
    nearest = "/"
    for index, typed in enumerate(names):
        try:
            there = fsp.fs.list_dir(nearest)
        except OSError:
            return None
        found = typed
        if typed not in there:
            close = (
                difflib.get_close_matches(typed, there, n=1, cutoff=0.6)
                if len(there) <= _MOST_NAMES_COMPARED
                else []
            )
            if close:
                found = close[0]
            elif index < len(names) - 1:
                return None
        nearest = join(nearest, found)
    return nearest if nearest != path else None


def fs_path(text: str) -> str:
    """A filespace path from what the user typed (``data/a/`` means ``/data/a``)."""
    return filespace.normalize_path(text if text.startswith("/") else "/" + text)


def basename(path: str) -> str:
    """The last name of a normalized filespace path (``""`` for ``/``)."""
    return path.rsplit("/", 1)[-1]


def dirname(path: str) -> str:
    """The parent of a normalized filespace path."""
    return path.rsplit("/", 1)[0] or "/"


def join(directory: str, name: str) -> str:
    """``directory/name`` for filespace paths."""
    return directory.rstrip("/") + "/" + name


def hint(command: str) -> str:
    """``command`` as advice to run next: with ``--yes`` where it would be refused without.

    Commands that ask before changing things refuse off a terminal unless
    given ``--yes`` (:func:`confirm`), so a hint that left it out would fail
    for the scripts and pipelines that follow it.
    """
    return command if sys.stdin.isatty() else f"{command} --yes"


def confirm(action: str, *, yes: bool) -> None:
    """Ask before ``action`` (e.g. "remove /a"); refuse without ``--yes`` off a terminal."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(
            f"refusing to {action} without confirmation (stdin is not a terminal): "
            "pass --yes to proceed"
        )
    question = escape(f"{action[:1].upper()}{action[1:]}?")
    if not typer.confirm(question, default=False, err=True):
        raise CliError("aborted; nothing was changed")
