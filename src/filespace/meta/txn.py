"""The transaction kernel: a ``Tx`` and ``run``, the one way work reaches the database.

Every engine operation is ``run(dialect, work, write=...)``: ``work(tx)`` runs
inside one transaction, which commits when it returns and rolls back whole
when it raises. Because nothing of a failed attempt survives, ``run`` may
simply run ``work`` again, and it does so under one policy (``RetryPolicy``)
for every passing failure:

- a transient error the dialect recognises (``Dialect.is_retryable``): a lost
  connection, a restarting server, a serialization failure or deadlock;
- a ``Collision``: the work found that a concurrent writer took something it
  meant to use (a name in a bulk insert) and asks to be run again, knowing
  from ``Tx.collisions`` that it collided before.

Retries back off with jitter up to a time budget long enough to ride out a
server restart; collisions have their own cap of attempts. When either is
spent, ``EngineError`` says so.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from filespace.errors import EngineError
from filespace.meta.dialect import Dialect

T = TypeVar("T")

Row = tuple[Any, ...]

CHUNK = 512
"""Values per ``IN (...)`` list: far below every database's parameter limit."""


class Collision(Exception):
    """A concurrent writer got in the way of this transaction's work: run it again."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often ``run`` tries a transaction again."""

    budget_s: float = 90.0
    """Time allowed for retries of transient errors: a server restart fits in it."""
    first_delay_s: float = 0.05
    max_delay_s: float = 2.0
    collisions: int = 5
    """Attempts of work that concurrent writers keep colliding with."""


POLICY = RetryPolicy()


class Tx:
    """A transaction's cursor with small helpers; SQL uses ``?`` placeholders."""

    def __init__(self, cursor: Any, dialect: Dialect, *, collisions: int = 0) -> None:
        self._cursor = cursor
        self.dialect = dialect
        self.collisions = collisions
        """How many earlier attempts of this work ended in a ``Collision``."""

    def run(self, sql: str, *params: object) -> int:
        """Execute one statement; return the rows it changed."""
        self._cursor.execute(self.dialect.sql(sql), params)
        return int(self._cursor.rowcount)

    def one(self, sql: str, *params: object) -> Row | None:
        """The first row of a query, or ``None``."""
        self._cursor.execute(self.dialect.sql(sql), params)
        row = self._cursor.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, *params: object) -> list[Row]:
        """Every row of a query."""
        self._cursor.execute(self.dialect.sql(sql), params)
        return [tuple(row) for row in self._cursor.fetchall()]

    def value(self, sql: str, *params: object) -> Any:
        """The first column of a query's first row, or ``None`` when there is no row."""
        row = self.one(sql, *params)
        return row[0] if row is not None else None

    def row(self, shape: Callable[..., T], sql: str, *params: object) -> T | None:
        """The first row of a query as ``shape`` (a ``NamedTuple``), or ``None``."""
        row = self.one(sql, *params)
        return shape(*row) if row is not None else None

    def rows(self, shape: Callable[..., T], sql: str, *params: object) -> list[T]:
        """Every row of a query as ``shape`` (a ``NamedTuple``)."""
        return [shape(*row) for row in self.all(sql, *params)]

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        """Execute one statement per row; return the rows changed in all."""
        if not rows:
            return 0
        self._cursor.executemany(self.dialect.sql(sql), rows)
        return int(self._cursor.rowcount)

    @property
    def cursor(self) -> Any:
        """The DB-API cursor itself, for a dialect's own fast paths (COPY)."""
        return self._cursor

    def lock_moves(self) -> None:
        """Take the engine's lock that makes directory moves take turns."""
        self.dialect.lock_moves(self._cursor)

    def hold_entries(self, where: str, *params: object, scope: str = "") -> None:
        """Lock the entries matching ``where`` until commit, where writers can overlap.

        Counter deltas come from rows read after this. Under PostgreSQL's READ
        COMMITTED two clients changing the same entries would otherwise both read
        them, both change them and both count the change. Every change that moves
        a counter writes its entry row, so holding that row is enough. ``scope``
        is a ``WITH`` clause ``where`` may use.
        """
        lock = self.dialect.row_lock
        if lock:
            self.all(f"{scope}SELECT id FROM entries WHERE {where} ORDER BY id{lock}", *params)

    def unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a unique-constraint violation of this database."""
        return self.dialect.is_unique_violation(exc)

    def foreign_key_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a foreign-key violation of this database."""
        return self.dialect.is_foreign_key_violation(exc)


