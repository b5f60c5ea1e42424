"""Bad input through the main CLI commands, on both engines (issue 11, item 4).

Commands run in this process through Typer's ``CliRunner`` (a subprocess per
example would cost a second each), with argv drawn like the Python suite's
calls: every value good, or one of them bad (``tests/bad_values.py``). Lone
surrogates stand for the undecodable bytes a real argv can hold. Each command
must exit 0, 1 with one documented error (or the CLI's own refusal), or 2 for
bad usage; a failure, like any ``--dry-run``, must leave the engine as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from filespace import Filespace
from filespace.cli.app import app
from filespace.cli.errors import CliError
from tests.bad_values import (
    CHECKSUM,
    CREDENTIAL,
    CURSOR,
    ENDPOINT,
    EXISTING,
    KEY,
    MAX,
    NEW_STORE,
    STORE,
    TEXT,
    URL,
    Arg,
    check_documented,
    fuzz,
    spoil_one,
)
from tests.dumps import Dump, changes, dumped_space


def _word(text: Any) -> bool:
    """Whether a value can be one word of argv: text without NUL."""
    return isinstance(text, str) and "\x00" not in text


def words(arg: Arg) -> Arg:
    """``arg`` as argv words: text only, no NUL (the kernel's limit, not ours)."""
    return Arg(arg.good.map(str), st.one_of(arg.bad.filter(_word), st.just("-x")))


CLI_TEXT = TEXT.filter(_word)
PATH = Arg(st.sampled_from([*EXISTING, "d/n", "/n", "/d/é", "/sl/n"]), CLI_TEXT)
NUMBER = Arg(
    st.sampled_from(["0", "1", "5", str(MAX)]),
    st.one_of(st.sampled_from([str(MAX + 1), str(2**63), str(2**70), "-1", "1e3", "x"]), CLI_TEXT),
)
LIMIT = Arg(st.sampled_from(["1", "10"]), NUMBER.bad)


@dataclasses.dataclass(frozen=True)
class Opt:
    """An option that a command may be given or not: ``--flag VALUE``."""

    flag: str
    value: Arg


Part = str | Arg | Opt | st.SearchStrategy[list[str]]


def command(*parts: Part) -> st.SearchStrategy[list[str]]:
    """argv for one command: fixed words, values (all good or one bad), optional options."""
    values = {f"#{i}": part for i, part in enumerate(parts) if isinstance(part, Arg)}
    values |= {f"#{i}": part.value for i, part in enumerate(parts) if isinstance(part, Opt)}
    extras = {
        f"#{i}": part for i, part in enumerate(parts) if isinstance(part, Opt | st.SearchStrategy)
    }

    def shape(choice: tuple[dict[str, Any], dict[str, Any]]) -> list[str]:
        drawn, chosen = choice
        argv: list[str] = []
        for index, part in enumerate(parts):
            key = f"#{index}"
            if isinstance(part, str):
                argv.append(part)
            elif isinstance(part, Arg):
                argv.append(drawn[key])
            elif isinstance(part, Opt):
                if chosen[key]:
                    argv += [part.flag, drawn[key]]
            else:
                argv += chosen[key]
        return argv

    choices = st.fixed_dictionaries(
        {key: st.booleans() if isinstance(part, Opt) else part for key, part in extras.items()}
    )
    return st.tuples(spoil_one(values), choices).map(shape)


DRY = st.sampled_from([[], ["--dry-run"]])
CLI_CALLS = st.one_of(
    command("mkdir", DRY, st.sampled_from([[], ["-p"]]), PATH),
    command("ls", st.sampled_from([[], ["-l"], ["--json"]]), PATH),
    command("stat", PATH),
    command("tree", PATH),
    command("cat", PATH),
    command("rm", DRY, st.sampled_from([[], ["-r"]]), "--yes", PATH),
    command("mv", DRY, PATH, PATH),
    command(
        "link",
        DRY,
        PATH,
        "--store",
        words(STORE),
        "--key",
        words(KEY),
        "--size",
        NUMBER,
        "--checksum",
        words(CHECKSUM),
        st.sampled_from([[], ["--parents"]]),
    ),
    command("link-url", DRY, PATH, words(URL), "--size", NUMBER),
    command("unlink", DRY, "--yes", PATH),
    command("unlink", DRY, "--all", "--yes", PATH, Opt("--store", words(STORE))),
    command(
        "files",
        "list",
        "--store",
        words(STORE),
        Opt("--limit", LIMIT),
        Opt("--cursor", words(CURSOR)),
    ),
    command("files", "count", "--store", words(STORE)),
    command("store", "show", words(STORE)),
    command("store", "remove", DRY, "--yes", words(NEW_STORE)),
    command(
        "store",
        "add",
        DRY,
        words(NEW_STORE),
        "--bucket",
        Arg(st.just("bucket"), CLI_TEXT),
        "--region",
        Arg(st.just("us-east-1"), CLI_TEXT),
        "--access-key",
        words(CREDENTIAL),
        Opt("--endpoint", words(ENDPOINT)),
        "--no-verify",
    ),
    command("store", "rekey", DRY, words(STORE), "--access-key", words(CREDENTIAL), "--no-verify"),
)


def _env_safe(text: str) -> bool:
    """Whether ``text`` can be an environment variable's value (bytes, no NUL)."""
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


SECRETS = st.one_of(st.just("secret"), words(CREDENTIAL).bad).filter(_env_safe)


@pytest.fixture
def space(engine_name: str, tmp_path: Path) -> Iterator[tuple[Filespace, Callable[[], Dump]]]:
    """A filespace holding a directory, a native file, an S3 and an HTTP link, a symlink."""
    with dumped_space(engine_name, tmp_path) as (fsp, dump):
        fsp.fs.create_dir("/d")
        fsp.fs.write_file("/d/f", b"native")
        fsp.connect.link_file("/e", "s", "key", 5, "etag")
        fsp.connect.link_http_file("/h", "https://93.184.216.34/h", size=3)
        fsp.fs.create_symlink("/d", "/sl")
        yield fsp, dump


@fuzz(150)
@given(argv=CLI_CALLS, secret=SECRETS)
def test_cli_commands(
    space: tuple[Filespace, Callable[[], Dump]], argv: list[str], secret: str
) -> None:
    fsp, dump = space
    before = dump()
    result = CliRunner().invoke(
        app,
        argv,
        env={"FILESPACE": fsp.location, "FILESPACE_S3_SECRET_KEY": secret},
        catch_exceptions=True,
    )
    assert result.exit_code in (0, 1, 2), (argv, result.exit_code, result.output)
    failure = result.exception
    if result.exit_code == 1 and not isinstance(failure, SystemExit | CliError):
        assert failure is not None
        check_documented(failure, argv)
    if result.exit_code != 0 or "--dry-run" in argv:
        after = dump()
        assert after == before, f"{argv} -> {result.exit_code}, changed:\n{changes(before, after)}"
