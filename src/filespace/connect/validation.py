"""Checks on everything a caller hands Connect, before anything changes."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from urllib.parse import urlsplit

from filespace.connect.models import S3DataStoreConfig
from filespace.paths import MAX_FILE_SIZE, utf8_text
from filespace.redaction import without_query

MAX_DATA_STORES = 1000
MAX_URL_EXPIRATION_MINUTES = 10080  # SigV4 presigned URLs live at most 7 days
MAX_OBJECT_KEY_BYTES = 1024

_STORE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def store_name(name: object) -> str:
    """A data-store name: 1-64 characters of ``A-Z a-z 0-9 . _ -``."""
    if not isinstance(name, str) or not name:
        raise ValueError("a data store name must be a non-empty string")
    if not _STORE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid data store name {name!r}: use 1-64 characters of A-Z a-z 0-9 . _ -"
        )
    return name


def bucket_name(bucket: object) -> str:
    """A bucket name valid under S3's naming rules."""
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"invalid bucket name {bucket!r}: 3-63 characters of a-z 0-9 . -, "
            "starting and ending with a letter or digit"
        )
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        raise ValueError(f"invalid bucket name {bucket!r}: no '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        raise ValueError(f"invalid bucket name {bucket!r}: may not look like an IP address")
    if bucket.startswith("xn--") or bucket.endswith("-s3alias"):
        raise ValueError(f"invalid bucket name {bucket!r}: reserved prefix or suffix")
    return bucket


def region(value: object) -> str:
    """A region name such as ``us-east-1``."""
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise ValueError(f"invalid region {value!r}: expected a name like 'us-east-1'")
    return value


def endpoint(value: object) -> str:
    """An endpoint URL (``http://`` or ``https://``), or ``""`` for AWS's default."""
    if not isinstance(value, str):
        raise ValueError("endpoint must be a string")
    if value == "":
        return value
    # urlsplit drops tabs and newlines silently; the S3 client would not.
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in value):
        raise ValueError(f"invalid endpoint {value!r}: no spaces or control characters")
    utf8_text(value, "endpoint")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid endpoint {value!r}: must start with http:// or https://")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("invalid endpoint: no credentials, query or fragment in the URL")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"invalid endpoint {value!r}: bad port") from None
    return value.rstrip("/")


def url_expiration(minutes: object) -> int:
    """Lifetime of presigned URLs in minutes, 1 to 10080."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ValueError("url_expiration_minutes must be an int")
    if not 1 <= minutes <= MAX_URL_EXPIRATION_MINUTES:
        raise ValueError(
            f"url_expiration_minutes must be 1..{MAX_URL_EXPIRATION_MINUTES}, got {minutes}"
        )
    return minutes


def credential(value: object, what: str) -> str:
    """A non-empty access or secret key without whitespace or control characters."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ValueError(f"{what} may not contain whitespace or control characters")
    utf8_text(value, what, secret=True)
    return value


def object_key(key: object) -> str:
    """An S3 object key: 1-1024 bytes of UTF-8 without NUL (no engine can store it)."""
    if not isinstance(key, str) or not key:
        raise ValueError("object_id must be a non-empty string")
    if "\x00" in key:
        raise ValueError(f"object_id may not contain NUL: {key!r}")
    if len(utf8_text(key, "object_id")) > MAX_OBJECT_KEY_BYTES:
        raise ValueError(f"object_id longer than {MAX_OBJECT_KEY_BYTES} bytes")
    return key


def size(value: object) -> int:
    """A byte size: an int from 0 to ``MAX_FILE_SIZE`` (5 TiB, S3's object limit)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"size must be a non-negative int, got {value!r}")
    if value > MAX_FILE_SIZE:
        raise ValueError(f"size {value} is over the limit of {MAX_FILE_SIZE} bytes (5 TiB)")
    return value


_BELOW_SPACE = re.compile("[\x00-\x1f]")
"""Control characters an ETag may not hold (one search, not a loop per character)."""


def checksum(value: object) -> str:
    """An ETag, stored without its quotes."""
    if not isinstance(value, str):
        raise ValueError("checksum must be a string")
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if '"' in text or _BELOW_SPACE.search(text) or len(text) > 256:
        raise ValueError(f"invalid checksum {value!r}")
    utf8_text(text, "checksum")
    return text


def _control(ch: str) -> bool:
    return ch.isspace() or ord(ch) < 33 or 127 <= ord(ch) <= 159


def http_url(value: object) -> str:
    """An ``http://`` or ``https://`` URL with a host, a port in 1..65535 if any,
    no user name or password, and no spaces, control characters or lone surrogates."""
    if not isinstance(value, str):
        raise ValueError("url must be a string")
    if any(_control(ch) for ch in value):
        raise ValueError("a URL may not contain spaces or control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a URL must be valid text (it holds a lone surrogate)") from None
    shown = repr(without_query(value))
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {shown}: must be http:// or https:// with a host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"invalid URL {shown}: the port must be a number from 1 to 65535")
    if parts.username or parts.password:
        raise ValueError("a URL may not carry a user name or password")
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parse_url(value)
    except LocationParseError:
        raise ValueError(f"invalid URL {shown}: its host cannot be parsed") from None
    return value


def data_store_config(config: object) -> S3DataStoreConfig:
    """An ``S3DataStoreConfig`` with every field checked (the endpoint without a trailing ``/``)."""
    if not isinstance(config, S3DataStoreConfig):
        raise ValueError("config must be an S3DataStoreConfig")
    access_key = credential(config.access_key, "access_key")
    secret_key = credential(config.secret_key, "secret_key")
    bucket = bucket_name(config.bucket_name)
    checked_region = region(config.region)
    checked_endpoint = endpoint(config.endpoint)
    minutes = url_expiration(config.url_expiration_minutes)
    if not isinstance(config.use_virtual_addressing, bool):
        raise ValueError("use_virtual_addressing must be a bool")
    return dataclasses.replace(
        config,
        access_key=access_key,
        secret_key=secret_key,
        bucket_name=bucket,
        region=checked_region,
        endpoint=checked_endpoint,
        url_expiration_minutes=minutes,
    )
