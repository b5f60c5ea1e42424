"""Checking that a bucket answers a set of credentials, and saying why it does not."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from filespace.cli import output
from filespace.cli.errors import CliError
from filespace.objects.s3 import S3AccessError, S3Client, S3Target

_AUTH_CODES = frozenset(
    {"AccessDenied", "403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken"}
)
_PARALLEL_CHECKS = 16


def where(target: S3Target) -> str:
    """The endpoint in words (empty means AWS's own for the region)."""
    return target.endpoint or f"AWS S3 ({target.region})"


def status(failure: S3AccessError | None) -> str:
    """A store's state for ``store list``: OK, unreachable, auth failed, no such bucket."""
    if failure is None:
        return "OK"
    if failure.code == "Unreachable":
        return "unreachable"
    if failure.code in _AUTH_CODES:
        return "auth failed"
    if failure.code == "NoSuchBucket":
        return "no such bucket"
    return f"error ({failure.code})"


def explain(failure: S3AccessError, target: S3Target, access_key: str) -> str:
    """Why the bucket refused, in words a person can act on."""
    code, bucket, endpoint = failure.code, target.bucket, where(target)
    if code == "SignatureDoesNotMatch":
        return f"the secret key does not match access key {access_key} at {endpoint}"
    if code == "InvalidAccessKeyId":
        return f"access key {access_key} is not known at {endpoint}"
    if code in _AUTH_CODES:
        return f"access denied: access key {access_key} may not list bucket {bucket!r}"
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist at {endpoint}"
    if code == "Unreachable":
        return f"cannot reach {endpoint}"
    return str(failure)


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
