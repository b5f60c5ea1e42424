"""The entries at many ``(directory id, name)`` pairs, read in a few statements.

Bulk work (a mirror batch, a batch of bucket events) asks about hundreds of
names spread over many directories. A query per directory is a round trip
each on a server engine, most of a batch's time; here the pairs travel as one
``VALUES`` list joined to ``entries``, so a batch costs a statement per
``CHUNK`` pairs (two where the rows are held), and a tree of directory paths a
statement per level.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeVar

from filespace.meta.txn import Tx

T = TypeVar("T")

Pair = tuple[int, str]
"""A directory's id and a name in it."""

PAIR_COLUMNS = (("p", "BIGINT"), ("n", "TEXT"))


def at_pairs(
    tx: Tx, shape: Callable[..., T], columns: str, pairs: Iterable[Pair], *, hold: bool
) -> dict[Pair, T]:
    """``shape(*columns)`` of the entry at each pair that has one, by pair.

    ``columns`` may name the entry ``e`` and its link ``l`` (``NULL``s for an
    entry without one). With ``hold``, the entries are held first
    (``Tx.hold_entries``), in id order.
    """
    asked = sorted(set(pairs))
    if not asked:
        return {}
    table, params = tx.dialect.table(PAIR_COLUMNS, asked)
    scope = f"WITH v AS ({table}) "
    if hold:
        tx.hold_entries("(parent_id, name) IN (SELECT p, n FROM v)", *params, scope=scope)
    return {
        (int(row[0]), str(row[1])): shape(*row[2:])
        for row in tx.all(
            f"{scope}SELECT e.parent_id, e.name, {columns} FROM v "
            "JOIN entries e ON e.parent_id = v.p AND e.name = v.n "
            "LEFT JOIN external_links l ON l.entry_id = e.id",
            *params,
        )
    }


def by_depth(rels: Iterable[str]) -> list[list[str]]:
    """Every directory path on the way to each of ``rels`` (``""`` excluded), level by level."""
    levels: dict[int, set[str]] = defaultdict(set)
    for rel in set(rels):
        names = rel.split("/") if rel else []
        for depth in range(len(names)):
            levels[depth].add("/".join(names[: depth + 1]))
    return [sorted(levels[depth]) for depth in sorted(levels)]


class _Kind(NamedTuple):
    id: int
    type: str


def find_dirs(tx: Tx, base_id: int, rels: Iterable[str]) -> dict[str, int | None]:
    """The directory at each relative path under ``base_id``, or ``None`` where there is none.

    One statement per level of the paths.
    """
    dirs: dict[str, int | None] = {"": base_id}
    for level in by_depth(rels):
        asked: dict[Pair, str] = {}
        for rel in level:
            parent_rel, _, name = rel.rpartition("/")
            parent = dirs[parent_rel]
            if parent is None:
                dirs[rel] = None
            else:
                asked[(parent, name)] = rel
        there = at_pairs(tx, _Kind, "e.id, e.type", asked, hold=False)
        for pair, rel in asked.items():
            entry = there.get(pair)
            dirs[rel] = entry.id if entry is not None and entry.type == "dir" else None
    return dirs