@contextmanager
def transaction(dialect: Dialect, *, write: bool, collisions: int = 0) -> Iterator[Tx]:
    """One transaction, tried once: commits when the block ends, rolls back if it raises."""
    with dialect.transaction(write=write) as cursor:
        yield Tx(cursor, dialect, collisions=collisions)


def run(
    dialect: Dialect, work: Callable[[Tx], T], *, write: bool, policy: RetryPolicy = POLICY
) -> T:
    """``work(tx)`` in one transaction, run again under ``policy`` when it fails in passing."""

    def attempt(collisions: int) -> T:
        with dialect.transaction(write=write) as cursor:
            return work(Tx(cursor, dialect, collisions=collisions))

    # The first attempt runs straight away; the retry loop (its clock, its closure
    # state) is set up only once one has failed. Single links in a loop feel it.
    try:
        return attempt(0)
    except Collision:
        return retry(dialect, attempt, policy=policy, collided=True)
    except Exception as exc:
        if not dialect.is_retryable(exc):
            raise
        return retry(dialect, attempt, policy=policy, failed=exc)


def retry(
    dialect: Dialect,
    attempt: Callable[[int], T],
    *,
    policy: RetryPolicy = POLICY,
    collided: bool = False,
    failed: BaseException | None = None,
) -> T:
    """``attempt(collisions so far)``, again under ``policy`` (``run`` without the transaction).

    ``collided`` / ``failed`` say how a first attempt made elsewhere ended: the
    loop then goes on from there instead of starting afresh.
    """
    deadline = time.monotonic() + policy.budget_s
    delay = policy.first_delay_s
    collisions = 1 if collided else 0
    if collisions >= policy.collisions:
        raise EngineError("a batch kept colliding with concurrent writers; try again")
    if failed is not None:
        if time.monotonic() + delay > deadline:
            raise EngineError(f"the metadata engine kept failing: {_describe(failed)}") from failed
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, policy.max_delay_s)
    reason: BaseException | None
    while True:
        try:
            return attempt(collisions)
        except Collision:
            collisions += 1
            if collisions >= policy.collisions:
                raise EngineError(
                    "a batch kept colliding with concurrent writers; try again"
                ) from None
            if collisions == 1:
                continue  # the work knows it collided and takes its careful path at once
            reason = None
        except Exception as exc:
            if not dialect.is_retryable(exc):
                raise
            reason = exc
        if time.monotonic() + delay > deadline:
            raise EngineError(f"the metadata engine kept failing: {_describe(reason)}") from reason
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, policy.max_delay_s)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "concurrent writers kept colliding"
    return f"{type(exc).__name__}: {exc}"


def chunks(values: Sequence[T]) -> Iterable[list[T]]:
    """``values`` in pieces of at most ``CHUNK``, each padded by ``padded``."""
    for start in range(0, len(values), CHUNK):
        yield padded(values[start : start + CHUNK])


def padded(values: Sequence[T]) -> list[T]:
    """``values`` repeated up to a power of two: few statement shapes, so caches hit."""
    size = 1
    while size < len(values):
        size *= 2
    return [*values, *[values[-1]] * (size - len(values))]


def marks(values: Sequence[object]) -> str:
    """As many ``?`` placeholders as ``values``, comma-separated."""
    return ", ".join("?" * len(values))
