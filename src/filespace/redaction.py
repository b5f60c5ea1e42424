"""What of a URL may appear in a message: no query string, no password.

Presigned URLs carry their signature (a credential for as long as it lasts)
in the query string, and connection URLs may carry a password; both are cut
here, the one place that knows how, before a URL reaches an error or a log.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def without_query(text: str, *, mark: str = "") -> str:
    """``text`` cut at its first ``?``, then ``mark`` (if it had one).

    Works on a bare URL and on a message that ends with one (as urllib3's
    exception texts do); ``mark`` (e.g. ``"?…"``) shows that something was cut.
    """
    cut = text.find("?")
    return text if cut < 0 else text[:cut] + mark


def without_password(url: str, *, mask: str = "***") -> str:
    """``url`` with its password replaced by ``mask`` (dropped with its ``:`` if empty)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:{mask}" if mask else parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))
