"""What one SQL database does differently from the others.

The shared operations write SQL once, with ``?`` placeholders; a ``Dialect``
supplies the connections and transactions, the schema's column types, how a
constraint violation or a passing failure looks, and its fastest way to load
many links. Everything else is shared (``meta.txn`` and the operation modules).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from filespace.meta.records import LinkRow


class Dialect(ABC):
    """One database's specifics."""

    name: str
    url: str
    row_lock = ""
    """What ends a SELECT that locks its rows; empty where writers take turns anyway."""

    @abstractmethod
    def transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """A context yielding a DB-API cursor inside one transaction."""

    @abstractmethod
    def schema(self) -> list[str]:
        """DDL statements creating every table and index."""

    @abstractmethod
    def has_schema(self) -> bool:
        """Whether the settings table exists."""

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a unique-constraint violation."""

    @abstractmethod
    def is_foreign_key_violation(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a foreign-key violation."""

    def sql(self, text: str) -> str:
        """Rewrite shared SQL for this database (placeholders, types)."""
        return text

    def counter_shard(self) -> int:
        """Which counter row this writer adds to."""
        return 0

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failed transaction may simply be run again (lost race, lost link)."""
        return False

    @abstractmethod
    def insert_links(
        self, cursor: Any, store_id: int, rows: Sequence[LinkRow], now_ns: int, mark: int | None
    ) -> int:
        """Insert new entries and their S3 links for ``rows``, on the transaction's cursor.

        Returns how many links were inserted. Fewer than ``rows`` means a name
        was taken or a parent directory vanished: the caller rolls the
        transaction back and redoes the batch after checking each row.
        """

    @abstractmethod
    def table(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]
    ) -> tuple[str, list[object]]:
        """A subquery whose rows are ``rows``, with ``columns`` as ``(name, "BIGINT"|"TEXT")``,
        and its parameters: one per column whatever the number of rows, so the statement
        keeps one shape (parsed and planned once) and any batch is one round trip."""

    def lock_moves(self, cursor: Any) -> None:  # noqa: B027 - optional hook
        """Serialize directory moves; a no-op where writers already take turns."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection; idempotent."""
