"""What a filespace's rows say, recomputed past its API: counters and orphans.

After a crash the counters a filespace keeps (``meta/counters.py``) must
still equal what its rows add up to, and no row may hang off nothing. These
helpers read the rows with plain SQL on either engine (``fsfixtures.query_sql``).
"""

from __future__ import annotations

from filespace import Filespace
from filespace.meta.records import ROOT_ID, Counters
from tests.fsfixtures import query_sql

_EXTERNAL = "kind IN ('s3', 'http')"


def recount(fsp: Filespace) -> Counters:
    """The filespace counters as the ``entries`` and ``blocks`` rows add them up."""
    ((files, dirs, symlinks, entries_size, data_size, external_files, external_size),) = query_sql(
        fsp,
        "SELECT "  # noqa: S608 - constants only
        "COALESCE(SUM(CASE WHEN type = 'file' THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN type = 'dir' AND id <> ? THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN type = 'link' THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN type = 'file' THEN size ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN type = 'file' AND kind = 'native' THEN size ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN type = 'file' AND {_EXTERNAL} THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN type = 'file' AND {_EXTERNAL} THEN size ELSE 0 END), 0) "
        "FROM entries",
        ROOT_ID,
    )
    ((stored,),) = query_sql(fsp, "SELECT COALESCE(SUM(length), 0) FROM blocks")
    return Counters(
        files=int(files),
        dirs=int(dirs),
        symlinks=int(symlinks),
        entries_size=int(entries_size),
        data_size=int(data_size),
        storage_size=int(stored),
        external_files=int(external_files),
        external_size=int(external_size),
    )


def kept_counters(fsp: Filespace) -> Counters:
    """The counters the filespace keeps, summed over their shards."""
    columns = ", ".join(f"COALESCE(SUM({name}), 0)" for name in Counters._fields)
    ((*values,),) = query_sql(fsp, f"SELECT {columns} FROM counters")  # noqa: S608
    return Counters(*(int(value) for value in values))


def store_counts(fsp: Filespace) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """Per data store id: (files, bytes) as kept, and as the link rows add them up."""
    kept = {
        int(store): (int(files), int(size))
        for store, files, size in query_sql(
            fsp,
            "SELECT data_store_id, SUM(files), SUM(bytes) FROM store_counters "
            "GROUP BY data_store_id",
        )
        if files or size
    }
    counted = {
        int(store): (int(files), int(size))
        for store, files, size in query_sql(
            fsp,
            "SELECT l.data_store_id, COUNT(*), SUM(e.size) FROM external_links l "
            "JOIN entries e ON e.id = l.entry_id WHERE l.data_store_id IS NOT NULL "
            "GROUP BY l.data_store_id",
        )
    }
    return kept, counted


_ORPHANS = {
    "an entry whose parent is gone": (
        "SELECT e.id FROM entries e LEFT JOIN entries p ON p.id = e.parent_id "
        "WHERE e.id <> ? AND p.id IS NULL",
        (ROOT_ID,),
    ),
    "an entry whose parent is not a directory": (
        "SELECT e.id FROM entries e JOIN entries p ON p.id = e.parent_id WHERE p.type <> 'dir'",
        (),
    ),
    "a link row without its entry": (
        "SELECT l.entry_id FROM external_links l LEFT JOIN entries e ON e.id = l.entry_id "  # noqa: S608
        f"WHERE e.id IS NULL OR e.type <> 'file' OR NOT e.{_EXTERNAL}",
        (),
    ),
    "an external file without its link row": (
        "SELECT e.id FROM entries e LEFT JOIN external_links l ON l.entry_id = e.id "  # noqa: S608
        f"WHERE e.type = 'file' AND e.{_EXTERNAL} AND l.entry_id IS NULL",
        (),
    ),
    "a link to a data store that is gone": (
        "SELECT l.entry_id FROM external_links l LEFT JOIN data_stores s "
        "ON s.id = l.data_store_id WHERE l.data_store_id IS NOT NULL AND s.id IS NULL",
        (),
    ),
    "a block row without its entry": (
        "SELECT b.entry_id FROM blocks b LEFT JOIN entries e ON e.id = b.entry_id "
        "WHERE e.id IS NULL OR e.kind <> 'native'",
        (),
    ),
}


def orphans(fsp: Filespace) -> dict[str, list[int]]:
    """Rows that hang off nothing, by what is wrong with them (empty when all is well)."""
    found: dict[str, list[int]] = {}
    for what, (sql, params) in _ORPHANS.items():
        ids = sorted(int(row[0]) for row in query_sql(fsp, sql, *params))
        if ids:
            found[what] = ids
    return found


def assert_consistent(fsp: Filespace) -> None:
    """Counters equal a recount from rows, per store too, and no row is an orphan."""
    found = orphans(fsp)
    assert not found, f"orphan rows: {found}"
    kept, counted = kept_counters(fsp), recount(fsp)
    assert kept == counted, f"counters {kept} but the rows add up to {counted}"
    per_store, per_store_counted = store_counts(fsp)
    assert per_store == per_store_counted, (
        f"store counters {per_store} but the link rows add up to {per_store_counted}"
    )
