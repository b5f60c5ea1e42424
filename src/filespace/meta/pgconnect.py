"""The first connection to a PostgreSQL server, and what its failure means.

A PostgreSQL location that can never work (no such database, nothing
listening, credentials refused, a malformed option) must fail at once with
what to fix, not after the retry budget meant for a server that restarts.
So before a pool is made, ``probe`` connects once, directly: a failure the
server or libpq calls lasting becomes a documented error naming the location
(without its password); a passing one (the server starting up or shutting
down, too many clients) stays a ``psycopg.OperationalError`` that the retry
policy tries again. Once a filespace has connected, a lost connection is a
restart, and the pool and the policy ride it out.

A URL naming several hosts (``host1:p1,host2:p2`` with
``target_session_attrs=read-write``) that finds only a read-only server is
mid-failover (a standby not yet promoted), whatever the other hosts said:
passing too.

libpq reports connection failures as text only (no SQLSTATE), so they are
told apart by its messages.
"""

from __future__ import annotations

import errno
import re
from typing import Any

from filespace.redaction import passwords_of, public_location, without_secrets

CONNECT_TIMEOUT_S = 10
"""How long one connection attempt may take unless the URL says (``connect_timeout``)."""

_PASSING = re.compile(
    r"is starting up|is shutting down|in recovery mode|not yet accepting connections"
    r"|too many clients|remaining connection slots|administrator command"
    r"|Temporary failure in name resolution"
    # A multi-host URL mid-failover: the primary is gone and the standby not yet
    # promoted (target_session_attrs=read-write / primary turns it away).
    r"|session is read-only|server is in hot standby mode",
    re.IGNORECASE,
)
_NO_DATABASE = re.compile(r'database "[^"]*" does not exist')
_REFUSED_CREDENTIALS = re.compile(
    r"authentication failed|role \"[^\"]*\" does not exist|no pg_hba\.conf entry"
    r"|no password supplied|password is required|not permitted to log in",
    re.IGNORECASE,
)
_REFUSED = re.compile(r"Connection refused|No such file or directory", re.IGNORECASE)
_NO_HOST = re.compile(
    r"failed to resolve host|could not translate host name|Name or service not known",
    re.IGNORECASE,
)
_TIMEOUT = re.compile(r"timeout expired|timed out", re.IGNORECASE)
_BAD_OPTION = re.compile(
    r"invalid (port number|integer value|\w+ value|connection option|URI|value for parameter"
    r"|percent-encoded)|unrecognized configuration parameter|missing \"=\"",
    re.IGNORECASE,
)


def check_conninfo(conninfo: str, location: str) -> None:
    """``ValueError`` naming ``location`` unless libpq can parse ``conninfo``."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        reason = _reason(exc, location)
        public = public_location(location)
        raise ValueError(f"{public}: not a valid PostgreSQL URL: {reason}") from None


def probe(conninfo: str, location: str) -> None:
    """Connect once; raise the documented error of a lasting failure, else the passing one."""
    import psycopg

    try:
        psycopg.connect(conninfo, autocommit=True, **connect_options(conninfo)).close()
    except psycopg.Error as exc:
        lasting = lasting_error(exc, location)
        if lasting is None:
            raise
        # ``from None``: the psycopg error holds the connection's settings, password included.
        raise lasting from None


def connect_options(conninfo: str) -> dict[str, Any]:
    """Options every connection adds to ``conninfo``: a time limit unless it has one."""
    from psycopg.conninfo import conninfo_to_dict

    if "connect_timeout" in conninfo_to_dict(conninfo):
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT_S}


def lasting_error(exc: BaseException, location: str) -> Exception | None:
    """The public error for a connection failure that retrying cannot fix; ``None`` if it may."""
    reason = _reason(exc, location)
    public = public_location(location)
    if _PASSING.search(reason):
        return None
    if _NO_DATABASE.search(reason):
        return FileNotFoundError(
            errno.ENOENT,
            f"no such PostgreSQL database ({reason}): create it first (CREATE DATABASE)",
            public,
        )
    if _REFUSED_CREDENTIALS.search(reason):
        return PermissionError(
            errno.EACCES,
            f"the PostgreSQL server refused these credentials ({reason}): check the user and "
            "password (in the URL, PGPASSWORD or ~/.pgpass)",
            public,
        )
    if _REFUSED.search(reason):
        return ConnectionRefusedError(
            errno.ECONNREFUSED,
            f"nothing accepts connections there ({reason}): is the PostgreSQL server running, "
            "and are the host and port right?",
            public,
        )
    if _NO_HOST.search(reason):
        return ConnectionError(
            errno.EHOSTUNREACH, f"unknown host ({reason}): check the host name", public
        )
    if _TIMEOUT.search(reason):
        return TimeoutError(
            errno.ETIMEDOUT, f"the PostgreSQL server did not answer in time ({reason})", public
        )
    if _BAD_OPTION.search(reason):
        return ValueError(f"{public}: invalid PostgreSQL URL ({reason})")
    return ConnectionError(errno.ECONNABORTED, f"cannot connect ({reason})", public)


def _reason(exc: BaseException, location: str) -> str:
    """libpq's words for a failure, on one line, without the location's password."""
    text = " ".join(str(exc).split())
    text = text.removeprefix("connection failed: ").removeprefix("connection is bad: ")
    return without_secrets(text, passwords_of(location))
