"""What of a URL or a location may appear in a message: no query string, no password.

Presigned URLs carry their signature (a credential for as long as it lasts)
in the query string, and connection URLs may carry a password; both are cut
here, the one place that knows how, before a URL reaches an error, a repr, a
log, the command line's output or another process's argv.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, quote, unquote

_PASSWORD_OPTIONS = frozenset({"password", "sslpassword"})
"""libpq's URL options that hold a password (``?password=...``)."""
MASK = "***"


def without_query(text: str, *, mark: str = "") -> str:
    """``text`` cut at its first ``?``, then ``mark`` (if it had one).

    Works on a bare URL and on a message that ends with one (as urllib3's
    exception texts do); ``mark`` (e.g. ``"?…"``) shows that something was cut.
    """
    cut = text.find("?")
    return text if cut < 0 else text[:cut] + mark


def public_location(location: object) -> str:
    """The one public form of a location: a URL without its password; a path as it is.

    The password goes from the user part (``user:pw@host`` becomes
    ``user@host``) and from the options (``?password=``, ``?sslpassword=``);
    everything else stays, so the result names the same place. Never raises:
    it is used on malformed locations too, to say what is wrong with them.
    """
    text = os.fspath(location) if isinstance(location, os.PathLike) else location
    if not isinstance(text, str):
        return repr(text)
    scheme, found, rest = text.partition("://")
    if not found or not scheme or "/" in scheme:
        return text
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if 0 <= at < end:
            end = at
    authority, tail = rest[:end], rest[end:]
    userinfo, at_sign, host = authority.rpartition("@")
    if at_sign and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}@{host}"
    return f"{scheme}://{authority}{_without_password_options(tail)}"


def _without_password_options(tail: str) -> str:
    """A URL's path, query and fragment with password options dropped from the query."""
    path, question, rest = tail.partition("?")
    if not question:
        return tail
    query, hash_, fragment = rest.partition("#")
    kept = [
        part
        for part in query.split("&")
        if unquote(part.partition("=")[0]).strip().lower() not in _PASSWORD_OPTIONS
    ]
    rebuilt = f"{path}?{'&'.join(kept)}" if kept else path
    return f"{rebuilt}{hash_}{fragment}"


def passwords_of(location: str) -> list[str]:
    """The passwords a location URL carries (user part and options), as given and decoded."""
    if "://" not in location:
        return []
    found: list[str] = []
    rest = location.partition("://")[2]
    authority = rest
    for stop in "/?#":
        authority = authority.partition(stop)[0]
    userinfo, at_sign, _ = authority.rpartition("@")
    if at_sign and ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    query = rest.partition("?")[2].partition("#")[0]
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.strip().lower() in _PASSWORD_OPTIONS:
            found.append(value)
    secrets = {form for word in found if word for form in (word, unquote(word), quote(word))}
    return sorted(secrets, key=len, reverse=True)


def without_secrets(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``***`` (for a library's error text)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
