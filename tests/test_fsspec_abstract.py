"""fsspec's own reusable test suite (``fsspec.tests.abstract``) run against ``filespace://``."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.tests import abstract

import filespace
from filespace.fsspec import FilespaceFileSystem, close_shared_filespaces


class FilespaceFixtures(abstract.AbstractFixtures):  # type: ignore[misc]
    """A fresh filespace per test, seen through ``fsspec.filesystem("filespace", ...)``."""

    @pytest.fixture
    def fs(self, tmp_path: Path) -> Iterator[FilespaceFileSystem]:
        location = tmp_path / "space"
        filespace.create(location, name="abstract").close()
        fs = fsspec.filesystem("filespace", location=str(location))
        assert isinstance(fs, FilespaceFileSystem)
        yield fs
        FilespaceFileSystem.clear_instance_cache()
        close_shared_filespaces()

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join

    @pytest.fixture
    def fs_path(self) -> str:
        return "/"


class TestFilespaceCopy(FilespaceFixtures, abstract.AbstractCopyTests):  # type: ignore[misc]
    pass


class TestFilespaceGet(FilespaceFixtures, abstract.AbstractGetTests):  # type: ignore[misc]
    pass


class TestFilespacePut(FilespaceFixtures, abstract.AbstractPutTests):  # type: ignore[misc]
    pass


class TestFilespaceOpen(FilespaceFixtures, abstract.AbstractOpenTests):  # type: ignore[misc]
    pass


class TestFilespacePipe(FilespaceFixtures, abstract.AbstractPipeTests):  # type: ignore[misc]
    pass
