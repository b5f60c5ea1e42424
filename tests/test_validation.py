"""Connect's input checks (``connect.validation``), one case per rule and boundary.

Each refusal is a ``ValueError`` whose message is the contract (it names the
rule broken); each accepted value comes back as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from filespace.connect import validation as check
from filespace.connect.models import S3DataStoreConfig
from filespace.paths import MAX_FILE_SIZE

NAME_RULE = "use 1-64 characters of A-Z a-z 0-9 . _ -"
BUCKET_RULE = "3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit"
UNSPLIT = "no credentials, query or fragment in the URL"

REFUSED: list[tuple[Callable[[object], object], object, str]] = [
    (check.store_name, "", "a data store name must be a non-empty string"),
    (check.store_name, 5, "a data store name must be a non-empty string"),
    (check.store_name, "a b", f"invalid data store name 'a b': {NAME_RULE}"),
    (check.store_name, "a" * 65, f"invalid data store name '{'a' * 65}': {NAME_RULE}"),
    (check.bucket_name, 5, f"invalid bucket name 5: {BUCKET_RULE}"),
    (check.bucket_name, "ab", f"invalid bucket name 'ab': {BUCKET_RULE}"),
    (check.bucket_name, "b" * 64, f"invalid bucket name '{'b' * 64}': {BUCKET_RULE}"),
    (check.bucket_name, "-ab", f"invalid bucket name '-ab': {BUCKET_RULE}"),
    (check.bucket_name, "a..b", "invalid bucket name 'a..b': no '..', '.-' or '-.'"),
    (check.bucket_name, "a.-b", "invalid bucket name 'a.-b': no '..', '.-' or '-.'"),
    (check.bucket_name, "a-.b", "invalid bucket name 'a-.b': no '..', '.-' or '-.'"),
    (
        check.bucket_name,
        "10.0.0.1",
        "invalid bucket name '10.0.0.1': may not look like an IP address",
    ),
    (check.bucket_name, "xn--ab", "invalid bucket name 'xn--ab': reserved prefix or suffix"),
    (check.bucket_name, "b-s3alias", "invalid bucket name 'b-s3alias': reserved prefix or suffix"),
    (check.region, "", "invalid region '': expected a name like 'us-east-1'"),
    (check.region, "US", "invalid region 'US': expected a name like 'us-east-1'"),
    (check.region, "r" * 33, f"invalid region '{'r' * 33}': expected a name like 'us-east-1'"),
    (check.region, 5, "invalid region 5: expected a name like 'us-east-1'"),
    (check.endpoint, 5, "endpoint must be a string"),
    (
        check.endpoint,
        "http://h/ x",
        "invalid endpoint 'http://h/ x': no spaces or control characters",
    ),
    (
        check.endpoint,
        "http://h\x7f",
        "invalid endpoint 'http://h\\x7f': no spaces or control characters",
    ),
    (check.endpoint, "http://h\udc80", "endpoint is not valid UTF-8 text: 'http://h\\udc80'"),
    (check.endpoint, "ftp://h", "invalid endpoint 'ftp://h': must start with http:// or https://"),
    (check.endpoint, "http://", "invalid endpoint 'http://': must start with http:// or https://"),
    (check.endpoint, "http://u:p@h", f"invalid endpoint: {UNSPLIT}"),
    (check.endpoint, "http://u@h", f"invalid endpoint: {UNSPLIT}"),
    (check.endpoint, "http://h?q", f"invalid endpoint: {UNSPLIT}"),
    (check.endpoint, "http://h#f", f"invalid endpoint: {UNSPLIT}"),
    (check.endpoint, "http://h:99999", "invalid endpoint 'http://h:99999': bad port"),
    (check.url_expiration, True, "url_expiration_minutes must be an int"),
    (check.url_expiration, "5", "url_expiration_minutes must be an int"),
    (check.url_expiration, 0, "url_expiration_minutes must be 1..10080, got 0"),
    (check.url_expiration, 10081, "url_expiration_minutes must be 1..10080, got 10081"),
    (check.object_key, "", "object_id must be a non-empty string"),
    (check.object_key, 5, "object_id must be a non-empty string"),
    (check.object_key, "a\x00b", "object_id may not contain NUL: 'a\\x00b'"),
    (check.object_key, "é" * 512 + "a", "object_id longer than 1024 bytes"),
    (check.object_key, "k\udc80", "object_id is not valid UTF-8 text: 'k\\udc80'"),
    (check.size, True, "size must be a non-negative int, got True"),
    (check.size, -1, "size must be a non-negative int, got -1"),
    (check.size, 1.0, "size must be a non-negative int, got 1.0"),
    (
        check.size,
        MAX_FILE_SIZE + 1,
        f"size {MAX_FILE_SIZE + 1} is over the limit of {MAX_FILE_SIZE} bytes (5 TiB)",
    ),
    (check.checksum, 5, "checksum must be a string"),
    (check.checksum, '"', "invalid checksum '\"'"),
    (check.checksum, 'a"b', "invalid checksum 'a\"b'"),
    (check.checksum, "a\x1fb", "invalid checksum 'a\\x1fb'"),
    (check.checksum, "c" * 257, f"invalid checksum '{'c' * 257}'"),
    (check.checksum, "e\udc80", "checksum is not valid UTF-8 text: 'e\\udc80'"),
    (check.http_url, 5, "url must be a string"),
    (check.http_url, "http://h x", "a URL may not contain spaces or control characters"),
    (check.http_url, "http://h\x85", "a URL may not contain spaces or control characters"),
    (check.http_url, "http://h\x9f", "a URL may not contain spaces or control characters"),
    (check.http_url, "http://h\x7f", "a URL may not contain spaces or control characters"),
    (check.http_url, "http://h\udc80", "a URL must be valid text (it holds a lone surrogate)"),
    (
        check.http_url,
        "ftp://h?sig=s",
        "invalid URL 'ftp://h': must be http:// or https:// with a host",
    ),
    (check.http_url, "http://", "invalid URL 'http://': must be http:// or https:// with a host"),
    (
        check.http_url,
        "http://h:0",
        "invalid URL 'http://h:0': the port must be a number from 1 to 65535",
    ),
    (
        check.http_url,
        "http://h:65536",
        "invalid URL 'http://h:65536': the port must be a number from 1 to 65535",
    ),
    (check.http_url, "http://u@h", "a URL may not carry a user name or password"),
    (check.http_url, "http://:p@h", "a URL may not carry a user name or password"),
    (check.http_url, "http://h%zz/", "invalid URL 'http://h%zz/': its host cannot be parsed"),
    (check.data_store_config, "config", "config must be an S3DataStoreConfig"),
]


@pytest.mark.parametrize(
    ("function", "value", "message"),
    REFUSED,
    ids=[f"{function.__name__}-{index}" for index, (function, _, _) in enumerate(REFUSED)],
)
def test_refused(function: Callable[[object], object], value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        function(value)


def test_secrets_are_not_shown_when_refused() -> None:
    for value, message in (
        ("", "secret_key must be a non-empty string"),
        (5, "secret_key must be a non-empty string"),
        ("s k", "secret_key may not contain whitespace or control characters"),
        ("s\x01k", "secret_key may not contain whitespace or control characters"),
        ("s\udc80k", "secret_key is not valid UTF-8 text"),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check.credential(value, "secret_key")


ACCEPTED: list[tuple[Callable[[object], object], object, object]] = [
    (check.store_name, "Az09._-", "Az09._-"),
    (check.store_name, "n" * 64, "n" * 64),
    (check.bucket_name, "abc", "abc"),
    (check.bucket_name, "b" * 63, "b" * 63),
    (check.bucket_name, "a.b-c", "a.b-c"),
    (check.bucket_name, "10.0.0", "10.0.0"),
    (check.region, "us-east-1", "us-east-1"),
    (check.region, "r" * 32, "r" * 32),
    (check.endpoint, "", ""),
    (check.endpoint, "https://h:9000/", "https://h:9000"),
    (check.endpoint, "http://h/base//", "http://h/base"),
    (check.endpoint, "http://HOSTX/", "http://HOSTX"),  # only slashes go
    (check.endpoint, "http://h/!", "http://h/!"),  # "!" is the first printable character
    (check.url_expiration, 1, 1),
    (check.url_expiration, 10080, 10080),
    (check.object_key, "é" * 512, "é" * 512),
    (check.size, 0, 0),
    (check.size, MAX_FILE_SIZE, MAX_FILE_SIZE),
    (check.checksum, ' "abc" ', "abc"),
    (check.checksum, "c" * 256, "c" * 256),
    (check.checksum, "", ""),
    (check.checksum, '""', ""),
    (check.http_url, "https://h:1/x?y", "https://h:1/x?y"),
    (check.http_url, "http://h:65535", "http://h:65535"),
    (check.http_url, "http://h/!", "http://h/!"),
]


@pytest.mark.parametrize(
    ("function", "value", "stored"),
    ACCEPTED,
    ids=[f"{function.__name__}-{index}" for index, (function, _, _) in enumerate(ACCEPTED)],
)
def test_accepted(function: Callable[[object], object], value: object, stored: object) -> None:
    assert function(value) == stored


def test_a_data_store_config_is_checked_field_by_field() -> None:
    config = S3DataStoreConfig("AK", "SK", "bucket-name", "us-east-1", "http://h:1/", 60)
    checked = check.data_store_config(config)
    assert checked == replace(config, endpoint="http://h:1")
    for field, value, message in (
        ("access_key", "", "access_key must be a non-empty string"),
        ("secret_key", "s k", "secret_key may not contain whitespace or control characters"),
        ("bucket_name", "B", f"invalid bucket name 'B': {BUCKET_RULE}"),
        ("region", "R", "invalid region 'R': expected a name like 'us-east-1'"),
        ("endpoint", "ftp://h", "invalid endpoint 'ftp://h': must start with http:// or https://"),
        ("url_expiration_minutes", 0, "url_expiration_minutes must be 1..10080, got 0"),
        ("use_virtual_addressing", 1, "use_virtual_addressing must be a bool"),
    ):
        changes: dict[str, Any] = {field: value}
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            check.data_store_config(replace(config, **changes))
