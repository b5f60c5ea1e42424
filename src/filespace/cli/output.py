"""Everything a command prints: JSON, plain lines, tables, trees and progress bars.

Results go to stdout; warnings, notes and progress bars to stderr. Progress
bars appear only when both are terminals, so piped output holds nothing extra.
Names are printed as text, never as Rich markup, and every line, cell and
label goes through :func:`~filespace.cli.escape.escape` on its way out, so a
control character in a name or message shows as an escape instead of acting
on the terminal. JSON keeps names exact (:func:`~filespace.cli.escape.escape_json`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from filespace.cli.errors import redact
from filespace.cli.escape import escape, escape_json

if TYPE_CHECKING:  # Rich loads only when a table, tree or progress bar is shown
    from rich.console import Console, RenderableType
    from rich.progress import Progress, TaskID

_PIPE_WIDTH = 100_000  # piped output is never wrapped or cut


def is_terminal() -> bool:
    """Whether a person is watching: stdout and stderr are both terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=stream,
        highlight=False,
        markup=False,
        emoji=False,
        width=None if stream.isatty() else _PIPE_WIDTH,
    )


def say(text: str = "") -> None:
    """One line of results on stdout."""
    sys.stdout.write(escape(text) + "\n")


def note(text: str) -> None:
    """A line for the person at the terminal (stderr), not part of the results."""
    sys.stderr.write(escape(redact(text)) + "\n")


def warn(text: str) -> None:
    """A ``warning: ...`` line on stderr."""
    sys.stderr.write(f"warning: {escape(redact(text))}\n")


def emit_json(document: Any) -> None:
    """The one JSON document of a ``--json`` run."""
    sys.stdout.write(escape_json(json.dumps(document, indent=2, ensure_ascii=False)) + "\n")


def show(renderable: RenderableType) -> None:
    """Print a Rich table or tree (its texts already escaped); no trailing blanks when piped."""
    console = _console()
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table with a header row and no borders."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        grid.add_column(header, no_wrap=True, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(escape(cell)) for cell in row))
    show(grid)


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """``name  value`` lines, names aligned (for one object: info, stat, store show)."""
    width = max((len(name) for name, _ in pairs), default=0)
    for name, value in pairs:
        say(f"{name.ljust(width)}  {value}")


def human_size(size: int) -> str:
    """A size for people: ``512 B``, ``1.5 KiB``, ``3.0 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``1 file``, ``3 files``, ``2 directories``."""
    word = singular if count == 1 else (plural or singular + "s")
    return f"{count} {word}"


def timestamp(seconds: int) -> str:
    """Unix seconds as local ``YYYY-MM-DD HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


class Bar:
    """A handle on one progress bar; does nothing when there is no terminal."""

    def __init__(self, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def update(
        self,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
    ) -> None:
        if self._progress is not None and self._task is not None:
            shown = None if description is None else escape(description)
            self._progress.update(self._task, completed=completed, total=total, description=shown)


@contextmanager
def progress(description: str, total: float | None = None, *, data: bool = False) -> Iterator[Bar]:
    """A transient progress bar on stderr when on a terminal; ``data`` counts bytes."""
    if not is_terminal():
        yield Bar()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[ProgressColumn | str] = [
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
    ]
    if total is not None:
        columns.append(BarColumn())
    if data:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    elif total is not None:
        columns.append(MofNCompleteColumn())
    if total is not None:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as bar:
        yield Bar(bar, bar.add_task(escape(description), total=total))
