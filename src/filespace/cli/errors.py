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
MIN_MASKED_LENGTH = 16
"""Shorter secrets are not masked where they occur: that would show them.

A secret this short may well be a word or a default that also occurs in
ordinary text (``minioadmin``); AWS secret keys have 40 characters.
"""
_WITHHELD = (
    f"(not shown: the secret key in use is shorter than {MIN_MASKED_LENGTH} characters, "
    "too short to mask in a message without giving it away)"
)


class CliError(Exception):
    """A failure the CLI itself detected; its message is shown as is."""


def register_secret(secret: str) -> None:
    """Remember ``secret`` so :func:`redact` hides it everywhere."""
    if secret:
        _secrets.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``.

    Masking a short secret gives it away: where ``***`` stands in a message
    whose words a reader knows, the secret is what is missing (a secret ``e``
    turns "secret" into "s***cr***t"). Even withholding only the messages that
    contain it tells which messages do. So while a secret shorter than
    :data:`MIN_MASKED_LENGTH` is registered, every redacted text is withheld
    whole, whatever it says: the output is then the same for every short secret.
    """
    if any(len(secret) < MIN_MASKED_LENGTH for secret in _secrets):
        return _WITHHELD
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
    text = redact("".join(traceback.format_exception(exc))).rstrip("\n")
    return "".join(escape(line) + "\n" for line in text.split("\n"))
