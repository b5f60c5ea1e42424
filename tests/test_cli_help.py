"""``--help`` of every command reads like a manual: no Python types, flags without a value."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from filespace.cli.app import app

# What Typer shows by default, e.g. <bool>, <str>, <list[str]>, <int range> [x>=0].
PYTHON_TYPES = re.compile(r"<[a-z][a-z \[\],|]*>|\bx[<>]=")


def _commands() -> Iterator[tuple[list[str], typer.Context, object]]:
    """Every command and group below the root, with the words that call it."""
    root = typer.main.get_command(app)
    pending: list[tuple[list[str], object]] = [([], root)]
    while pending:
        words, command = pending.pop()
        ctx = typer.Context(command, info_name=" ".join(["filespace", *words]))  # type: ignore[arg-type]
        yield words, ctx, command
        if isinstance(command, TyperGroup):
            for name in command.list_commands(ctx):
                pending.append(([*words, name], command.get_command(ctx, name)))


COMMANDS = sorted(" ".join(words) for words, _, _ in _commands())


def _help(words: list[str]) -> str:
    result = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_reached() -> None:
    for expected in ("", "mount", "store add", "connect status", "connect disable", "files list"):
        assert expected in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_types(command: str) -> None:
    text = _help(command.split())
    assert not PYTHON_TYPES.search(text), text
    assert "{" not in text.split("\n", 3)[1], text  # the usage line: NAME, not {name}


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_take_no_value_and_options_show_a_name(command: str) -> None:
    words = command.split()
    _, ctx, found = next(item for item in _commands() if item[0] == words)
    text = _help(words)
    for param in found.get_params(ctx):  # type: ignore[attr-defined]
        if not isinstance(param, TyperOption) or param.hidden:
            continue
        longest = max(param.opts, key=len)
        line = next(line for line in text.splitlines() if re.search(rf"{longest}(?![\w-])", line))
        after = line.split(longest, 1)[1]
        after = re.sub(r"^\s+-\w\b", "", after).strip()  # the short form
        shown = after.split("  ", 1)[0] if "  " in after else ""
        if param.is_flag:
            assert not re.match(r"[A-Z_]{2,}( |$)", after), f"{longest} shows a value: {line}"
        else:
            assert re.match(r"[A-Z][A-Z_]*( \[.*\])?$", shown), f"{longest}: {line}"


def test_the_names_are_the_ones_declared_or_made_from_the_option() -> None:
    mount = _help(["mount"])
    assert "Usage: filespace mount [OPTIONS] [LOCATION] MOUNTPOINT" in mount
    assert re.search(r"--cache-mb\s+MB \[0 or more\]", mount)
    add = _help(["store", "add"])
    assert re.search(r"--bucket\s+BUCKET\s", add)
    assert re.search(r"--url-expiration\s+MINUTES \[1 to 10080\]", add)
    assert re.search(r"--store\s+-s\s+NAME\s", _help(["mirror"]))
    assert "Usage: filespace ls [OPTIONS] [PATH]" in _help(["ls"])


def test_the_cli_reference_page_is_current() -> None:
    """``docs/cli.md`` is generated from the command line: regenerate it when a command changes."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PAGE.read_text() == module.render(), (
        "docs/cli.md is out of date: run python scripts/cli_reference.py"
    )
