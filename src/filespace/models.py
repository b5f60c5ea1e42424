"""What ``fsp.fs`` returns: directory entries and statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from filespace.connect.models import ExternalFileInfo


@dataclass(frozen=True)
class DirEntry:
    """One entry of the tree; ``external`` is set for linked files."""

    name: str
    size: int
    type: Literal["file", "dir", "link"]
    file_id: str
    file_id_external: int
    ctime: int
    mtime: int
    external: ExternalFileInfo | None = None
    mtime_ns: int = 0
    """``mtime`` in nanoseconds, as recorded: tells apart two versions written within a second."""

    def is_file(self) -> bool:
        return self.type == "file"

    def is_dir(self) -> bool:
        return self.type == "dir"

    def is_link(self) -> bool:
        return self.type == "link"


@dataclass(frozen=True)
class FilespaceStatistics:
    """Counts and sizes of the whole filespace, kept as it changes."""

    file_count: int
    directory_count: int
    symlink_count: int
    entries_size: int
    data_size: int
    storage_size: int
    external_files_count: int
    external_files_size: int


@dataclass(frozen=True)
class FilespaceSize:
    """The filespace's size: entries, native data, storage, external files."""

    entries: int
    data: int
    storage: int
    external_files_size: int
    external_files_count: int

    @classmethod
    def of(cls, stats: FilespaceStatistics) -> FilespaceSize:
        """The size of a filespace with these statistics."""
        return cls(
            entries=stats.file_count + stats.directory_count + stats.symlink_count,
            data=stats.data_size,
            storage=stats.storage_size,
            external_files_size=stats.external_files_size,
            external_files_count=stats.external_files_count,
        )
