"""Connect's settings, sealed under the filespace key like a secret.

The settings decide what a keyholder's client will do on others' behalf (an
HTTP link reaching a private address), so only a keyholder may change them:
they are stored as one sealed value (AES-GCM, bound to the filespace and to
the record ``connect:settings``). An engine writer without the key can delete
the value (back to the defaults, which refuse) but cannot make one that
opens: a value that does not open is a ``WrongKeyError``, never a default.

The webhook listener's bearer token (``set_webhook_token``) is kept in the same
sealed value, so it is resealed with the settings when the key is rotated.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from filespace.connect.models import ConnectSettings
from filespace.errors import WrongKeyError

if TYPE_CHECKING:
    from filespace.meta.engine import Engine
    from filespace.sealing import Sealer

SETTING = "connect_settings"
"""The engine setting that holds the sealed value."""

RECORD = "connect:settings"
"""What the sealed value is bound to."""

_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
"""What a bearer token may be (RFC 6750's b64token), and at least 16 characters long."""


def _decode(stored: str) -> bytes:
    try:
        return base64.b64decode(stored.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise WrongKeyError(f"the sealed value of {RECORD} is malformed") from None


def reseal(settings: dict[str, str], old: Sealer, new: Sealer) -> dict[str, str]:
    """The stored settings sealed under ``new`` instead of ``old`` (none stored: none)."""
    stored = settings.get(SETTING, "")
    if not stored:
        return {}
    plain = old.open(_decode(stored), RECORD)
    return {SETTING: base64.b64encode(new.seal(plain, RECORD)).decode("ascii")}


class Settings:
    """Reads and changes the Connect settings of one filespace."""

    def __init__(self, engine: Engine, sealer: Callable[[], Sealer]) -> None:
        self._engine = engine
        self._sealer = sealer

    def _values(self) -> dict[str, object]:
        """The stored values (none stored: empty; no key needed then)."""
        stored = self._engine.settings().get(SETTING, "")
        if not stored:
            return {}
        sealed = _decode(stored)
        try:
            values = json.loads(self._sealer().open(sealed, RECORD))
        except ValueError:
            raise WrongKeyError(f"the sealed value of {RECORD} is malformed") from None
        if not isinstance(values, dict):
            raise WrongKeyError(f"the sealed value of {RECORD} is malformed")
        return values

    def _store(self, values: dict[str, object]) -> None:
        plain = json.dumps(values, sort_keys=True)
        sealed = base64.b64encode(self._sealer().seal(plain, RECORD)).decode("ascii")
        self._engine.set_setting(SETTING, sealed)

    def get(self) -> ConnectSettings:
        """The current settings (the defaults if none were stored; no key needed then)."""
        values = self._values()
        if not values:
            return ConnectSettings()
        try:
            return ConnectSettings(allow_private_urls=values["allow_private_urls"] is True)
        except KeyError:
            raise WrongKeyError(f"the sealed value of {RECORD} is malformed") from None

    def configure(self, allow_private_urls: bool | None) -> ConnectSettings:
        """Change the settings given (``None`` keeps one as it is); needs the key."""
        if allow_private_urls is not None and not isinstance(allow_private_urls, bool):
            raise ValueError(
                f"allow_private_urls must be a bool or None, got {allow_private_urls!r}"
            )
        self._sealer()  # a keyholder only, even to change nothing
        if allow_private_urls is None:
            return self.get()
        settings = ConnectSettings(allow_private_urls=allow_private_urls)
        self._store({**self._values(), **dataclasses.asdict(settings)})
        return settings

    def allows_private_urls(self) -> bool:
        """Whether HTTP links may reach private addresses now (read at every ask)."""
        return self.get().allow_private_urls

    def set_webhook_token(self, token: str | None) -> None:
        """Keep ``token`` (sealed) as the webhook's bearer token; ``None`` drops it."""
        if token is not None and not (
            isinstance(token, str) and _TOKEN.fullmatch(token) is not None
        ):
            raise ValueError(
                "the webhook token must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -"
            )
        values = {"allow_private_urls": False, **self._values()}
        values.pop("webhook_token", None)
        if token is not None:
            values["webhook_token"] = token
        self._store(values)

    def webhook_token(self) -> str | None:
        """The webhook's bearer token, if one is set (needs the key)."""
        token = self._values().get("webhook_token")
        return token if isinstance(token, str) else None
