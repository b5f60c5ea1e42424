"""Turning exceptions into the one ``error: ...`` line the CLI prints.

Every secret the CLI has read is registered here, so no error line (and no
``--debug`` traceback) can ever show it, whatever the message says; control
characters in a message are escaped (:mod:`filespace.cli.escape`).
"""

from __future__ import annotations

import traceback

from filespace.cli.escape import escape

_secrets: set[str] = set()
_MASK = "***"


class CliError(Exception):
    """A failure the CLI itself detected; its message is shown as is."""


def register_secret(secret: str) -> None:
    """Remember ``secret`` so :func:`redact` hides it everywhere."""
    if secret:
        _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason if exc.strerror else str(exc)


def message(exc: BaseException) -> str:
    """One line saying what went wrong, without the exception's class name."""
    if isinstance(exc, OSError) and exc.strerror:
        text = _os_message(exc)
    else:
        text = str(exc) or type(exc).__name__
    return escape(redact(" ".join(text.split())))


def format_traceback(exc: BaseException) -> str:
    """The full traceback, secrets masked (for ``--debug``)."""
    text = redact("".join(traceback.format_exception(exc)))
    return "\n".join(escape(line) for line in text.split("\n"))
