"""Renaming and moving an entry, optionally replacing what is at the destination.

With ``replace`` the move follows POSIX ``rename(2)`` in one transaction: a
file, symlink or link may replace a file, symlink or link; a directory may
replace an empty directory; the replaced entry is removed like ``remove``
removes it (counters, block keys) before the entry takes its name.
"""

from __future__ import annotations

from typing import NamedTuple

from filespace.meta.errors import IsDir, NameTaken, NoSuchEntry, NotDir, NotEmpty, WouldCycle
from filespace.meta.namespace import is_empty, kind_at, remove_ids, require_dir, touch
from filespace.meta.records import EntryType, Removed
from filespace.meta.rows import Kind
from filespace.meta.txn import Collision, Tx


class _Moving(NamedTuple):
    parent_id: int | None
    type: EntryType


def rename(
    tx: Tx, entry_id: int, new_parent_id: int, new_name: str, now_ns: int, *, replace: bool
) -> Removed:
    """Move an entry to ``new_name`` in ``new_parent_id``; what a replaced entry freed."""
    tx.hold_entries("id = ?", entry_id)
    entry = tx.row(_Moving, "SELECT parent_id, type FROM entries WHERE id = ?", entry_id)
    if entry is None or entry.parent_id is None:
        raise NoSuchEntry(str(entry_id))
    require_dir(tx, new_parent_id)
    if entry.type == "dir":
        tx.lock_moves()
        _refuse_cycle(tx, entry_id, new_parent_id)
    freed = Removed(entries=0, block_keys=[])
    dest = _destination(tx, new_parent_id, new_name, replace=replace)
    if dest is not None:
        if not replace:
            raise NameTaken(new_name)
        if dest.id == entry_id:
            return freed  # renaming onto itself changes nothing
        _refuse_replacing(tx, entry.type, dest, new_name)
        freed = remove_ids(tx, dest.id, now_ns, subtree=False)
    try:
        tx.run(
            "UPDATE entries SET parent_id = ?, name = ?, ctime_ns = ? WHERE id = ?",
            new_parent_id,
            new_name,
            now_ns,
            entry_id,
        )
    except Exception as exc:
        if not tx.unique_violation(exc):
            raise
        if replace:  # created meanwhile: run again, to replace it
            raise Collision from None
        raise NameTaken(new_name) from None
    touch(tx, entry.parent_id, now_ns)
    if new_parent_id != entry.parent_id:
        touch(tx, new_parent_id, now_ns)
    return freed


def _refuse_cycle(tx: Tx, entry_id: int, new_parent_id: int) -> None:
    """``WouldCycle`` if ``new_parent_id`` is the directory ``entry_id`` or below it."""
    ancestor: int | None = new_parent_id
    while ancestor is not None:
        if ancestor == entry_id:
            raise WouldCycle(str(entry_id))
        up = tx.value("SELECT parent_id FROM entries WHERE id = ?", ancestor)
        ancestor = None if up is None else int(up)


def _destination(tx: Tx, parent_id: int, name: str, *, replace: bool) -> Kind | None:
    """What is at the destination; held until commit when it is to be replaced.

    Held, then read again: under READ COMMITTED another client may have moved
    something else there between the read and the lock, and only a held entry
    may be counted as removed (see ``Tx.hold_entries``).
    """
    dest = kind_at(tx, parent_id, name)
    while replace and dest is not None:
        tx.hold_entries("id = ?", dest.id)
        again = kind_at(tx, parent_id, name)
        if again == dest:
            break
        dest = again
    return dest


def _refuse_replacing(tx: Tx, moving: EntryType, dest: Kind, name: str) -> None:
    """The ``rename(2)`` rules for what may replace what."""
    if moving == "dir" and dest.type != "dir":
        raise NotDir(name)
    if moving != "dir" and dest.type == "dir":
        raise IsDir(name)
    if dest.type == "dir" and not is_empty(tx, dest.id):
        raise NotEmpty(name)
