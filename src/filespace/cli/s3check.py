"""Checking that buckets answer their credentials, through ``fsp.connect.verify_data_store``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from filespace import DataStoreAccessError, Filespace, S3DataStoreConfig
from filespace.cli import output
from filespace.cli.errors import CliError

_PARALLEL_CHECKS = 16


def where(endpoint: str, region: str) -> str:
    """The endpoint in words (empty means AWS's own for the region)."""
    return endpoint or f"AWS S3 ({region})"


def status(failure: DataStoreAccessError | None) -> str:
    """A store's state for ``store list``: OK, unreachable, auth failed, no such bucket."""
    return "OK" if failure is None else failure.status


def verify(fsp: Filespace, config: S3DataStoreConfig) -> None:
    """Raise a ``CliError`` unless the bucket answers the credentials of ``config``."""
    try:
        fsp.connect.verify_data_store(config)
    except DataStoreAccessError as failure:
        raise CliError(f"bucket check failed: {failure} (--no-verify skips this check)") from None


def _check(fsp: Filespace, name: str) -> DataStoreAccessError | None:
    try:
        fsp.connect.verify_data_store(name)
    except DataStoreAccessError as failure:
        return failure
    return None


def check_all(fsp: Filespace, names: list[str]) -> dict[str, DataStoreAccessError | None]:
    """Check many stores' buckets at once; ``None`` for the ones that answer."""
    if not names:
        return {}
    results: dict[str, DataStoreAccessError | None] = {}
    workers = min(_PARALLEL_CHECKS, len(names))
    with (
        output.progress("checking buckets", len(names)) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = {name: pool.submit(_check, fsp, name) for name in names}
        for name, future in futures.items():
            results[name] = future.result()
            bar.advance()
    return results
