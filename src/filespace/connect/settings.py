"""Connect's settings, sealed under the filespace key like a secret.

The settings decide what a keyholder's client will do on others' behalf (an
HTTP link reaching a private address), so only a keyholder may change them:
they are stored as one sealed value (AES-GCM, bound to the filespace and to
the record ``connect:settings``). An engine writer without the key can delete
the value (back to the defaults, which refuse) but cannot make one that
opens: a value that does not open is a ``WrongKeyError``, never a default.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
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

    def get(self) -> ConnectSettings:
        """The current settings (the defaults if none were stored; no key needed then)."""
        stored = self._engine.settings().get(SETTING, "")
        if not stored:
            return ConnectSettings()
        sealed = _decode(stored)
        try:
            values = json.loads(self._sealer().open(sealed, RECORD))
            return ConnectSettings(allow_private_urls=values["allow_private_urls"] is True)
        except (ValueError, KeyError, TypeError):
            raise WrongKeyError(f"the sealed value of {RECORD} is malformed") from None

    def configure(self, allow_private_urls: bool | None) -> ConnectSettings:
        """Change the settings given (``None`` keeps one as it is); needs the key."""
        if allow_private_urls is not None and not isinstance(allow_private_urls, bool):
            raise ValueError(
                f"allow_private_urls must be a bool or None, got {allow_private_urls!r}"
            )
        sealer = self._sealer()  # a keyholder only, even to change nothing
        if allow_private_urls is None:
            return self.get()
        settings = ConnectSettings(allow_private_urls=allow_private_urls)
        plain = json.dumps(dataclasses.asdict(settings), sort_keys=True)
        sealed = base64.b64encode(sealer.seal(plain, RECORD)).decode("ascii")
        self._engine.set_setting(SETTING, sealed)
        return settings

    def allows_private_urls(self) -> bool:
        """Whether HTTP links may reach private addresses now (read at every ask)."""
        return self.get().allow_private_urls
