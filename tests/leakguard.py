"""A pytest plugin: no secret or password the suite knows of shows up where it must not.

Known secrets are the S3 server's identities, every filespace key written to a
key file during a test, and whatever a test hands to ``remember``. After each
test they are looked for in what it printed (captured stdout and stderr), in
every log record of filespace's own loggers (DEBUG included), in the message
of every exception a test caught with ``pytest.raises`` or failed with, and in
every file the test left under its temporary directories (key files, whose
job is to hold a key, excepted). A test that shows a secret on purpose says
so with ``@pytest.mark.reveals_secrets``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

_SECRETS: set[str] = set()
_SHORTEST = 8  # shorter strings would be found by chance (and are not secrets worth the name)
_FILE_BYTES = 64 * 1024 * 1024


def remember(*secrets: str) -> None:
    """Add secrets a test made or was given; each must then never be shown."""
    for secret in secrets:
        if secret and len(secret) >= _SHORTEST:
            _SECRETS.add(secret)


def _forms(secret: str) -> Iterator[bytes]:
    yield secret.encode()
    yield quote(secret, safe="").encode()
    yield secret.encode("utf-16-le")


_searches: dict[frozenset[str], Any] = {}


def _search(secrets: frozenset[str]) -> Any:
    """An Aho-Corasick automaton of every form of ``secrets`` (kept while they are the same).

    The suite knows hundreds of secrets by its end and leaves files of tens of
    MiB: one pass per file for them all, not one per secret and form.
    """
    import ahocorasick

    automaton = _searches.get(secrets)
    if automaton is None:
        automaton = ahocorasick.Automaton()
        for secret in secrets:
            for form in _forms(secret):
                automaton.add_word(form.decode("latin-1"), secret)  # bytes as code points
        automaton.make_automaton()
        _searches.clear()
        _searches[secrets] = automaton
    return automaton


def found_in(data: str | bytes) -> list[str]:
    """The known secrets in ``data``, in any of the forms they are written in."""
    raw = data.encode(errors="surrogateescape") if isinstance(data, str) else data
    secrets = frozenset(_SECRETS)
    if not secrets:
        return []
    return sorted({secret for _, secret in _search(secrets).iter(raw.decode("latin-1"))})


class _Records(logging.Handler):
    """Every record of filespace's loggers, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


def _exception_texts(error: BaseException | None) -> Iterator[str]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield f"{type(error).__name__}: {error!s} {error!r} {getattr(error, 'filename', '')}"
        error = error.__cause__ or error.__context__


class _GuardedRaises:
    """``pytest.raises`` as a context manager, that also looks at what it caught."""

    def __init__(self, inner: Any, caught: list[BaseException]) -> None:
        self._inner = inner
        self._caught = caught

    def __enter__(self) -> Any:
        return self._inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        suppressed = self._inner.__exit__(*exc)
        if exc[1] is not None:
            self._caught.append(exc[1])
        return suppressed


def _files(roots: Iterable[Path], skip: Iterable[Path]) -> Iterator[Path]:
    skipped = [path.resolve() for path in skip]
    for root in roots:
        for folder, dirs, names in os.walk(root):
            here = Path(folder).resolve()
            if any(here == s or s in here.parents for s in skipped):
                dirs.clear()
                continue
            for name in names:
                path = here / name
                if path.is_file() and not path.is_symlink():
                    yield path


def _key_dirs(home: Path) -> list[Path]:
    return [home / "config" / "filespace" / "keys", home / ".config" / "filespace" / "keys"]


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if a known secret shows where it must not (see the module's docstring)."""
    if request.node.get_closest_marker("reveals_secrets"):
        yield
        return
    roots = []
    if "tmp_path" in request.fixturenames:
        roots.append(Path(request.getfixturevalue("tmp_path")))
    home = Path(request.getfixturevalue("isolated_env"))
    roots.append(home)
    caught: list[BaseException] = []
    real_raises = pytest.raises

    def raises(*args: Any, **kwargs: Any) -> Any:
        result = real_raises(*args, **kwargs)
        if hasattr(result, "__exit__"):
            return _GuardedRaises(result, caught)
        caught.append(result.value)  # the call form: already raised and caught
        return result

    monkeypatch.setattr(pytest, "raises", raises)
    records = _Records()
    ours = logging.getLogger("filespace")
    level = ours.level
    ours.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(records)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(records)
        ours.setLevel(level)
    for key_dir in _key_dirs(home):
        if key_dir.is_dir():
            remember(*(p.read_text().strip() for p in key_dir.iterdir() if p.is_file()))
    leaks = [f"log record: {text[:200]!r}" for text in records.texts if found_in(text)]
    for error in caught:
        leaks += [
            f"exception: {text[:200]!r}" for text in _exception_texts(error) if found_in(text)
        ]
    for path in _files(roots, _key_dirs(home)):
        with path.open("rb") as file:
            if found_in(file.read(_FILE_BYTES)):
                leaks.append(f"file left behind: {path}")
    assert not leaks, "a secret was shown:\n" + "\n".join(leaks)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail a test whose captured output, or whose failure, shows a known secret."""
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("reveals_secrets"):
        return
    leaks = [title for title, content in report.sections if found_in(content)]
    if call.excinfo is not None:
        leaks += [
            "the failure's exception" for t in _exception_texts(call.excinfo.value) if found_in(t)
        ]
    if leaks and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"a secret was shown in: {', '.join(sorted(set(leaks)))}"
    elif leaks:
        report.longrepr = f"{report.longrepr}\n(and a secret was shown in: {', '.join(leaks)})"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reveals_secrets: the test shows a secret on purpose (the leak guard is off)"
    )
