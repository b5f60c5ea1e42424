"""The one S3 client: presigning, HEAD, listing and bucket checks.

Connect, the readers and the S3 block store all come here; nothing else
imports botocore. botocore is imported lazily (``import filespace`` stays
fast) and one botocore client is built per set of credentials and reused.

Retries are botocore's (standard mode); throttling answers (``503 SlowDown``,
``429``) are timed by the endpoint's ``pace`` instead: its hooks in
botocore's events space out requests after a throttle (``before-send``),
learn from every answer, and give the wait before a throttled request is
sent again, honouring ``Retry-After`` (``needs-retry``), for up to
``THROTTLE_ATTEMPTS`` attempts.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from filespace import runtime
from filespace.objects import pace as paces

_CONNECT_TIMEOUT_S = 5.0
_READ_TIMEOUT_S = 30.0
_ATTEMPTS = 3
"""Attempts of a request (botocore's standard retries) and of reading its body."""
THROTTLE_ATTEMPTS = 10
"""Attempts of one request the server keeps throttling (others: ``_ATTEMPTS``)."""


@dataclass(frozen=True, slots=True)
class S3Target:
    """Where a bucket is and how to address it (no credentials)."""

    bucket: str
    region: str
    endpoint: str = ""
    virtual_addressing: bool = False

    @property
    def where(self) -> str:
        """The endpoint in words (empty means AWS's own for the region)."""
        return self.endpoint or f"AWS S3 ({self.region})"


@dataclass(frozen=True, slots=True)
class ObjectHead:
    """What HeadObject says about an object."""

    size: int
    etag: str  # without quotes


@dataclass(frozen=True, slots=True)
class ObjectSummary:
    """One object of a listing."""

    key: str
    size: int
    etag: str  # without quotes


@dataclass(frozen=True, slots=True)
class ObjectStamp:
    """One object of a listing, with when it was last written."""

    key: str
    size: int
    modified: float  # Unix seconds, as the server's clock saw it


# Codes that mean these credentials may not do this (wrong key, wrong secret, no grant).
_AUTH_CODES = frozenset(
    {"AccessDenied", "403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken"}
)


class S3AccessError(Exception):
    """S3 refused or could not be reached; ``code`` says which, ``kind`` what that means.

    The one place that reads S3 error codes: callers branch on ``kind`` and
    show ``status`` or ``describe(...)``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # "NotFound", "AccessDenied", "Unreachable", "NoSuchBucket", ...

    def __reduce__(self) -> tuple[type[S3AccessError], tuple[str, str]]:
        return type(self), (self.code, str(self))

    @property
    def kind(self) -> str:
        """``unreachable``, ``auth``, ``no_bucket``, ``not_found`` or ``other``."""
        if self.code == "Unreachable":
            return "unreachable"
        if self.code in _AUTH_CODES:
            return "auth"
        if self.code == "NoSuchBucket":
            return "no_bucket"
        if self.code == "NotFound":
            return "not_found"
        return "other"

    @property
    def status(self) -> str:
        """A store's state in a few words: unreachable, auth failed, no such bucket, ..."""
        words = {"unreachable": "unreachable", "auth": "auth failed", "no_bucket": "no such bucket"}
        return words.get(self.kind, f"error ({self.code})")

    def describe(self, target: S3Target, access_key: str) -> str:
        """Why the bucket refused, in words a person can act on."""
        code, bucket, endpoint = self.code, target.bucket, target.where
        if code == "SignatureDoesNotMatch":
            return f"the secret key does not match access key {access_key} at {endpoint}"
        if code == "InvalidAccessKeyId":
            return f"access key {access_key} is not known at {endpoint}"
        if self.kind == "auth":
            return f"access denied: access key {access_key} may not list bucket {bucket!r}"
        if self.kind == "no_bucket":
            return f"bucket {bucket!r} does not exist at {endpoint}"
        if self.kind == "unreachable":
            return f"cannot reach {endpoint}"
        return str(self)


def strip_etag(etag: str) -> str:
    """An ETag without its surrounding quotes (and without a weak ``W/`` prefix)."""
    text = etag.strip()
    if text.startswith("W/"):
        text = text[2:]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


_PROBE_KEY = "filespace-presign-probe"
# Bucket names botocore puts in a path as they are (no escaping to get right).
_DNS_SAFE_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_QUERY_AUTH = {
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
}


@dataclass(frozen=True, slots=True)
class _Presigner:
    """Presigned GETs of one client: botocore's address for its bucket, botocore's signer."""

    base: str | None
    """What precedes the encoded key in botocore's URLs; ``None``: ask botocore every time."""
    region: str
    credentials: Any = field(repr=False)

    @classmethod
    def derive(cls, target: S3Target, credentials: Any) -> _Presigner | None:
        """The address of a path-style bucket at an endpoint of its own, written out
        (``None``: any other target, whose address is botocore's to resolve).

        What botocore gives such a bucket is the endpoint, the bucket and the key
        (``test_presign`` holds the two equal), so a new process signs its first
        URL without building a botocore client: a fifth of a second off the
        first read. It comes from the store's own settings, nothing else.
        """
        from urllib.parse import urlsplit

        if target.virtual_addressing or not target.endpoint:
            return None
        parts = urlsplit(target.endpoint)
        plain = (
            parts.scheme in ("http", "https")
            and parts.hostname
            and parts.path in ("", "/")
            and not parts.query
            and not parts.fragment
            and not parts.username
            and _DNS_SAFE_BUCKET.fullmatch(target.bucket)
        )
        if not plain:
            return None
        base = f"{parts.scheme}://{parts.netloc}/{target.bucket}/"
        return cls(base, target.region or "us-east-1", credentials)

    @classmethod
    def learn(cls, client: S3Client) -> _Presigner:
        """The address botocore gives the client's bucket (``from_probe``)."""
        from botocore.credentials import Credentials

        probe = client.client.generate_presigned_url(
            "get_object", Params={"Bucket": client.target.bucket, "Key": _PROBE_KEY}, ExpiresIn=60
        )
        return cls.from_probe(probe, Credentials(client._access_key, client._secret_key))

    @classmethod
    def from_probe(cls, probe: str, credentials: Any) -> _Presigner:
        """What a presigned URL of ``_PROBE_KEY`` says, if it has the expected shape: only
        SigV4 query fields, only ``host`` signed, an ``s3`` scope, the key last in the path."""
        from urllib.parse import parse_qs, urlsplit

        from botocore.utils import percent_encode

        address, _, query = probe.partition("?")
        fields = parse_qs(query)
        scope = fields.get("X-Amz-Credential", [""])[0].split("/")
        tail = "/" + percent_encode(_PROBE_KEY, safe="/~")
        usual = (
            set(fields) == _QUERY_AUTH
            and fields["X-Amz-SignedHeaders"] == ["host"]
            and len(scope) == 5
            and scope[3:] == ["s3", "aws4_request"]
            and address.endswith(tail)
            and not urlsplit(address).query
        )
        if not usual:
            return cls(None, "", credentials)
        return cls(address[: -len(tail) + 1], scope[2], credentials)

    def sign(self, key: str, expires_s: int) -> str:
        """``key``'s URL, signed by ``S3SigV4QueryAuth`` as botocore's presigner signs it."""
        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.utils import percent_encode

        assert self.base is not None
        request = AWSRequest(method="GET", url=self.base + percent_encode(key, safe="/~"))
        S3SigV4QueryAuth(self.credentials, "s3", self.region, expires=expires_s).add_auth(request)
        url: str = request.prepare().url
        return url


class S3Client:
    """Talks to one bucket with one set of credentials."""

    def __init__(self, target: S3Target, access_key: str, secret_key: str) -> None:
        self.target = target
        self._access_key = access_key
        self._secret_key = secret_key
        self._client: Any = None
        self._presigner: _Presigner | None = None
        self._lock = threading.Lock()
        _clients.add(self)

    def __repr__(self) -> str:
        return f"S3Client(bucket={self.target.bucket!r}, endpoint={self.target.endpoint!r})"

    @property
    def client(self) -> Any:
        """The botocore client, built on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client

    def _build(self) -> Any:
        from botocore.config import Config

        session = _isolated_session()
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "virtual" if self.target.virtual_addressing else "path"},
            connect_timeout=_CONNECT_TIMEOUT_S,
            read_timeout=_READ_TIMEOUT_S,
            retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
            max_pool_connections=32,
            proxies={},  # not None: botocore would take HTTP(S)_PROXY from the environment
        )
        client = session.create_client(
            "s3",
            region_name=self.target.region or "us-east-1",
            endpoint_url=self.target.endpoint or None,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=config,
        )
        _PaceHooks(paces.of(paces.endpoint_of(client.meta.endpoint_url))).register(client)
        return client

    @property
    def pace(self) -> paces.Pace:
        """The pace of this client's endpoint (shared by every client of it)."""
        return paces.of(paces.endpoint_of(self.client.meta.endpoint_url))

    def presign_get(self, key: str, expires_s: int) -> str:
        """A presigned GET URL for ``key`` valid for ``expires_s`` seconds.

        botocore decides the address and signs: ``generate_presigned_url`` builds
        and resolves a whole request each time (about 0.5 ms), so the address it
        gives a probe key is learned once (``_Presigner``) and each URL is then
        that address with ``key`` encoded as botocore encodes a key, signed by the
        signer ``generate_presigned_url`` itself uses (a quarter of the cost).
        """
        presigner = self._presigner
        if presigner is None:
            from botocore.credentials import Credentials

            credentials = Credentials(self._access_key, self._secret_key)
            presigner = _Presigner.derive(self.target, credentials) or _Presigner.learn(self)
            self._presigner = presigner
        if presigner.base is None:  # an address the probe could not explain: the long way
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.target.bucket, "Key": key},
                ExpiresIn=expires_s,
            )
            return url
        return presigner.sign(key, expires_s)

    def head(self, key: str) -> ObjectHead:
        """Size and ETag of an object; ``S3AccessError`` says why not."""
        with _mapped_errors(f"s3://{self.target.bucket}/{key}"):
            answer = self.client.head_object(Bucket=self.target.bucket, Key=key)
        return ObjectHead(size=int(answer["ContentLength"]), etag=strip_etag(answer["ETag"]))

    def list_objects(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectSummary]:
        """Every object under ``prefix`` in key order, one page in memory at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        options: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": prefix}
        if start_after:
            options["StartAfter"] = start_after
        with _mapped_errors(f"s3://{self.target.bucket}/{prefix}"):
            for page in paginator.paginate(**options):
                for item in page.get("Contents", ()):
                    yield ObjectSummary(
                        key=item["Key"], size=int(item["Size"]), etag=strip_etag(item["ETag"])
                    )

    def list_stamped(self, prefix: str = "") -> Iterator[ObjectStamp]:
        """Every object under ``prefix`` with its LastModified, one page in memory at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        with _mapped_errors(f"s3://{self.target.bucket}/{prefix}"):
            for page in paginator.paginate(Bucket=self.target.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield ObjectStamp(
                        key=item["Key"],
                        size=int(item["Size"]),
                        modified=item["LastModified"].timestamp(),
                    )

    def check_bucket(self) -> None:
        """Raise ``S3AccessError`` unless the bucket answers these credentials."""
        with _mapped_errors(f"s3://{self.target.bucket}"):
            self.client.list_objects_v2(Bucket=self.target.bucket, MaxKeys=1)

    def put(self, key: str, data: bytes | memoryview) -> None:
        with _mapped_errors(f"s3://{self.target.bucket}/{key}"):
            self.client.put_object(Bucket=self.target.bucket, Key=key, Body=bytes(data))

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of an object (``end`` None: to its end).

        botocore retries a request until its answer's headers arrive; a body
        that then breaks off, stalls past the read timeout or ends short of
        its ``Content-Length`` (which botocore checks) is asked for again
        here, as often as botocore would have retried the request.
        """
        from botocore.exceptions import (
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        options: dict[str, Any] = {"Bucket": self.target.bucket, "Key": key}
        if start or end is not None:
            last = "" if end is None else str(end - 1)
            options["Range"] = f"bytes={start}-{last}"
        attempt = 0
        while True:
            attempt += 1
            with _mapped_errors(f"s3://{self.target.bucket}/{key}"):
                body = self.client.get_object(**options)["Body"]
                try:
                    data: bytes = body.read()
                except (IncompleteReadError, ReadTimeoutError, ResponseStreamingError):
                    if attempt >= _ATTEMPTS:
                        raise
                    time.sleep(self.pace.delay(attempt))
                    continue
                finally:
                    body.close()
            return data

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with _mapped_errors(f"s3://{self.target.bucket}"):
                self.client.delete_objects(
                    Bucket=self.target.bucket, Delete={"Objects": batch, "Quiet": True}
                )


class _PaceHooks:
    """Connects one botocore client to its endpoint's ``Pace``."""

    def __init__(self, pace: paces.Pace) -> None:
        self._pace = pace

    def register(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-send.s3", self._before_send, unique_id="filespace-pace-send")
        # First: botocore's own handler would time a throttled retry itself.
        events.register_first("needs-retry.s3", self._needs_retry, unique_id="filespace-pace")

    def _before_send(self, **_: Any) -> None:
        self._pace.wait()

    def _needs_retry(
        self, response: Any = None, attempts: int = 1, caught_exception: Any = None, **_: Any
    ) -> float | None:
        """The wait before a throttled request goes again; ``None`` leaves it to botocore."""
        if caught_exception is not None or response is None:
            return None
        http_response, parsed = response
        status = int(http_response.status_code)
        code = str(parsed.get("Error", {}).get("Code", "")) if isinstance(parsed, dict) else ""
        if not paces.is_throttle(status, code):
            if status < 500:
                self._pace.succeeded()
            return None
        after = paces.retry_after(http_response.headers.get("Retry-After"))
        self._pace.throttled(after)
        if attempts >= THROTTLE_ATTEMPTS:
            return None
        return self._pace.delay(attempts, after)


def _isolated_session() -> Any:
    """A botocore session that reads nothing from the process's environment or ``~/.aws``.

    A bucket's endpoint, region, addressing and credentials are exactly what
    the store (or block store) holds: ``AWS_ENDPOINT_URL``, a profile's
    ``endpoint_url`` or ``addressing_style``, ``AWS_CA_BUNDLE``, ``AWS_DATA_PATH``
    and the rest must not change where a signed request goes. Every session
    variable is pinned to its built-in default; the config files are empty.
    """
    import os

    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES as DEFAULTS  # sic

    session = botocore.session.Session()
    for name, spec in DEFAULTS.items():
        session.set_config_variable(name, spec[2])
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    session.set_config_variable("ignore_configured_endpoint_urls", True)
    session.set_config_variable("s3", {})
    session.set_config_variable("proxies_config", {})
    return session


_clients: weakref.WeakSet[S3Client] = weakref.WeakSet()


@runtime.on_fork
def _forget_connections() -> None:
    """In a forked child: build new botocore clients (the parent's pooled sockets are its own)."""
    for client in list(_clients):
        client._client = None
        client._lock = threading.Lock()


class _mapped_errors:  # noqa: N801 - used like a function
    """Turn botocore's exceptions into ``S3AccessError`` with a short reason."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        if exc is None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(error.get("Code") or status)
            if code in ("404", "NoSuchKey", "NotFound"):
                code = "NotFound"
            elif code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                code = "AccessDenied" if code in ("403", "AccessDenied") else code
            message = str(error.get("Message") or code)
            raise S3AccessError(code, f"{self._what}: {code}: {message}") from None
        if isinstance(exc, BotoCoreError):
            raise S3AccessError(
                "Unreachable", f"{self._what}: endpoint unreachable ({type(exc).__name__})"
            ) from None
