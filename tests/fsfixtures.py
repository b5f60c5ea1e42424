"""Fixtures for filespaces: an isolated key/cache environment, fresh filespaces,
and a filespace with Connect enabled and a data store on a fresh bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import filespace
from filespace.testing import SeaweedS3


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Key files and caches go to a throw-away directory; no key leaks in from outside."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("FILESPACE_CACHE_DIR", str(home / "cache"))
    monkeypatch.delenv("FILESPACE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("FILESPACE_KEY", raising=False)
    monkeypatch.delenv("FILESPACE", raising=False)
    return home


@pytest.fixture
def fsp(tmp_path: Path) -> Iterator[filespace.Filespace]:
    """A fresh embedded filespace."""
    with filespace.create(tmp_path / "space", name="test") as space:
        yield space


def store_config(server: SeaweedS3, bucket: str, **overrides: Any) -> filespace.S3DataStoreConfig:
    """A data-store config for ``bucket`` with the admin identity."""
    options: dict[str, Any] = {
        "access_key": server.admin.access_key,
        "secret_key": server.admin.secret_key,
        "bucket_name": bucket,
        "region": server.region,
        "endpoint": server.endpoint,
    }
    options.update(overrides)
    return filespace.S3DataStoreConfig(**options)


@pytest.fixture
def connected(fsp: filespace.Filespace, s3_server: SeaweedS3, bucket: str) -> filespace.Filespace:
    """``fsp`` with Connect enabled and data store ``store`` on ``bucket``."""
    fsp.connect.enable()
    fsp.connect.add_data_store("store", store_config(s3_server, bucket))
    return fsp
