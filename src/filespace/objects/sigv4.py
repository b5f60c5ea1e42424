"""Presigned S3 GET URLs signed here (AWS Signature Version 4, query string).

botocore's ``generate_presigned_url`` costs about a millisecond and a half of
CPU per URL (endpoint rules, event hooks, request objects), which a reader of
many small files pays once per file. A ``Presigner`` asks botocore once, for
a probe key, and keeps what that URL says about the bucket (scheme, host, the
path before the key, the credential scope); each URL after that is the same
layout with the key in place of the probe, signed with ``hmac`` and
``hashlib`` (the signing key cached per day). ``tests/test_sigv4.py`` checks
that its URLs equal botocore's for the same instant, byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

PROBE_KEY = "filespace-presign-probe"
_ALGORITHM = "AWS4-HMAC-SHA256"


def encode_key(key: str) -> str:
    """An object key as it stands in an S3 URL's path (and its canonical URI)."""
    return quote(key, safe="/~")


class Presigner:
    """Signs GET URLs of one bucket the way a botocore URL for ``PROBE_KEY`` shows."""

    def __init__(self, probe_url: str, access_key: str, secret_key: str) -> None:
        parts = urlsplit(probe_url)
        suffix = "/" + encode_key(PROBE_KEY)
        if not parts.path.endswith(suffix):
            raise ValueError("the probe URL does not end with the probe key")
        query = parse_qs(parts.query)
        _, _, region, service, _ = query["X-Amz-Credential"][0].split("/")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.netloc
        self._path = parts.path[: -len(suffix) + 1]  # up to and with the "/" before the key
        self._region = region
        self._service = service
        self._access_key = access_key
        self._secret = secret_key.encode("utf-8")
        self._keys: tuple[str, bytes] | None = None  # (day, signing key): swapped whole

    def __repr__(self) -> str:
        return f"Presigner({self._origin!r}, region={self._region!r})"

    def url(self, key: str, expires_s: int, now: datetime | None = None) -> str:
        """A presigned GET URL for ``key``, valid ``expires_s`` seconds from ``now``."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        stamp = moment.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        path = self._path + encode_key(key)
        query = (
            f"X-Amz-Algorithm={_ALGORITHM}"
            f"&X-Amz-Credential={quote(f'{self._access_key}/{scope}', safe='-_.~')}"
            f"&X-Amz-Date={stamp}&X-Amz-Expires={int(expires_s)}&X-Amz-SignedHeaders=host"
        )
        request = f"GET\n{path}\n{query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
        to_sign = f"{_ALGORITHM}\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self._origin}{path}?{query}&X-Amz-Signature={signature}"

    def _signing_key(self, day: str) -> bytes:
        cached = self._keys
        if cached is not None and cached[0] == day:
            return cached[1]
        key = hmac.new(b"AWS4" + self._secret, day.encode(), hashlib.sha256).digest()
        for part in (self._region, self._service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._keys = (day, key)
        return key
