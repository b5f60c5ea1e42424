"""Checking that a bucket answers a set of credentials, and saying why it does not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from filespace.cli import output
from filespace.cli.errors import CliError
from filespace.objects.s3 import S3AccessError, S3Client, S3Target

_PARALLEL_CHECKS = 16


def where(target: S3Target) -> str:
    """The endpoint in words (empty means AWS's own for the region)."""
    return target.where


def status(failure: S3AccessError | None) -> str:
    """A store's state for ``store list``: OK, unreachable, auth failed, no such bucket."""
    return "OK" if failure is None else failure.status


def explain(failure: S3AccessError, target: S3Target, access_key: str) -> str:
    """Why the bucket refused, in words a person can act on."""
    return failure.describe(target, access_key)


def verify(target: S3Target, access_key: str, secret_key: str) -> None:
    """Raise a ``CliError`` unless the bucket answers these credentials."""
    try:
        S3Client(target, access_key, secret_key).check_bucket()
    except S3AccessError as failure:
        raise CliError(
            f"bucket check failed: {explain(failure, target, access_key)} "
            "(--no-verify skips this check)"
        ) from None


def _check(client: S3Client) -> S3AccessError | None:
    try:
        client.check_bucket()
    except S3AccessError as failure:
        return failure
    return None


def check_all(clients: dict[str, S3Client]) -> dict[str, S3AccessError | None]:
    """Check many stores' buckets at once; ``None`` for the ones that answer."""
    if not clients:
        return {}
    results: dict[str, S3AccessError | None] = {}
    workers = min(_PARALLEL_CHECKS, len(clients))
    with (
        output.progress("checking buckets", len(clients)) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures = {name: pool.submit(_check, client) for name, client in clients.items()}
        for name, future in futures.items():
            results[name] = future.result()
            bar.advance()
    return results
